/* Filters allocate nothing per record in the common case (issue #13, docs/filters.md "The
 * stage"): records run through parse json, parse logfmt, parse regex, select, modify and redact
 * with malloc, calloc and realloc counted (this program's own, which replace glibc's for every
 * library, PCRE2 included, and call glibc's; under ASan, its allocator's hooks); after a warm-up
 * the count does not grow with the number of records. */
#include "filter_unit.h"

static int alloc_on;
static uint64_t allocs;

#if defined(__SANITIZE_ADDRESS__)
#define ALLOC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ALLOC_ASAN 1
#endif
#endif

#ifdef ALLOC_ASAN
/* Under ASan (tests/run.sh's build-asan) its allocator is the one to count: its hooks. */
void __sanitizer_install_malloc_and_free_hooks(void (*m)(const volatile void *, size_t),
                                               void (*f)(const volatile void *));
static void alloc_hook(const volatile void *p, size_t n)
{
    allocs += alloc_on;
}
static void alloc_free_hook(const volatile void *p) {}
static void alloc_count_start(void)
{
    __sanitizer_install_malloc_and_free_hooks(alloc_hook, alloc_free_hook);
}
#else
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t m);
void *__libc_realloc(void *p, size_t n);

void *malloc(size_t n)
{
    allocs += alloc_on;
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    allocs += alloc_on;
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    allocs += alloc_on;
    return __libc_realloc(p, n);
}

static void alloc_count_start(void) {}
#endif

/* Record i: a JSON message whose fields vary in content (not much in size), with a logfmt field,
 * an address and a card number to redact; every 7th is dropped by select, and every 11th is
 * not JSON. */
static void alloc_msg(sp_buf *b, unsigned i)
{
    b->len = 0;
    if (i % 11 == 5) { /* not JSON: passes parse unchanged (counted), select drops it */
        sp_buf_printf(b, "plain text line %05u user%03u@example.com", i, i % 1000);
        return;
    }
    sp_buf_printf(b,
                  "{\"level\":\"%s\",\"code\":%u,\"lat\":1%03u.%02u,\"ok\":true,"
                  "\"tags\":[\"a\",1%05u],\"kv\":\"user=u%05u op=\\\"read %05u\\\" path=/v1/x%02u "
                  "flag\",\"http\":{\"m\":\"GET\",\"s\":%u},\"msg\":\"req %05u from "
                  "user%03u@example.com card 4111 1111 1111 1111 tab\\there \\u00e9\"}",
                  i % 7 ? "info" : "debug", 200 + i % 300, i % 1000, i % 97, i, i, i, i % 50,
                  200 + i % 5, i, i % 1000);
}

static const char *const alloc_chain =
    "  - type: parse\n"
    "  - type: parse\n    format: logfmt\n    field: kv\n    into: kv\n    keep_original: false\n"
    "  - type: parse\n    format: regex\n    field: msg\n    into: req\n"
    "    pattern: '^req (?<n>\\d+) from (?<who>\\S+)'\n"
    "  - type: select\n    include: {level: 'info', code: '/^[0-9]+$/'}\n"
    "    exclude: {http.m: 'DEL*'}\n"
    "  - type: modify\n    rename: {level: severity}\n    copy: {code: status}\n"
    "    remove: [ok]\n    add: {env: prod}\n    set: {team: core}\n"
    "  - type: redact\n    builtins: [email, card, bearer]\n";

/* Runs records [from, from + n) through the chain; the allocations counted meanwhile. */
static uint64_t alloc_run(unsigned from, unsigned n, unsigned *kept)
{
    static sp_buf m;
    alloc_msg(&m, 0); /* the buffer's growth is the test's, not the filters' */
    sp_buf_reserve(&m, 1024);
    uint64_t before = allocs;
    for (unsigned i = from; i < from + n; i++) {
        alloc_on = 0;
        alloc_msg(&m, i);
        alloc_on = 1;
        sp_record r = flt_rec(m.base, m.len, NULL, 0);
        int v = SP_FILTER_KEEP;
        for (size_t k = 0; k < flt_d.nfilters && v == SP_FILTER_KEEP; k++) {
            sp_filter *f = flt_d.filters[k];
            v = f->type->apply(f, &r, SP_SLICE_LIT("fwd.web-1"));
        }
        alloc_on = 0;
        *kept += v == SP_FILTER_KEEP;
    }
    return allocs - before;
}

static void test_no_alloc_per_record(void **st)
{
    alloc_count_start();
    assert_int_equal(flt_load(alloc_chain), 0);
    unsigned kept = 0;
    uint64_t a0 = alloc_run(0, 100, &kept); /* warm-up: buffers grow to their size */
    uint64_t a1 = alloc_run(100, 1000, &kept);
    uint64_t a10 = alloc_run(1100, 10000, &kept);
    print_message("allocations: %llu for 1000 records, %llu for 10000\n", (unsigned long long)a1,
                  (unsigned long long)a10);
    assert_true(a0 > 0); /* the count works */
    assert_int_equal(a1, 0);
    assert_int_equal(a10, 0);
    unsigned want = 0;
    for (unsigned i = 0; i < 11100; i++)
        want += i % 7 && i % 11 != 5;
    assert_int_equal(kept, want); /* select ran */
    assert_int_equal(sp_reasons_get(&flt_d.filters[0]->results, "unparsed"), 1009);
    /* The chain did what it says (so the loop above measured real work). */
    sp_buf m = {0};
    alloc_msg(&m, 1);
    sp_record r = flt_rec(m.base, m.len, NULL, 0);
    for (size_t k = 0; k < flt_d.nfilters; k++)
        assert_int_equal(flt_run(k, &r), SP_FILTER_KEEP);
    assert_has(
        flt_doc,
        "\"kv\":{\"user\":\"u00001\",\"op\":\"read 00001\",\"path\":\"/v1/x01\",\"flag\":true}");
    assert_has(flt_doc, "\"req\":{\"n\":\"00001\",\"who\":\"user001@example.com\"}");
    assert_has(flt_doc, "\"severity\":\"info\"");
    assert_has(flt_doc, "\"status\":201");
    assert_has(flt_doc, "\"env\":\"prod\",\"team\":\"core\"");
    assert_has(flt_doc, "from [REDACTED] card [REDACTED] tab");
    assert_lacks(flt_doc, "\"ok\"");
    sp_buf_free(&m);
    flt_unload();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_alloc_per_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
