/* One Forward connection of `shipper-bench forward`: connect, prebuild, send, read acks.
 *
 * Each connection runs in its own thread with a blocking (no-ack, and ack with one frame in
 * flight) or non-blocking + poll (ack with a window) socket. All frames are encoded before the
 * clock starts (see bench_payload.c); while timing, a thread only patches sequence digits and chunk
 * ids in place and writes runs of whole frames of ~512 KiB, so one core of the generator outruns
 * the daemon by a wide margin.
 */
#include "bench_forward.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

typedef struct {
    char id[BENCH_CHUNK_LEN];
    uint64_t t0;
    int acked;
} bench_inflight_t;

/* Target size of one write(): big enough that syscalls cost nothing per record. */
#define BENCH_RUN_BYTES (512 * 1024)
/* Compressed frames cannot be patched, so each is distinct and prebuilt; past this much raw
 * data per connection the pool is cycled (sequence numbers then repeat). */
#define BENCH_POOL_RAW_BYTES (256ull * 1024 * 1024)

static void conn_fail(bench_conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_fail(bench_conn_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(c->err, sizeof(c->err), "connection %u: ", c->id);
    vsnprintf(c->err + n, sizeof(c->err) - (size_t)n, fmt, ap);
    va_end(ap);
    atomic_store(&c->run->failed, 1);
}

static int bench_connect(bench_conn_t *c, const char *addr)
{
    if (strncmp(addr, "unix://", 7) == 0) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(addr + 7) >= sizeof(sa.sun_path)) {
            conn_fail(c, "unix socket path too long: %s", addr + 7);
            return -1;
        }
        strcpy(sa.sun_path, addr + 7);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
            conn_fail(c, "cannot connect to %s: %s", addr, strerror(errno));
            if (fd >= 0) close(fd);
            return -1;
        }
        return fd;
    }

    /* host:port or [v6]:port */
    char host[256];
    const char *port;
    if (addr[0] == '[') {
        const char *rb = strchr(addr, ']');
        if (rb == NULL || rb[1] != ':' || (size_t)(rb - addr - 1) >= sizeof(host)) {
            conn_fail(c, "bad address '%s' (want HOST:PORT, [V6]:PORT or unix:///PATH)", addr);
            return -1;
        }
        memcpy(host, addr + 1, (size_t)(rb - addr - 1));
        host[rb - addr - 1] = '\0';
        port = rb + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (colon == NULL || (size_t)(colon - addr) >= sizeof(host)) {
            conn_fail(c, "bad address '%s' (want HOST:PORT, [V6]:PORT or unix:///PATH)", addr);
            return -1;
        }
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        port = colon + 1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        conn_fail(c, "cannot resolve %s: %s", addr, gai_strerror(rc));
        return -1;
    }
    int fd = -1, saved = 0;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        saved = errno;
        if (fd >= 0) close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        conn_fail(c, "cannot connect to %s: %s", addr, strerror(saved));
        return -1;
    }
    /* Go (Docker's client) sets TCP_NODELAY on every TCP connection; so do we, or small
     * acked frames would wait on Nagle. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Rewrites the sequence digits of frames [f0, f1) of blk; record r of that range gets seq + r. */
static void patch_seq(bench_block_t *blk, size_t f0, size_t f1, uint64_t seq)
{
    if (blk->seq_off == NULL) return;
    size_t r0 = f0 * blk->records_per_frame, r1 = f1 * blk->records_per_frame;
    for (size_t r = r0; r < r1; r++)
        bench_seq_write(blk->bytes.data + blk->seq_off[r], seq + (r - r0));
}

/* Chunk ids are unique per run, connection and frame: 4 bytes nonce, 4 connection, 8 frame. */
static void make_chunk_id(const bench_conn_t *c, uint64_t frame, char out[BENCH_CHUNK_LEN])
{
    uint8_t raw[16];
    for (int i = 0; i < 4; i++) {
        raw[i] = (uint8_t)(c->nonce >> (24 - 8 * i));
        raw[4 + i] = (uint8_t)(c->id >> (24 - 8 * i));
    }
    for (int i = 0; i < 8; i++)
        raw[8 + i] = (uint8_t)(frame >> (56 - 8 * i));
    bench_base64(raw, sizeof(raw), out);
}

/* Picks the next run of frames to send starting at connection frame `next` and at most `max`
 * long; patches their sequence numbers. Returns the block and sets *i0 and *n. */
static bench_block_t *next_run(bench_conn_t *c, uint64_t next, uint64_t max, size_t *i0, size_t *n)
{
    bench_block_t *blk;
    if (next < c->full_frames) {
        blk = &c->main;
        *i0 = (size_t)(next % blk->nframes);
        uint64_t m = blk->nframes - *i0;
        if (m > c->full_frames - next) m = c->full_frames - next;
        *n = (size_t)(m < max ? m : max);
    } else {
        blk = &c->tail;
        *i0 = 0;
        *n = 1;
    }
    patch_seq(blk, *i0, *i0 + *n, next * c->per_frame);
    return blk;
}

static int write_all(bench_conn_t *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(c->fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            conn_fail(c, "write failed after %llu bytes: %s", (unsigned long long)c->bytes,
                      strerror(errno));
            return -1;
        }
        p += w;
        n -= (size_t)w;
        c->bytes += (uint64_t)w;
    }
    return 0;
}

static void run_noack(bench_conn_t *c)
{
    uint64_t total = c->full_frames + (c->tail_records ? 1 : 0);
    uint64_t next = 0;
    c->t_first = bench_now_ns();
    while (next < total && !atomic_load_explicit(&c->run->failed, memory_order_relaxed)) {
        size_t i0, n;
        bench_block_t *blk = next_run(c, next, UINT64_MAX, &i0, &n);
        size_t start = bench_block_frame_start(blk, i0);
        if (write_all(c, blk->bytes.data + start, blk->frame_end[i0 + n - 1] - start) != 0) return;
        uint64_t recs = blk == &c->tail ? c->tail_records : (uint64_t)n * c->per_frame;
        next += n;
        atomic_fetch_add_explicit(&c->sent_records, recs, memory_order_relaxed);
    }
    c->t_last = bench_now_ns();
}

/* Ack mode: keep at most --window frames written but not acked; match every ack to its frame
 * and time it. Non-blocking so acks are read as soon as they arrive, which keeps the latency
 * figures honest even with a wide window. */
static void run_ack(bench_conn_t *c)
{
    const bench_fwd_opts_t *o = c->o;
    uint64_t total = c->full_frames + (c->tail_records ? 1 : 0);
    uint64_t next = 0, acked = 0;
    size_t W = (size_t)o->window, head = 0, count = 0;
    bench_inflight_t *ring = bench_xcalloc(W, sizeof(*ring));
    uint64_t timeout_ns = (uint64_t)(o->ack_timeout * 1e9);
    char rbuf[64 * 1024];
    size_t rlen = 0;
    const char *wp = NULL;
    size_t wleft = 0;
    uint64_t run_records = 0;

    c->lat_ns = bench_xcalloc(total, sizeof(uint64_t));
    c->t_first = bench_now_ns();
    while (acked < total) {
        if (atomic_load_explicit(&c->run->failed, memory_order_relaxed)) goto out;
        uint64_t now = bench_now_ns();
        if (wleft == 0 && next < total && count < W) {
            size_t i0, n;
            bench_block_t *blk = next_run(c, next, W - count, &i0, &n);
            for (size_t j = 0; j < n; j++) {
                bench_inflight_t *e = &ring[(head + count) % W];
                make_chunk_id(c, next + j, e->id);
                memcpy(blk->bytes.data + blk->chunk_off[i0 + j], e->id, BENCH_CHUNK_LEN);
                e->t0 = now;
                e->acked = 0;
                count++;
            }
            size_t start = bench_block_frame_start(blk, i0);
            wp = blk->bytes.data + start;
            wleft = blk->frame_end[i0 + n - 1] - start;
            run_records = blk == &c->tail ? c->tail_records : (uint64_t)n * c->per_frame;
            next += n;
        }
        if (wleft > 0) {
            ssize_t w = write(c->fd, wp, wleft);
            if (w > 0) {
                wp += w;
                wleft -= (size_t)w;
                c->bytes += (uint64_t)w;
                if (wleft == 0)
                    atomic_fetch_add_explicit(&c->sent_records, run_records, memory_order_relaxed);
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                conn_fail(c, "write failed after %llu bytes: %s", (unsigned long long)c->bytes,
                          strerror(errno));
                goto out;
            }
        }

        int timeout_ms = -1;
        if (count > 0) {
            uint64_t deadline = ring[head].t0 + timeout_ns;
            if (now >= deadline) {
                conn_fail(c, "no ack for chunk %.*s (frame %llu) within %.1f s", BENCH_CHUNK_LEN,
                          ring[head].id, (unsigned long long)acked, o->ack_timeout);
                goto out;
            }
            timeout_ms = (int)((deadline - now) / 1000000) + 1;
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN | (wleft ? POLLOUT : 0)};
        int pr = poll(&pfd, 1, timeout_ms);
        if (pr < 0 && errno != EINTR) {
            conn_fail(c, "poll: %s", strerror(errno));
            goto out;
        }
        if (pr <= 0 || !(pfd.revents & (POLLIN | POLLHUP | POLLERR))) continue;

        ssize_t r = read(c->fd, rbuf + rlen, sizeof(rbuf) - rlen);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_fail(c, "server closed the connection with %zu frame(s) unacked (%s)", count,
                      r == 0 ? "EOF" : strerror(errno));
            goto out;
        }
        if (r < 0) continue;
        rlen += (size_t)r;
        now = bench_now_ns();
        size_t pos = 0;
        for (;;) {
            size_t used, idlen;
            const char *id, *err = NULL;
            int rc = bench_mp_read_ack(rbuf + pos, rlen - pos, &used, &id, &idlen, &err);
            if (rc == 0) break;
            if (rc < 0) {
                conn_fail(c, "bad response from server: %s", err);
                goto out;
            }
            pos += used;
            size_t k = 0;
            while (k < count && !(idlen == BENCH_CHUNK_LEN && !ring[(head + k) % W].acked &&
                                  memcmp(ring[(head + k) % W].id, id, BENCH_CHUNK_LEN) == 0))
                k++;
            if (k == count) {
                conn_fail(c, "ack '%.*s' matches no frame in flight",
                          (int)(idlen > 64 ? 64 : idlen), id);
                goto out;
            }
            bench_inflight_t *e = &ring[(head + k) % W];
            e->acked = 1;
            c->lat_ns[c->nlat++] = now - e->t0;
            /* Acks may come out of order; the window only slides past acked frames. */
            while (count > 0 && ring[head].acked) {
                head = (head + 1) % W;
                count--;
                acked++;
            }
        }
        memmove(rbuf, rbuf + pos, rlen - pos);
        rlen -= pos;
        if (rlen == sizeof(rbuf)) {
            conn_fail(c, "ack response larger than %zu bytes", sizeof(rbuf));
            goto out;
        }
    }
    c->t_last = bench_now_ns();
out:
    free(ring);
}

/* Ack mode with one frame in flight (--window 1): the client that `shipper-bench pingpong`
 * times, so the two figures compare: a blocking write of the frame, then blocking reads until
 * its ack (SO_RCVTIMEO is --ack-timeout). Two system calls a frame where the poll loop above
 * makes three (write, poll, read); that third call was the generator's cost, not the daemon's. */
static void run_ack_one(bench_conn_t *c)
{
    uint64_t total = c->full_frames + (c->tail_records ? 1 : 0);
    char rbuf[4096];
    bench_inflight_t e;
    c->lat_ns = bench_xcalloc(total, sizeof(uint64_t));
    c->t_first = bench_now_ns();
    for (uint64_t next = 0; next < total; next++) {
        if (atomic_load_explicit(&c->run->failed, memory_order_relaxed)) return;
        size_t i0, n;
        bench_block_t *blk = next_run(c, next, 1, &i0, &n);
        make_chunk_id(c, next, e.id);
        memcpy(blk->bytes.data + blk->chunk_off[i0], e.id, BENCH_CHUNK_LEN);
        size_t start = bench_block_frame_start(blk, i0);
        const char *wp = blk->bytes.data + start;
        size_t wleft = blk->frame_end[i0] - start;
        e.t0 = bench_now_ns();
        while (wleft > 0) {
            ssize_t w = write(c->fd, wp, wleft);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                conn_fail(c, "write failed after %llu bytes: %s", (unsigned long long)c->bytes,
                          strerror(errno));
                return;
            }
            wp += w;
            wleft -= (size_t)w;
            c->bytes += (uint64_t)w;
        }
        atomic_fetch_add_explicit(&c->sent_records,
                                  blk == &c->tail ? c->tail_records : c->per_frame,
                                  memory_order_relaxed);
        size_t rlen = 0;
        for (;;) {
            ssize_t r = read(c->fd, rbuf + rlen, sizeof(rbuf) - rlen);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                conn_fail(c, "no ack for chunk %.*s (frame %llu) within %.1f s", BENCH_CHUNK_LEN,
                          e.id, (unsigned long long)next, c->o->ack_timeout);
                return;
            }
            if (r <= 0) {
                conn_fail(c, "server closed the connection with 1 frame unacked (%s)",
                          r == 0 ? "EOF" : strerror(errno));
                return;
            }
            rlen += (size_t)r;
            size_t used, idlen;
            const char *id, *err = NULL;
            int rc = bench_mp_read_ack(rbuf, rlen, &used, &id, &idlen, &err);
            if (rc < 0) {
                conn_fail(c, "bad response from server: %s", err);
                return;
            }
            if (rc == 0) {
                if (rlen == sizeof(rbuf)) {
                    conn_fail(c, "ack response larger than %zu bytes", sizeof(rbuf));
                    return;
                }
                continue;
            }
            if (idlen != BENCH_CHUNK_LEN || memcmp(id, e.id, BENCH_CHUNK_LEN) != 0 ||
                used != rlen) {
                conn_fail(c, "ack '%.*s' does not match the frame in flight (%.*s)",
                          (int)(idlen > 64 ? 64 : idlen), id, BENCH_CHUNK_LEN, e.id);
                return;
            }
            break;
        }
        c->lat_ns[c->nlat++] = bench_now_ns() - e.t0;
    }
    c->t_last = bench_now_ns();
}

void *bench_conn_thread(void *arg)
{
    bench_conn_t *c = arg;
    const bench_fwd_opts_t *o = c->o;
    bench_payload_opts_t po = {.mode = o->mode,
                               .tag = o->tag,
                               .log_size = (size_t)o->size,
                               .containers = (uint32_t)o->containers,
                               .eventtime = o->eventtime,
                               .json = o->json,
                               .ack = o->ack,
                               .conn = c->id};

    /* Connect and encode before the barrier so neither is timed. */
    c->fd = bench_connect(c, o->addr);
    if (c->fd >= 0) {
        uint64_t est = (uint64_t)c->per_frame * (o->size + 150) + 64;
        uint64_t k;
        if (o->mode == BENCH_MODE_COMPRESSED)
            k = BENCH_POOL_RAW_BYTES / est;
        else
            k = (BENCH_RUN_BYTES + est - 1) / est;
        if (k < 1) k = 1;
        if (k > c->full_frames) k = c->full_frames;
        if (k > 0) bench_block_build(&c->main, &po, (size_t)k, c->per_frame, 0);
        if (c->tail_records > 0)
            bench_block_build(&c->tail, &po, 1, c->tail_records, c->full_frames * c->per_frame);
        if (o->ack && o->window > 1) {
            fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        } else if (o->ack) { /* run_ack_one: blocking, the ack wait bounded by SO_RCVTIMEO */
            struct timeval tv = {
                .tv_sec = (time_t)o->ack_timeout,
                .tv_usec = (suseconds_t)((o->ack_timeout - (double)(time_t)o->ack_timeout) * 1e6)};
            setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        }
    }
    pthread_barrier_wait(&c->run->start);
    if (c->fd >= 0 && !atomic_load(&c->run->failed)) {
        if (o->ack && o->window == 1)
            run_ack_one(c);
        else if (o->ack)
            run_ack(c);
        else
            run_noack(c);
    }
    if (c->fd >= 0) close(c->fd);
    return NULL;
}
