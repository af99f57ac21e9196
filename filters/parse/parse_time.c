/*
 * parse's `time_key`: a decoded field read as the record's time (docs/filters.md, "parse").
 * Formats: RFC 3339 / ISO 8601 (read by hand: no locale, no allocation), seconds or milli-,
 * micro-, nanoseconds since the epoch (numbers or numeric text), or a strptime(3) format with
 * Fluent Bit's `%L` for the fraction of a second. A time that does not read is -1: the record
 * keeps the time it came with.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strptime, tm_gmtoff */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "mp.h"
#include "parse_int.h"
#include "record.h"

static const char *const sp_ptime_names[] = {"rfc3339", "epoch", "epoch_ms", "epoch_us",
                                             "epoch_ns"};

int sp_parse_time_compile(sp_parse_time_fmt *t, const char *format, char *why, size_t whycap)
{
    memset(t, 0, sizeof *t);
    for (int k = 0; k < SP_PTIME_STRPTIME; k++)
        if (strcmp(format, sp_ptime_names[k]) == 0) {
            t->kind = k;
            return 0;
        }
    if (!strchr(format, '%')) {
        snprintf(why, whycap,
                 "\"%s\": rfc3339, epoch, epoch_ms, epoch_us, epoch_ns or a strptime format",
                 format);
        return -1;
    }
    const char *l = strstr(format, "%L");
    if (l && strstr(l + 2, "%L")) {
        snprintf(why, whycap, "\"%s\": %%L at most once", format);
        return -1;
    }
    t->kind = SP_PTIME_STRPTIME;
    t->before = strndup(format, l ? (size_t)(l - format) : strlen(format));
    t->after = l ? strdup(l + 2) : NULL;
    return 0;
}

void sp_parse_time_free(sp_parse_time_fmt *t)
{
    free(t->before);
    free(t->after);
    memset(t, 0, sizeof *t);
}

static int sp_ptime_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* The time of a civil date and clock, less a zone offset (seconds east of UTC): 0 with *sec, or
 * -1 when a field is out of its range or the time is before 1970 or after SP_TIME_MAX_SEC. */
static int sp_ptime_make(int64_t y, int mo, int d, int h, int mi, int s, int64_t off, uint64_t *sec)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || y > 9999 || mo < 1 || mo > 12 || d < 1 ||
        d > mdays[mo - 1] + (mo == 2 && sp_ptime_leap(y)) || h > 23 || mi > 59 || s > 60 || h < 0 ||
        mi < 0 || s < 0)
        return -1;
    int64_t t = sp_json_days(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s - off;
    if (t < 0 || (uint64_t)t > SP_TIME_MAX_SEC) return -1;
    *sec = (uint64_t)t;
    return 0;
}

/* n digits at *p as a number (advancing); -1 when one is not a digit or the text ends. */
static int sp_ptime_num(const char **p, const char *end, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (*p >= end || **p < '0' || **p > '9') return -1;
        v = v * 10 + (**p - '0');
    }
    return v;
}

/* A fraction of a second's digits at *p (at least one): nanoseconds, and how many digits came
 * (at most 9 kept; more are read and dropped). */
static int sp_ptime_frac(const char **p, const char *end, uint32_t *nsec, uint8_t *prec)
{
    uint32_t v = 0;
    int n = 0;
    for (; *p < end && **p >= '0' && **p <= '9'; (*p)++, n++)
        if (n < 9) v = v * 10 + (uint32_t)(**p - '0');
    if (!n) return -1;
    *prec = (uint8_t)(n < 9 ? n : 9);
    for (int i = n; i < 9; i++)
        v *= 10;
    *nsec = v;
    return 0;
}

/* A zone at *p: Z, or +hh:mm, +hhmm, +hh (or -); seconds east of UTC. -1 when malformed. */
static int sp_ptime_zone(const char **p, const char *end, int64_t *off)
{
    if (**p == 'Z' || **p == 'z') {
        (*p)++;
        *off = 0;
        return 0;
    }
    int sign = **p == '-' ? -1 : 1;
    if (**p != '+' && **p != '-') return -1;
    (*p)++;
    int h = sp_ptime_num(p, end, 2), m = 0;
    if (h < 0 || h > 23) return -1;
    if (*p < end && **p == ':') (*p)++;
    if (*p < end && (m = sp_ptime_num(p, end, 2)) < 0) return -1;
    if (m > 59) return -1;
    *off = sign * (int64_t)(h * 3600 + m * 60);
    return 0;
}

/* RFC 3339, and the ISO 8601 forms logs use: a space for the T, any number of fraction digits,
 * no zone (UTC). */
static int sp_ptime_rfc3339(const char *s, const char *end, uint64_t *sec, uint32_t *nsec,
                            uint8_t *prec)
{
    const char *p = s;
    int y = sp_ptime_num(&p, end, 4);
    if (y < 0 || p >= end || *p++ != '-') return -1;
    int mo = sp_ptime_num(&p, end, 2);
    if (mo < 0 || p >= end || *p++ != '-') return -1;
    int d = sp_ptime_num(&p, end, 2);
    if (d < 0 || p >= end || (*p != 'T' && *p != 't' && *p != ' ')) return -1;
    p++;
    int h = sp_ptime_num(&p, end, 2);
    if (h < 0 || p >= end || *p++ != ':') return -1;
    int mi = sp_ptime_num(&p, end, 2);
    if (mi < 0 || p >= end || *p++ != ':') return -1;
    int se = sp_ptime_num(&p, end, 2);
    if (se < 0) return -1;
    *nsec = 0;
    *prec = 0;
    if (p < end && (*p == '.' || *p == ',')) {
        p++;
        if (sp_ptime_frac(&p, end, nsec, prec)) return -1;
    }
    int64_t off = 0;
    if (p < end && sp_ptime_zone(&p, end, &off)) return -1;
    if (p != end) return -1;
    return sp_ptime_make(y, mo, d, h, mi, se, off, sec);
}

/* The epoch formats' units, by SP_PTIME_*: seconds, milli-, micro-, nanoseconds. */
static const uint64_t sp_ptime_unit[] = {0, 1, 1000, 1000000, 1000000000};

/* v units since the epoch: the seconds, the rest as nanoseconds (added to *nsec) and the digits
 * a unit gives; -1 past SP_TIME_MAX_SEC. */
static int sp_ptime_count(uint64_t v, uint64_t unit, uint64_t *sec, uint32_t *nsec, uint8_t *prec)
{
    *sec = v / unit;
    *nsec += (uint32_t)((v % unit) * (1000000000 / unit));
    if (unit > 1) *prec = unit == 1000 ? 3 : unit == 1000000 ? 6 : 9;
    return *sec <= SP_TIME_MAX_SEC ? 0 : -1;
}

/* A count of units since the epoch as digits; for seconds a fraction after a '.'. */
static int sp_ptime_epoch_text(const char *p, const char *end, uint64_t unit, uint64_t *sec,
                               uint32_t *nsec, uint8_t *prec)
{
    uint64_t v = 0;
    const char *start = p;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10) return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (p == start) return -1;
    *nsec = 0;
    *prec = 0;
    if (p < end && *p == '.' && unit == 1) {
        p++;
        if (sp_ptime_frac(&p, end, nsec, prec)) return -1;
    }
    if (p != end) return -1;
    return sp_ptime_count(v, unit, sec, nsec, prec);
}

/* strptime(3) with `%L` (the fraction) between t->before and t->after; no %z: UTC. */
static int sp_ptime_strptime(const sp_parse_time_fmt *t, const char *s, size_t len, uint64_t *sec,
                             uint32_t *nsec, uint8_t *prec)
{
    char buf[SP_PARSE_TIME_MAX + 1];
    if (len > SP_PARSE_TIME_MAX || memchr(s, 0, len)) return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    struct tm tm = {.tm_mday = 1};
    const char *p = strptime(buf, t->before, &tm);
    if (!p) return -1;
    *nsec = 0;
    *prec = 0;
    if (t->after) {
        if (sp_ptime_frac(&p, buf + len, nsec, prec)) return -1;
        if (!(p = strptime(p, t->after, &tm))) return -1;
    }
    if (*p) return -1; /* text left over */
    return sp_ptime_make((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                         tm.tm_min, tm.tm_sec, tm.tm_gmtoff, sec);
}

int sp_parse_time_text(const sp_parse_time_fmt *t, const char *s, size_t len, uint64_t *sec,
                       uint32_t *nsec, uint8_t *prec)
{
    switch (t->kind) {
    case SP_PTIME_RFC3339:
        return sp_ptime_rfc3339(s, s + len, sec, nsec, prec);
    case SP_PTIME_STRPTIME:
        return sp_ptime_strptime(t, s, len, sec, nsec, prec);
    default:
        return sp_ptime_epoch_text(s, s + len, sp_ptime_unit[t->kind], sec, nsec, prec);
    }
}

int sp_parse_time(const sp_parse_time_fmt *t, sp_slice raw, uint64_t *sec, uint32_t *nsec,
                  uint8_t *prec)
{
    const uint8_t *p = (const uint8_t *)raw.base;
    sp_mp_obj o;
    if (!raw.len || sp_mp_read(&p, p + raw.len, &o)) return -1;
    if (o.type == SP_MP_STR) return sp_parse_time_text(t, o.s.base, o.s.len, sec, nsec, prec);
    if (t->kind == SP_PTIME_RFC3339 || t->kind == SP_PTIME_STRPTIME) return -1;
    if (o.type == SP_MP_UINT) { /* whole units since the epoch */
        *nsec = 0;
        *prec = 0;
        return sp_ptime_count(o.v.u, sp_ptime_unit[t->kind], sec, nsec, prec);
    }
    if (o.type != SP_MP_FLOAT || t->kind != SP_PTIME_EPOCH || !(o.v.f >= 0) ||
        o.v.f > (double)SP_TIME_MAX_SEC)
        return -1;
    /* a double near today's times resolves about a quarter of a microsecond: microseconds */
    uint64_t us = (uint64_t)(o.v.f * 1e6 + 0.5);
    *sec = us / 1000000;
    *nsec = (uint32_t)(us % 1000000) * 1000;
    *prec = 6;
    return *sec <= SP_TIME_MAX_SEC ? 0 : -1;
}
