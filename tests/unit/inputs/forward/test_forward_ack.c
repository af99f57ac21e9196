/*
 * The forward input's waiting acks (ack: delivered), end to end: a real listener on loopback, the
 * router, and an output whose deliveries the test answers itself, in any order. The client is a
 * socket in this thread; the loop is run without blocking between its steps. Acks that chunks
 * answer are written in the same loop iteration, and loopback puts them in the client's socket
 * buffer at once, so "no ack yet" is checked without waiting for anything.
 *
 * Linked with --wrap=sp_fwd_tls_write (CMakeLists.txt) so a test can make the TLS write of an ack
 * fail.
 */
#include "unit.h"
#include "mp_pack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"
#include "forward_tls.h"
#include "log.h"
#include "mp.h"

extern const sp_input_type sp_input_forward;

/* ---- TLS writes that fail on demand ---- */

static int fail_tls_write;
int __real_sp_fwd_tls_write(sp_fwd_tls *t, const void *data, size_t len);
int __wrap_sp_fwd_tls_write(sp_fwd_tls *t, const void *data, size_t len)
{
    if (fail_tls_write) return -1;
    return __real_sp_fwd_tls_write(t, data, len);
}

/* ---- the fixture ---- */

static struct {
    sp_daemon d; /* its loop and router; the loop's data must point at a daemon */
    sp_output out;
    sp_output *outs[1];
    sp_input in;
    sp_input *ins[1];
    sp_node *node;
    int fd;
    SSL_CTX *cctx;
    SSL *ssl;
    sp_delivery *dl[32];
    int ndl;
    char dir[64];
} F;

static void fake_deliver(sp_output *o, sp_delivery *d)
{
    assert_true(F.ndl < 32);
    F.dl[F.ndl++] = d;
}

static const sp_output_type fake_output = {.name = "fake", .deliver = fake_deliver};

static void pump(int rounds)
{
    for (int i = 0; i < rounds; i++) {
        uv_run(&F.d.loop, UV_RUN_NOWAIT);
        usleep(500);
    }
}

/* Answers delivery i (in the order the router handed them out) as delivered, and runs the loop
 * once, as after an output's I/O. */
static void deliver(int i)
{
    assert_true(i < F.ndl && F.dl[i]);
    sp_delivery *d = F.dl[i];
    F.dl[i] = NULL;
    sp_output_done(d, SP_OUT_DONE, d->chunk->nrecords, 0);
    pump(1);
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

/* A self-signed certificate and its key under F.dir. */
static void make_cert(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, n);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    char path[128];
    snprintf(path, sizeof path, "%s/cert.pem", F.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
    snprintf(path, sizeof path, "%s/key.pem", F.dir);
    f = fopen(path, "w");
    assert_non_null(f);
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
}

/* Starts the router, the fake output and a forward input with `ack`, and connects a client. */
static void start(const char *ack, int tls)
{
    memset(&F, 0, sizeof F);
    F.fd = -1;
    fail_tls_write = 0;
    uv_loop_init(&F.d.loop);
    F.d.loop.data = &F.d;
    F.d.open_components = 1000; /* never "all closed": the test tears down itself */
    sp_router *r = &F.d.router;
    sp_router_init(r, &F.d.loop);
    r->chunk_size = 1024;
    r->memory_limit = 64u << 20;
    r->flush_interval_ms = 60000; /* chunks close when full or when an ack waits, never by age */
    r->retry_min_ms = 10;
    F.out.type = &fake_output;
    F.out.name = "fake";
    F.out.match = "*";
    F.out.max_inflight = 8;
    F.out.retry_max_ms = 10;
    F.out.loop = &F.d.loop;
    F.out.router = r;
    F.outs[0] = &F.out;
    r->outputs = F.outs;
    r->noutputs = 1;
    F.in.type = &sp_input_forward;
    F.in.name = "forward";
    F.in.loop = &F.d.loop;
    F.in.router = r;
    F.ins[0] = &F.in;
    r->inputs = F.ins;
    r->ninputs = 1;

    char tlsconf[256] = "";
    if (tls) {
        snprintf(F.dir, sizeof F.dir, "/tmp/sp-fwdack.XXXXXX");
        assert_non_null(mkdtemp(F.dir));
        make_cert();
        snprintf(tlsconf, sizeof tlsconf, "tls: {cert: %s/cert.pem, key: %s/key.pem}\n", F.dir,
                 F.dir);
    }
    int port = free_port();
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "listen: 127.0.0.1:%d\nack: %s\nack_spin_us: 0\nmetadata_path: \"\"\n%s", port, ack,
             tlsconf);
    sp_conf_err err = {.file = "test"};
    F.node = sp_yaml_parse(yaml, strlen(yaml), &err);
    assert_non_null(F.node);
    F.in.conf = sp_calloc(1, sp_input_forward.conf_size);
    assert_int_equal(sp_conf_apply(F.in.conf, sp_input_forward.fields, F.node, "in", NULL, &err),
                     0);
    assert_int_equal(sp_input_forward.check(&F.in, F.node, &err), 0);
    sp_router_start(r);
    assert_int_equal(sp_input_forward.start(&F.in), 0);

    F.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(F.fd, (struct sockaddr *)&a, sizeof a), 0);
    fcntl(F.fd, F_SETFL, fcntl(F.fd, F_GETFL) | O_NONBLOCK);
    if (!tls) return;
    F.cctx = SSL_CTX_new(TLS_client_method());
    F.ssl = SSL_new(F.cctx);
    SSL_set_fd(F.ssl, F.fd);
    SSL_set_connect_state(F.ssl);
    for (int i = 0; i < 4000; i++) {
        int rc = SSL_do_handshake(F.ssl);
        if (rc == 1) return;
        int e = SSL_get_error(F.ssl, rc);
        assert_true(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE);
        pump(1);
    }
    fail_msg("TLS handshake did not finish");
}

static void stop(void)
{
    if (F.ssl) SSL_free(F.ssl);
    if (F.cctx) SSL_CTX_free(F.cctx);
    if (F.fd >= 0) close(F.fd);
    pump(5);
    sp_input_forward.stop(&F.in);
    pump(5);
    /* As the daemon's shutdown: the output is closed (nothing more goes out), deliveries in
     * flight end, and the router's close drops what is still queued. */
    F.out.closed = 1;
    for (int i = 0; i < F.ndl; i++)
        if (F.dl[i]) deliver(i);
    sp_router_close(&F.d.router);
    uv_run(&F.d.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&F.d.loop), 0);
    sp_conf_free(F.in.conf, sp_input_forward.fields);
    free(F.in.conf);
    sp_node_free(F.node);
    if (F.dir[0]) {
        char path[128];
        snprintf(path, sizeof path, "%s/cert.pem", F.dir);
        unlink(path);
        snprintf(path, sizeof path, "%s/key.pem", F.dir);
        unlink(path);
        rmdir(F.dir);
    }
}

static void client_send(const sp_buf *b)
{
    size_t off = 0;
    for (int i = 0; off < b->len && i < 4000; i++) {
        int n = F.ssl ? SSL_write(F.ssl, b->base + off, (int)(b->len - off))
                      : (int)send(F.fd, b->base + off, b->len - off, 0);
        if (n > 0)
            off += (size_t)n;
        else
            pump(1);
    }
    assert_int_equal(off, b->len);
    pump(10); /* accepted, read and decoded */
}

/* What shipper has written to the client so far (no waiting): bytes, 0 for end of stream (or
 * a reset), -1 for nothing yet. */
static int client_read(char *buf, size_t cap)
{
    if (F.ssl) {
        int n = SSL_read(F.ssl, buf, (int)cap - 1);
        if (n > 0) {
            buf[n] = 0;
            return n;
        }
        int e = SSL_get_error(F.ssl, n);
        return e == SSL_ERROR_WANT_READ ? -1 : 0;
    }
    ssize_t n = recv(F.fd, buf, cap - 1, MSG_DONTWAIT);
    if (n > 0) {
        buf[n] = 0;
        return (int)n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -1;
    return 0;
}

static int acked(const char *id)
{
    char buf[4096];
    int n = client_read(buf, sizeof buf);
    return n > 0 && memmem(buf, (size_t)n, id, strlen(id)) != NULL;
}

static uint64_t errors(const char *reason)
{
    return sp_reasons_get(&F.in.errors, reason);
}

/* A Forward-mode frame of n records with a `log` of `size` bytes; with `bad_last`, the last
 * entry's record is not a map (the frame is refused after the others were taken). */
static void forward_frame(sp_buf *b, int n, size_t size, const char *chunk_id, int bad_last)
{
    char *pad = malloc(size);
    memset(pad, 'x', size);
    tp_put_array(b, 3);
    tp_put_str(b, "t", 1);
    tp_put_array(b, (uint32_t)n);
    for (int i = 0; i < n; i++) {
        tp_put_array(b, 2);
        tp_put_uint(b, 1700000000);
        if (bad_last && i == n - 1) {
            tp_put_str(b, "not a map", 9);
            continue;
        }
        tp_put_map(b, 1);
        tp_put_str(b, "log", 3);
        tp_put_str(b, pad, size);
    }
    tp_put_map(b, 1);
    tp_put_str(b, "chunk", 5);
    tp_put_str(b, chunk_id, strlen(chunk_id));
    free(pad);
}

/* A Message-mode frame carrying one Docker partial piece. */
static void piece_frame(sp_buf *b, const char *text, int ordinal, int last, const char *chunk_id)
{
    char ord[16];
    snprintf(ord, sizeof ord, "%d", ordinal);
    tp_put_array(b, 4);
    tp_put_str(b, "t", 1);
    tp_put_uint(b, 1700000000);
    tp_put_map(b, 5);
    tp_put_str(b, "log", 3);
    tp_put_str(b, text, strlen(text));
    tp_put_str(b, "partial_message", 15);
    tp_put_str(b, "true", 4);
    tp_put_str(b, "partial_id", 10);
    tp_put_str(b, "p1", 2);
    tp_put_str(b, "partial_ordinal", 15);
    tp_put_str(b, ord, strlen(ord));
    tp_put_str(b, "partial_last", 12);
    tp_put_str(b, last ? "true" : "false", last ? 4 : 5);
    tp_put_map(b, 1);
    tp_put_str(b, "chunk", 5);
    tp_put_str(b, chunk_id, strlen(chunk_id));
}

/* ---- tests ---- */

/* Three records of 600 B over 1 KiB chunks: two chunks. The one with the last record is
 * delivered first; the ack waits for the other. */
static void test_delivered_waits_for_every_chunk(void **st)
{
    start("delivered", 0);
    sp_buf b = {0};
    forward_frame(&b, 3, 600, "frame-A", 0);
    client_send(&b);
    assert_int_equal(F.ndl, 2);
    deliver(1);
    assert_false(acked("frame-A"));
    deliver(0);
    assert_true(acked("frame-A"));
    sp_buf_free(&b);
    stop();
}

/* The same over TLS, with every ack write failing: the connection closes inside the callback
 * that answers the ack, and the waiter is freed once (ASan) and nothing is written. */
static void test_tls_ack_write_fails(void **st)
{
    start("delivered", 1);
    sp_buf b = {0};
    forward_frame(&b, 3, 600, "frame-T", 0);
    forward_frame(&b, 1, 10, "frame-U", 0);
    client_send(&b);
    assert_int_equal(F.ndl, 3);
    fail_tls_write = 1;
    deliver(0);
    deliver(1); /* frame-T answered: its write fails, the connection closes */
    assert_int_equal(errors("tls_error"), 1);
    deliver(2); /* frame-U's waiter, its connection gone */
    pump(5);
    char buf[256];
    assert_int_equal(client_read(buf, sizeof buf), 0); /* closed, no ack */
    sp_buf_free(&b);
    stop();
}

/* The client goes away while its ack waits on two chunks: no ack, no leak, no use after free. */
static void test_conn_closed_while_waiting(void **st)
{
    start("delivered", 0);
    sp_buf b = {0};
    forward_frame(&b, 3, 600, "frame-C", 0);
    client_send(&b);
    assert_int_equal(F.ndl, 2);
    deliver(0);
    close(F.fd);
    F.fd = -1;
    pump(10); /* shipper reads the end of stream and closes the connection */
    deliver(1);
    sp_buf_free(&b);
    stop();
}

/* Shutdown while the waiter is on a chunk in flight and on one still queued (the output takes
 * one at a time): the first is delivered, the second dropped at the router's close; the waiter
 * is freed by the drop (LeakSanitizer), once. */
static void test_shutdown_drops_waiter(void **st)
{
    start("delivered", 0);
    F.out.max_inflight = 1;
    sp_buf b = {0};
    forward_frame(&b, 3, 600, "frame-S", 0);
    client_send(&b);
    assert_int_equal(F.ndl, 1);
    assert_false(acked("frame-S"));
    sp_buf_free(&b);
    stop();
    assert_int_equal(F.ndl, 1); /* the second chunk never went out */
}

/* A frame refused after two of its records were taken (the chunk holding them already went out):
 * no ack for it, and its chunk's later delivery finds no waiter left behind. */
static void test_bad_frame_after_records(void **st)
{
    start("delivered", 0);
    sp_buf b = {0};
    forward_frame(&b, 3, 600, "frame-B", 1);
    client_send(&b);
    assert_int_equal(F.ndl, 1); /* records 0 and 1 filled a chunk */
    assert_true(errors("bad_shape") + errors("malformed") == 1);
    deliver(0);
    char buf[256];
    assert_int_equal(client_read(buf, sizeof buf), 0); /* closed, no ack */
    sp_buf_free(&b);
    stop();
}

/* Docker's partial pieces: a frame whose only record is a piece held for joining is acked at
 * once (Docker sends the next piece only after this ack); the frame with the last piece is
 * acked once the joined line's chunk is delivered. */
static void test_partial_pieces(void **st)
{
    start("delivered", 0);
    sp_buf b = {0};
    piece_frame(&b, "first half ", 1, 0, "piece-1");
    client_send(&b);
    assert_int_equal(F.ndl, 0);
    assert_true(acked("piece-1"));
    b.len = 0;
    piece_frame(&b, "second half", 2, 1, "piece-2");
    client_send(&b);
    assert_int_equal(F.ndl, 1);
    assert_int_equal(F.dl[0]->chunk->nrecords, 1);
    assert_false(acked("piece-2"));
    deliver(0);
    assert_true(acked("piece-2"));
    sp_buf_free(&b);
    stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivered_waits_for_every_chunk),
        cmocka_unit_test(test_tls_ack_write_fails),
        cmocka_unit_test(test_conn_closed_while_waiting),
        cmocka_unit_test(test_shutdown_drops_waiter),
        cmocka_unit_test(test_bad_frame_after_records),
        cmocka_unit_test(test_partial_pieces),
    };
    sp_log_level = SP_LOG_ERROR;
    if (getenv("TEST_FILTER")) cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
