/*
 * parse's `level_key`: a decoded level written as one of trace, debug, info, warn, error, fatal
 * (docs/filters.md, "parse"): the names and abbreviations of the common loggers (log4j/logback,
 * Python logging, Go's zap/logrus/klog letters, .NET, syslog), any case, and the numbers of
 * syslog severities (0-7) and of pino/bunyan (10-60).
 */
#include <string.h>

#include "mp.h"
#include "parse_int.h"

static const struct {
    const char *name;
    uint8_t level;
} sp_plevel_names[] = {
    {"trace", SP_LEVEL_TRACE},  {"trc", SP_LEVEL_TRACE},        {"verbose", SP_LEVEL_TRACE},
    {"vrb", SP_LEVEL_TRACE},    {"finest", SP_LEVEL_TRACE},     {"finer", SP_LEVEL_TRACE},
    {"debug", SP_LEVEL_DEBUG},  {"dbg", SP_LEVEL_DEBUG},        {"dbug", SP_LEVEL_DEBUG},
    {"fine", SP_LEVEL_DEBUG},   {"d", SP_LEVEL_DEBUG},          {"info", SP_LEVEL_INFO},
    {"inf", SP_LEVEL_INFO},     {"information", SP_LEVEL_INFO}, {"informational", SP_LEVEL_INFO},
    {"notice", SP_LEVEL_INFO},  {"i", SP_LEVEL_INFO},           {"warn", SP_LEVEL_WARN},
    {"warning", SP_LEVEL_WARN}, {"wrn", SP_LEVEL_WARN},         {"w", SP_LEVEL_WARN},
    {"error", SP_LEVEL_ERROR},  {"err", SP_LEVEL_ERROR},        {"eror", SP_LEVEL_ERROR},
    {"severe", SP_LEVEL_ERROR}, {"e", SP_LEVEL_ERROR},          {"fatal", SP_LEVEL_FATAL},
    {"ftl", SP_LEVEL_FATAL},    {"critical", SP_LEVEL_FATAL},   {"crit", SP_LEVEL_FATAL},
    {"crt", SP_LEVEL_FATAL},    {"panic", SP_LEVEL_FATAL},      {"dpanic", SP_LEVEL_FATAL},
    {"alert", SP_LEVEL_FATAL},  {"emerg", SP_LEVEL_FATAL},      {"emergency", SP_LEVEL_FATAL},
    {"f", SP_LEVEL_FATAL},
};

const char *const sp_parse_level_names[] = {"trace", "debug", "info", "warn", "error", "fatal"};

/* A number as a level: syslog severities 0-7, pino/bunyan 10-60 (by tens). */
static int sp_plevel_number(uint64_t v)
{
    static const int8_t syslog[] = {SP_LEVEL_FATAL, SP_LEVEL_FATAL, SP_LEVEL_FATAL, SP_LEVEL_ERROR,
                                    SP_LEVEL_WARN,  SP_LEVEL_INFO,  SP_LEVEL_INFO,  SP_LEVEL_DEBUG};
    if (v <= 7) return syslog[v];
    if (v >= 10 && v <= 60 && v % 10 == 0) return (int)(v / 10) - 1;
    return -1;
}

int sp_parse_level_text(const char *s, size_t len)
{
    char low[16];
    if (!len || len >= sizeof low) return -1;
    uint64_t num = 0;
    int digits = 1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        digits &= c >= '0' && c <= '9';
        num = num * 10 + (uint64_t)(c - '0');
        low[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
    }
    if (digits) return sp_plevel_number(num);
    for (size_t i = 0; i < sizeof sp_plevel_names / sizeof *sp_plevel_names; i++)
        if (strlen(sp_plevel_names[i].name) == len &&
            memcmp(sp_plevel_names[i].name, low, len) == 0)
            return sp_plevel_names[i].level;
    return -1;
}

int sp_parse_level(sp_slice raw)
{
    const uint8_t *p = (const uint8_t *)raw.base;
    sp_mp_obj o;
    if (!raw.len || sp_mp_read(&p, p + raw.len, &o)) return -1;
    if (o.type == SP_MP_STR) return sp_parse_level_text(o.s.base, o.s.len);
    if (o.type == SP_MP_UINT) return sp_plevel_number(o.v.u);
    return -1;
}
