/* The kafka output. Not built yet: the configuration rejects it clearly. */
#include "output.h"

static const sp_conf_field sp__fields[] = {SP_CONF_END};

const sp_output_type sp_output_kafka = {
    .name = "kafka",
    .fields = sp__fields,
    .unsupported = "the kafka output is not supported yet (planned)",
};
