/* Every input and output type, by the name used in `type:`. */
#include "daemon.h"

extern const sp_input_type sp_input_forward, sp_input_docker_logs;
extern const sp_output_type sp_output_stdout, sp_output_null, sp_output_elasticsearch,
    sp_output_kafka, sp_output_forward;

const sp_input_type *const sp_input_types[] = {&sp_input_forward, &sp_input_docker_logs, NULL};
const sp_output_type *const sp_output_types[] = {&sp_output_stdout, &sp_output_null,
                                                 &sp_output_elasticsearch, &sp_output_kafka,
                                                 &sp_output_forward, NULL};
