/*
 * shipper-bench pingpong: the floor of a request-ack client on this machine, without shipper.
 * A child process answers each request with a short reply, like shipper's ack; the parent sends
 * one request at a time over loopback TCP and blocks in read() for the answer, like a client
 * with one frame in flight. With --spin the answering side polls epoll_wait(0) without sleeping
 * (what shipper's ack_spin_us does); without it, it sleeps in epoll_wait. The figure is what no
 * server can beat with such a client.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static void pp_answer(int ls, int spin, size_t reply)
{
    int s = accept(ls, NULL, NULL), one = 1;
    if (s < 0) _exit(1);
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    char buf[4096];
    for (;;) {
        struct epoll_event out;
        if (epoll_wait(ep, &out, 1, spin ? 0 : -1) <= 0) continue;
        ssize_t n = read(s, buf, sizeof buf);
        if (n <= 0) _exit(0);
        if (write(s, buf, reply) != (ssize_t)reply) _exit(1);
    }
}

int bench_pingpong_main(int argc, char **argv)
{
    uint64_t n = 200000, size = 250;
    int spin = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--spin")) {
            spin = 1;
        } else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
            if (bench_parse_count(argv[++i], &n) || !n) bench_usage_die("bad --count");
        } else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            if (bench_parse_count(argv[++i], &size) || !size || size > 4096)
                bench_usage_die("bad --size (1..4096)");
        } else {
            bench_usage_die("pingpong: unknown argument '%s'", argv[i]);
        }
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1) ||
        getsockname(ls, (struct sockaddr *)&a, &alen))
        bench_die("listen: %m");
    pid_t child = fork();
    if (child < 0) bench_die("fork: %m");
    if (child == 0) pp_answer(ls, spin, 30); /* an ack for a 24-char chunk id is ~30 bytes */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a)) bench_die("connect: %m");
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buf[4096] = {0};
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++)
        if (write(c, buf, size) != (ssize_t)size || read(c, buf, sizeof buf) <= 0)
            bench_die("round trip %llu: %m", (unsigned long long)i);
    double sec = (double)(bench_now_ns() - t0) / 1e9;
    close(c);
    waitpid(child, NULL, 0);
    printf("pingpong (%s answerer): %llu round trips of %llu bytes in %.3f s = %.0f/s\n",
           spin ? "spinning" : "sleeping", (unsigned long long)n, (unsigned long long)size, sec,
           (double)n / sec);
    return 0;
}
