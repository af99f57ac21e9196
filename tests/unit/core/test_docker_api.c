/* The Docker Engine API client against a fake daemon on a Unix socket in the test: bodies with
 * Content-Length and chunked, split at awkward places; error statuses; a daemon that hangs up,
 * is not there, or does not answer; the bound on concurrent requests; the /events stream. */
#include "unit.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "docker_api.h"

#define FAKE_MAX_PIECES 16

/* What the fake daemon answers to the next connections: `pieces` written one write() each (a
 * short pause between them, so the client reads them apart), then it holds the connection until
 * `release` when `hold` is set, and closes. */
static struct {
    int lfd;
    char path[108];
    pthread_t thread;
    const char *pieces[FAKE_MAX_PIECES];
    int npieces;
    int hold;
    atomic_int accepted, closed, release, stop;
    char request[2048];
} fake;

static void fake_serve(int fd)
{
    size_t got = 0;
    while (got < sizeof fake.request - 1) {
        ssize_t n = read(fd, fake.request + got, sizeof fake.request - 1 - got);
        if (n <= 0) break;
        got += (size_t)n;
        fake.request[got] = 0;
        if (strstr(fake.request, "\r\n\r\n")) break;
    }
    for (int i = 0; i < fake.npieces; i++) {
        if (write(fd, fake.pieces[i], strlen(fake.pieces[i])) < 0) break;
        usleep(5000);
    }
    while (fake.hold && !atomic_load(&fake.release) && !atomic_load(&fake.stop))
        usleep(1000);
}

static void *fake_main(void *arg)
{
    for (;;) {
        int fd = accept(fake.lfd, NULL, NULL);
        if (fd < 0 || atomic_load(&fake.stop)) {
            if (fd >= 0) close(fd);
            return NULL;
        }
        atomic_fetch_add(&fake.accepted, 1);
        fake_serve(fd);
        close(fd);
        atomic_fetch_add(&fake.closed, 1);
    }
}

/* Lets a held connection go and waits until the fake daemon has closed it. */
static void fake_release(void)
{
    atomic_store(&fake.release, 1);
    for (int i = 0; i < 30000 && atomic_load(&fake.closed) < atomic_load(&fake.accepted); i++)
        usleep(1000);
}

static void fake_answer(int hold, int n, ...)
{
    fake_release(); /* the previous connection is done: its script may change */
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        fake.pieces[i] = va_arg(ap, const char *);
    va_end(ap);
    fake.npieces = n;
    fake.hold = hold;
    atomic_store(&fake.release, 0);
}

static int setup(void **st)
{
    signal(SIGPIPE, SIG_IGN); /* the daemon writes to clients that gave up */
    memset(&fake, 0, sizeof fake);
    snprintf(fake.path, sizeof fake.path, "/tmp/sp-docker-api-%d.sock", (int)getpid());
    unlink(fake.path);
    fake.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, fake.path);
    if (bind(fake.lfd, (struct sockaddr *)&sa, sizeof sa) || listen(fake.lfd, 8)) return -1;
    pthread_create(&fake.thread, NULL, fake_main, NULL);
    sp_docker_api *a;
    if (sp_docker_api_open(&a, fake.path, 1, 4096)) return -1;
    *st = a;
    return 0;
}

static int teardown(void **st)
{
    sp_docker_api_close(*st);
    atomic_store(&fake.stop, 1);
    shutdown(fake.lfd, SHUT_RDWR);
    /* accept() does not always wake on shutdown of a listener: knock once. */
    int k = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, fake.path);
    connect(k, (struct sockaddr *)&sa, sizeof sa);
    pthread_join(fake.thread, NULL);
    close(k);
    close(fake.lfd);
    unlink(fake.path);
    return 0;
}

static void test_content_length_split(void **st)
{
    fake_answer(0, 4, "HTTP/1.1 200 OK\r\nContent-Ty", "pe: application/json\r\nContent-Length: 27",
                "\r\n\r\n{\"Name\":\"/web-1\",", "\"Id\":\"ab\"}");
    json_t *j;
    assert_int_equal(sp_docker_get_json(*st, "/containers/ab/json", 5000, &j), 0);
    assert_string_equal(json_string_value(json_object_get(j, "Name")), "/web-1");
    assert_string_equal(json_string_value(json_object_get(j, "Id")), "ab");
    json_decref(j);
    assert_non_null(strstr(fake.request, "GET /containers/ab/json HTTP/1.1\r\n"));
}

static void test_chunked_split(void **st)
{
    fake_answer(0, 5, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\n[1,2,\r\n",
                "3\r", "\n3]\n\r\n0", "\r\n\r\n");
    sp_buf b = {0};
    assert_int_equal(sp_docker_get(*st, "/x", 5000, &b), 200);
    assert_int_equal(b.len, 8);
    assert_memory_equal(b.base, "[1,2,3]\n", 8);
    sp_buf_free(&b);
}

static void test_statuses_and_errors(void **st)
{
    fake_answer(0, 1, "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}");
    json_t *j = (json_t *)1;
    assert_int_equal(sp_docker_get_json(*st, "/containers/nope/json", 5000, &j), 404);
    assert_null(j);
    fake_answer(0, 1, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nnot");
    assert_int_equal(sp_docker_get_json(*st, "/x", 5000, &j), -EBADMSG);
    fake_answer(0, 0); /* hangs up without a word */
    sp_buf b = {0};
    assert_true(sp_docker_get(*st, "/x", 5000, &b) < 0);
    fake_answer(0, 1, "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"); /* over max_body */
    assert_true(sp_docker_get(*st, "/x", 5000, &b) < 0);
    fake_answer(1, 0); /* never answers */
    assert_int_equal(sp_docker_get(*st, "/x", 300, &b), -ETIMEDOUT);
    fake_release();
    sp_buf_free(&b);
}

static void test_no_daemon(void **st)
{
    char path[108];
    snprintf(path, sizeof path, "/tmp/sp-docker-api-none-%d.sock", (int)getpid());
    sp_docker_api *a;
    assert_int_equal(sp_docker_api_open(&a, path, 1, 0), -ENOENT);
    /* The socket file is there, nobody listens. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(sp_docker_api_open(&a, path, 1, 0), 0);
    sp_buf b = {0};
    assert_int_equal(sp_docker_get(a, "/x", 1000, &b), -ECONNREFUSED);
    sp_docker_api_close(a);
    close(fd);
    unlink(path);
}

static void *slow_get(void *arg)
{
    sp_buf b = {0};
    intptr_t rc = sp_docker_get(arg, "/slow", 30000, &b);
    sp_buf_free(&b);
    return (void *)rc;
}

static void test_bound(void **st)
{
    /* max_requests is 1: while one request is held, a second waits for its slot and times out
     * without connecting. */
    fake_answer(1, 1, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
    pthread_t t;
    int before = atomic_load(&fake.accepted);
    pthread_create(&t, NULL, slow_get, *st);
    for (int i = 0; i < 30000 && atomic_load(&fake.accepted) == before; i++)
        usleep(1000);
    assert_int_equal(atomic_load(&fake.accepted), before + 1);
    sp_buf b = {0};
    assert_int_equal(sp_docker_get(*st, "/x", 200, &b), -ETIMEDOUT);
    assert_int_equal(atomic_load(&fake.accepted), before + 1);
    fake_release(); /* the held body ends short */
    void *rc;
    pthread_join(t, &rc);
    assert_true((intptr_t)rc < 0);
    sp_buf_free(&b);
}

typedef struct {
    char lines[8][64];
    int n;
    atomic_int cancel;
    int cancel_after;
} lines_ctx;

static int on_line(void *arg, const char *line, size_t len)
{
    lines_ctx *c = arg;
    if (c->n < 8) snprintf(c->lines[c->n], 64, "%.*s", (int)len, line);
    c->n++;
    if (c->cancel_after && c->n == c->cancel_after) atomic_store(&c->cancel, 1);
    return 0;
}

static void test_stream(void **st)
{
    /* Lines split across chunks and chunk boundaries, two in one chunk, then a clean end. */
    fake_answer(0, 6, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "6\r\n{\"a\":1\r\n",
                "2\r\n}\n\r\n", "e\r\n{\"b\":2}\n{\"c\":3\r\n", "2\r\n}\n\r\n", "0\r\n\r\n");
    lines_ctx c = {0};
    assert_int_equal(sp_docker_stream(*st, "/events", 5000, &c.cancel, on_line, &c), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.lines[0], "{\"a\":1}");
    assert_string_equal(c.lines[1], "{\"b\":2}");
    assert_string_equal(c.lines[2], "{\"c\":3}");

    /* The daemon goes away mid-stream (a restart): the lines before, then -ECONNRESET. */
    fake_answer(0, 3, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                "8\r\n{\"d\":4}\n\r\n", "5\r\n{\"e\"");
    memset(&c, 0, sizeof c);
    assert_int_equal(sp_docker_stream(*st, "/events", 5000, &c.cancel, on_line, &c), -ECONNRESET);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.lines[0], "{\"d\":4}");

    /* An error status. */
    fake_answer(0, 1, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops");
    memset(&c, 0, sizeof c);
    assert_int_equal(sp_docker_stream(*st, "/events", 5000, &c.cancel, on_line, &c), 500);
    assert_int_equal(c.n, 0);

    /* Cancelled while the daemon has nothing to say. */
    fake_answer(1, 2, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                "8\r\n{\"f\":5}\n\r\n");
    memset(&c, 0, sizeof c);
    c.cancel_after = 1;
    assert_int_equal(sp_docker_stream(*st, "/events", 5000, &c.cancel, on_line, &c), -ECANCELED);
    assert_int_equal(c.n, 1);
    fake_release();
}

static void test_escape(void **st)
{
    sp_buf b = {0};
    sp_docker_escape(&b, "{\"type\":[\"container\"]}");
    sp_buf_putc(&b, 0);
    assert_string_equal(b.base, "%7B%22type%22%3A%5B%22container%22%5D%7D");
    sp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length_split),
        cmocka_unit_test(test_chunked_split),
        cmocka_unit_test(test_statuses_and_errors),
        cmocka_unit_test(test_no_daemon),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_escape),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
