/* Leveled logging. Lines are written with one write(2) so concurrent threads don't interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int sp_log_level = SP_LOG_INFO;

static const char *const sp_log_level_names[] = {"error", "warn", "info", "debug"};

int sp_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, sp_log_level_names[i]) == 0) return i;
    return -1;
}

static void sp_log_vlog(int level, const char *prefix, const char *fmt, va_list ap)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, sp_log_level_names[level]);
    if (prefix) n += snprintf(line + n, sizeof line - n, "%s", prefix);
    n += vsnprintf(line + n, sizeof line - n, fmt, ap);
    if (n > (int)sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void sp_log(int level, const char *fmt, ...)
{
    if (level > sp_log_level) return;
    va_list ap;
    va_start(ap, fmt);
    sp_log_vlog(level, NULL, fmt, ap);
    va_end(ap);
}

void sp_log_limited(sp_ratelimit *rl, int level, const char *fmt, ...)
{
    if (level > sp_log_level) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (rl->last_ms && now - rl->last_ms < 10000) {
        rl->suppressed++;
        return;
    }
    char prefix[64] = "";
    if (rl->suppressed)
        snprintf(prefix, sizeof prefix, "(%llu similar suppressed) ",
                 (unsigned long long)rl->suppressed);
    rl->last_ms = now;
    rl->suppressed = 0;
    va_list ap;
    va_start(ap, fmt);
    sp_log_vlog(level, prefix[0] ? prefix : NULL, fmt, ap);
    va_end(ap);
}
