/*
 * The stdout output: one JSON document per line. Encoding and the write happen on libuv's
 * thread pool, so a slow reader of our stdout never stalls the event loop, and the second core
 * does the JSON work. One delivery at a time keeps lines in order.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "document.h"
#include "log.h"
#include "output.h"
#include "record.h"

typedef struct {
    uv_work_t work;
    sp_delivery *d;
    sp_buf out;
    int err;
    uint32_t records;
} sp_stdout_job;

typedef struct {
    sp_stdout_job job;
    sp_ratelimit rl;
    int fd;
    int stopping;  /* stop came while the job ran: close once it is answered */
    int answering; /* inside sp_output_done: a stop it causes must wait for it to return */
    sp_output *o;
} sp_stdout;

static void sp_stdout_free(sp_stdout *s)
{
    sp_output *o = s->o;
    sp_buf_free(&s->job.out);
    free(s);
    o->data = NULL;
    sp_output_closed(o);
}

static void sp_stdout_encode_write(uv_work_t *w)
{
    sp_stdout_job *j = w->data;
    j->out.len = 0;
    j->records = 0;
    for (uint32_t i = 0; i < j->d->nchunks; i++)
        j->records += sp_document_chunk_lines(&j->out, j->d->chunks[i]);
    const char *b = j->out.base;
    size_t left = j->out.len;
    sp_stdout *s = (sp_stdout *)j;
    j->err = 0;
    while (left) {
        ssize_t n = write(s->fd, b, left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            j->err = errno;
            return;
        }
        b += n;
        left -= (size_t)n;
    }
}

static void sp_stdout_after(uv_work_t *w, int status)
{
    sp_stdout_job *j = w->data;
    sp_stdout *s = (sp_stdout *)j;
    sp_delivery *d = j->d;
    j->d = NULL;
    s->answering = 1; /* the answer may end the daemon's drain, which stops this output */
    if (status || j->err) {
        sp_out_log_limited(s->o, &s->rl, SP_LOG_ERROR, "write failed: %s",
                           strerror(j->err ? j->err : EIO));
        sp_output_done(d, SP_OUT_RETRY, 0, 0);
    } else {
        sp_output_done(d, SP_OUT_DONE, j->records, 0);
    }
    s->answering = 0;
    if (s->stopping) sp_stdout_free(s);
}

static void sp_stdout_deliver(sp_output *o, sp_delivery *d)
{
    sp_stdout *s = o->data;
    s->job.d = d;
    s->job.work.data = &s->job;
    uv_queue_work(o->loop, &s->job.work, sp_stdout_encode_write, sp_stdout_after);
}

static int sp_stdout_start(sp_output *o)
{
    sp_stdout *s = sp_calloc(1, sizeof *s);
    s->fd = STDOUT_FILENO;
    s->o = o;
    o->data = s;
    o->max_inflight = 1;
    return 0;
}

static void sp_stdout_stop(sp_output *o)
{
    sp_stdout *s = o->data;
    if (!s) {
        sp_output_closed(o);
    } else if (s->job.d || s->answering) {
        /* A write cannot be cancelled: it is answered (written, or not delivered) when it
         * ends, and then the output is closed. The daemon does not wait for ever. */
        s->stopping = 1;
    } else {
        sp_stdout_free(s);
    }
}

static const sp_conf_field sp_stdout_fields[] = {SP_CONF_END};

const sp_output_type sp_output_stdout = {
    .name = "stdout",
    .fields = sp_stdout_fields,
    .conf_size = 0,
    .start = sp_stdout_start,
    .deliver = sp_stdout_deliver,
    .stop = sp_stdout_stop,
    .default_inflight = 1,
};
