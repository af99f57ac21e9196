/* The null output: counts records and drops them (benchmarks, and a sink for `match` tests). */
#include "output.h"

static void sp_null_deliver(sp_output *o, sp_delivery *d)
{
    sp_output_done(d, SP_OUT_DONE, d->nrecords, 0);
}

static int sp_null_start(sp_output *o)
{
    return 0;
}

static void sp_null_stop(sp_output *o)
{
    sp_output_closed(o);
}

static const sp_conf_field sp_null_fields[] = {SP_CONF_END};

const sp_output_type sp_output_null = {
    .name = "null",
    .fields = sp_null_fields,
    .conf_size = 0,
    .start = sp_null_start,
    .deliver = sp_null_deliver,
    .stop = sp_null_stop,
};
