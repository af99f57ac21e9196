/* The docker_logs (json-file) input. Not built yet: the configuration rejects it clearly. */
#include "input.h"

static const sp_conf_field sp__fields[] = {SP_CONF_END};

const sp_input_type sp_input_docker_logs = {
    .name = "docker_logs",
    .fields = sp__fields,
    .unsupported = "the docker_logs input is not supported yet (planned)",
};
