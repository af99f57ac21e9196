/*
 * multiline's rules (docs/filters.md, "multiline"): per language, a start pattern and
 * transitions (state, pattern, next state), as Fluent Bit's built-in multiline parsers and
 * Google's detect-exceptions plugin describe stack traces. Written for shipper; patterns are
 * PCRE2 (sp_pattern, written /.../), compiled once, JIT where available.
 */
#include <stdlib.h>
#include <string.h>

#include "ml_int.h"

static const struct {
    uint8_t lang;
    const char *re;
} sp_ml_starts[] = {
    /* sp_ml_rules_may_start must stay a superset of these */
    {SP_ML_PYTHON, "^Traceback \\(most recent call last\\):$"},
    {SP_ML_GO, "^(?:panic: |fatal error: )"},
    /* java before nodejs: "Caused by:" only java's rules know, and java's frames cover node's */
    {SP_ML_JAVA, "(?:Exception|Error|Throwable)(?::|$)"},
    {SP_ML_NODEJS, "^[\\w$.]*(?:Error|Exception)(?: \\[\\w+\\])?(?::|$)"},
};

static const struct {
    uint8_t lang, state, next;
    const char *re;
} sp_ml_builtin[] = {
    /* java: frames, causes, suppressed, elided frames */
    {SP_ML_JAVA, 1, 1, "^\\s+(?:eval )?at "},
    {SP_ML_JAVA, 1, 1, "^\\s*(?:Caused by|Suppressed):"},
    {SP_ML_JAVA, 1, 1, "^\\s*\\.\\.\\. \\d+ (?:more|common frames omitted)"},
    {SP_ML_JAVA, 1, 1, "^\\s*nested exception is:"},
    /* python: indented lines, then the exception line; chained tracebacks after a blank line */
    {SP_ML_PYTHON, 1, 1, "^[\\t ]+"},
    {SP_ML_PYTHON, 1, 2, "^[A-Za-z_][\\w.]*(?::.*)?$"},
    {SP_ML_PYTHON, 2, 3, "^$"},
    {SP_ML_PYTHON, 3, 4,
     "^(?:During handling of the above exception, another exception occurred|"
     "The above exception was the direct cause of the following exception):$"},
    {SP_ML_PYTHON, 4, 5, "^$"},
    {SP_ML_PYTHON, 5, 1, "^Traceback \\(most recent call last\\):$"},
    /* go: goroutine headers, function lines, tab-indented file lines, blank lines */
    {SP_ML_GO, 1, 1, "^$"},
    {SP_ML_GO, 1, 1, "^goroutine \\d+ \\["},
    {SP_ML_GO, 1, 1, "^\\t"},
    {SP_ML_GO, 1, 1, "^\\S+\\(.*\\)$"},
    {SP_ML_GO, 1, 1, "^created by "},
    {SP_ML_GO, 1, 1, "^\\s*panic: "},
    {SP_ML_GO, 1, 1, "^\\[(?:signal|recovered)"},
    {SP_ML_GO, 1, 1, "^\\s*\\.\\.\\.\\d+ frames elided\\.\\.\\.$"},
    {SP_ML_GO, 1, 1, "^[a-z0-9]{1,4}\\s+0x[0-9a-f]+$"},
    {SP_ML_GO, 1, 1, "^exit status \\d+$"},
    /* nodejs: frames, elided frames, the error's properties and cause */
    {SP_ML_NODEJS, 1, 1, "^\\s+at "},
    {SP_ML_NODEJS, 1, 1, "^\\s+\\.\\.\\. \\d+ (?:more|lines matching cause stack trace)"},
    {SP_ML_NODEJS, 1, 1, "^\\s+\\[?[\\w$]+\\]?: "},
    {SP_ML_NODEJS, 1, 1, "^\\s*\\}$"},
};

/* A regex as sp_pattern (shipper/filter.h) takes it: written /.../. */
static sp_pattern *sp_ml_compile(const char *re, char *why, size_t whycap)
{
    size_t n = strlen(re);
    char *text = sp_calloc(1, n + 3);
    text[0] = '/';
    memcpy(text + 1, re, n);
    text[n + 1] = '/';
    sp_pattern *p = sp_pattern_new(text, why, whycap);
    free(text);
    return p;
}

int sp_ml_rules_init(sp_ml_rules *rs, int mode, const char *start, const char *cont, char *why,
                     size_t whycap)
{
    memset(rs, 0, sizeof *rs);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    rs->avx2 = __builtin_cpu_supports("avx2") != 0;
#endif
    if (mode == SP_ML_CUSTOM) {
        rs->start[0].lang = SP_ML_CUSTOM;
        rs->rule[0] = (sp_ml_rule){SP_ML_CUSTOM, 1, 1, NULL};
        rs->nstart = rs->nrule = 1;
        rs->custom = 1;
        if (!(rs->start[0].re = sp_ml_compile(start, why, whycap))) return -1;
        if (!(rs->rule[0].re = sp_ml_compile(cont, why, whycap))) return -1;
    } else {
        for (size_t i = 0; i < sizeof sp_ml_starts / sizeof *sp_ml_starts; i++) {
            if (mode != SP_ML_AUTO && sp_ml_starts[i].lang != mode) continue;
            sp_ml_start *s = &rs->start[rs->nstart++];
            s->lang = sp_ml_starts[i].lang;
            if (!(s->re = sp_ml_compile(sp_ml_starts[i].re, why, whycap))) return -1;
        }
        for (size_t i = 0; i < sizeof sp_ml_builtin / sizeof *sp_ml_builtin; i++) {
            if (mode != SP_ML_AUTO && sp_ml_builtin[i].lang != mode) continue;
            sp_ml_rule *r = &rs->rule[rs->nrule++];
            *r = (sp_ml_rule){sp_ml_builtin[i].lang, sp_ml_builtin[i].state, sp_ml_builtin[i].next,
                              NULL};
            if (!(r->re = sp_ml_compile(sp_ml_builtin[i].re, why, whycap))) return -1;
        }
    }
    return 0;
}

void sp_ml_rules_free(sp_ml_rules *rs)
{
    for (size_t i = 0; i < rs->nstart; i++)
        if (rs->start[i].re) sp_pattern_free(rs->start[i].re);
    for (size_t i = 0; i < rs->nrule; i++)
        if (rs->rule[i].re) sp_pattern_free(rs->rule[i].re);
    memset(rs, 0, sizeof *rs);
}

static int sp_ml_prefix(sp_slice line, const char *lit, size_t n)
{
    return line.len >= n && line.base[0] == lit[0] && memcmp(line.base, lit, n) == 0;
}

/* Whether one of the words starts at p[0] (an 'E' or a 'T'); end: the line's end. */
static inline int sp_ml_word_at(const char *p, const char *end)
{
    if (*p == 'E')
        return (end - p >= 5 && memcmp(p + 1, "rror", 4) == 0) ||
               (end - p >= 9 && memcmp(p + 1, "xception", 8) == 0);
    return end - p >= 9 && memcmp(p + 1, "hrowable", 8) == 0;
}

/* Whether line has "Error" or "Exception" (one pass over its 'E's), or "Throwable". */
static int sp_ml_has_words_scalar(sp_slice line)
{
    const char *p = line.base, *end = line.base + line.len;
    while (end - p >= 5 && (p = memchr(p, 'E', (size_t)(end - p) - 4))) {
        if (sp_ml_word_at(p, end)) return 1;
        p++;
    }
    for (p = line.base; end - p >= 9 && (p = memchr(p, 'T', (size_t)(end - p) - 8)); p++)
        if (sp_ml_word_at(p, end)) return 1;
    return 0;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

__attribute__((target("avx2"))) static int sp_ml_has_words_avx2(sp_slice line)
{
    const char *s = line.base, *end = s + line.len;
    if (line.len < 32) return sp_ml_has_words_scalar(line);
    const __m256i e = _mm256_set1_epi8('E'), t = _mm256_set1_epi8('T');
    for (size_t i = 0;;) {
        size_t at = i + 32 <= line.len ? i : line.len - 32;
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(s + at));
        uint32_t m = (uint32_t)_mm256_movemask_epi8(
            _mm256_or_si256(_mm256_cmpeq_epi8(v, e), _mm256_cmpeq_epi8(v, t)));
        m &= ~0u << (i - at);
        for (; m; m &= m - 1)
            if (sp_ml_word_at(s + at + __builtin_ctz(m), end)) return 1;
        if (at + 32 >= line.len) return 0;
        i = at + 32;
    }
}
#endif

static int sp_ml_has_words(const sp_ml_rules *rs, sp_slice line)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (rs->avx2) return sp_ml_has_words_avx2(line);
#endif
    return sp_ml_has_words_scalar(line);
}

int sp_ml_rules_may_start(const sp_ml_rules *rs, sp_slice line)
{
    if (rs->custom) return 1;
    /* every built-in start pattern (sp_ml_starts) needs one of these: a superset, so a line
     * that has none of them skips the PCRE2 matches (most lines of most containers) */
    return sp_ml_prefix(line, "Traceback", 9) || sp_ml_prefix(line, "panic: ", 7) ||
           sp_ml_prefix(line, "fatal error: ", 13) || sp_ml_has_words(rs, line);
}

int sp_ml_rules_start(sp_ml_rules *rs, sp_slice line)
{
    if (!sp_ml_rules_may_start(rs, line)) return 0;
    for (size_t i = 0; i < rs->nstart; i++)
        if (sp_pattern_match(rs->start[i].re, line)) return rs->start[i].lang;
    return 0;
}

int sp_ml_rules_continue(sp_ml_rules *rs, int lang, uint8_t *state, sp_slice line)
{
    for (size_t i = 0; i < rs->nrule; i++) {
        sp_ml_rule *r = &rs->rule[i];
        if (r->lang != lang || r->state != *state) continue;
        if (sp_pattern_match(r->re, line)) {
            *state = r->next;
            return 1;
        }
    }
    return 0;
}
