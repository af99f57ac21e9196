/* Leveled logging to stderr, with rate limiting for repeated warnings. */
#ifndef SP_LOG_H
#define SP_LOG_H

#include <stdint.h>

enum { SP_LOG_ERROR = 0, SP_LOG_WARN = 1, SP_LOG_INFO = 2, SP_LOG_DEBUG = 3 };

extern int sp_log_level;

/** Parses "error|warn|info|debug"; returns the level or -1. */
int sp_log_level_parse(const char *s);
void sp_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define sp_error(...) sp_log(SP_LOG_ERROR, __VA_ARGS__)
#define sp_warn(...) sp_log(SP_LOG_WARN, __VA_ARGS__)
#define sp_info(...) sp_log(SP_LOG_INFO, __VA_ARGS__)
#define sp_debug(...)                                                                              \
    do {                                                                                           \
        if (sp_log_level >= SP_LOG_DEBUG) sp_log(SP_LOG_DEBUG, __VA_ARGS__);                       \
    } while (0)

/**
 * A rate limiter for one kind of message: at most one line per `interval_ms`; the next line
 * that gets through says how many were suppressed.
 */
typedef struct {
    uint64_t last_ms;
    uint64_t suppressed;
} sp_ratelimit;

/** Logs through `rl` (one line per 10 s at most). */
void sp_log_limited(sp_ratelimit *rl, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
