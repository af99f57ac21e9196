/* Elasticsearch output: bulk response parsing (filtered and full items) and per-item
 * classification. */
#include "unit.h"

#include "es.h"

typedef struct {
    int n;
    uint32_t idx[8];
    int status[8];
    char type[8][64];
    char error[8][256];
} seen;

static void cb(void *ctx, uint32_t index, int status, const char *type, const char *reason,
               const char *error)
{
    seen *s = ctx;
    s->idx[s->n] = index;
    s->status[s->n] = status;
    snprintf(s->type[s->n], sizeof s->type[0], "%s", type);
    snprintf(s->error[s->n], sizeof s->error[0], "%s", error);
    s->n++;
}

#define PARSE(lit, n, s) sp_es_parse_response(lit, sizeof(lit) - 1, n, cb, s)

static void test_classes(void **st)
{
    assert_int_equal(sp_es_item_class(200), SP_ES_ITEM_OK);
    assert_int_equal(sp_es_item_class(201), SP_ES_ITEM_OK);
    assert_int_equal(sp_es_item_class(409), SP_ES_ITEM_OK);
    assert_int_equal(sp_es_item_class(429), SP_ES_ITEM_RETRY);
    assert_int_equal(sp_es_item_class(503), SP_ES_ITEM_RETRY);
    assert_int_equal(sp_es_item_class(400), SP_ES_ITEM_REJECT);
    assert_int_equal(sp_es_item_class(404), SP_ES_ITEM_REJECT);
}

static void test_all_ok(void **st)
{
    seen s = {0};
    assert_int_equal(PARSE("{\"errors\":false,\"items\":[{\"create\":{\"status\":201}},"
                           "{\"create\":{\"status\":201}}]}\n",
                           2, &s),
                     2);
    assert_int_equal(s.n, 0);
    /* pretty-printed or reordered bodies go through the full parser */
    assert_int_equal(
        PARSE("{ \"items\" : [ {\"create\":{\"status\":201}} ], \"errors\" : false }", 1, &s), 1);
}

static void test_mixed(void **st)
{
    seen s = {0};
    int64_t ok = PARSE(
        "{\"errors\":true,\"items\":["
        "{\"create\":{\"status\":201}},"
        "{\"create\":{\"status\":409,\"error\":{\"type\":\"version_conflict_engine_exception\"}}},"
        "{\"create\":{\"status\":429,\"error\":{\"type\":\"es_rejected_execution_exception\","
        "\"reason\":\"busy\"}}},"
        "{\"create\":{\"status\":400,\"error\":{\"type\":\"mapper_parsing_exception\",\"reason\":"
        "\"bad\"}}},"
        "{\"create\":{\"status\":503}}]}",
        5, &s);
    assert_int_equal(ok, 2);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.idx[0], 2);
    assert_int_equal(s.status[0], 429);
    assert_int_equal(s.idx[1], 3);
    assert_string_equal(s.type[1], "mapper_parsing_exception");
    assert_string_equal(s.error[1], "{\"type\":\"mapper_parsing_exception\",\"reason\":\"bad\"}");
    assert_int_equal(s.idx[2], 4);
    assert_string_equal(s.type[2], "status_503");
    assert_string_equal(s.error[2], "");
}

static void test_bad_bodies(void **st)
{
    seen s = {0};
    /* truncated */
    assert_int_equal(
        PARSE("{\"errors\":false,\"items\":[{\"create\":{\"status\":201}},{\"crea", 2, &s), -1);
    assert_int_equal(PARSE("{\"errors\":true,\"items\":[{\"create\":{\"status\":400}}", 1, &s), -1);
    /* wrong number of items */
    assert_int_equal(PARSE("{\"errors\":false,\"items\":[{\"create\":{\"status\":201}}]}", 2, &s),
                     -1);
    assert_int_equal(PARSE("{\"errors\":true,\"items\":[{\"create\":{\"status\":400}}]}", 2, &s),
                     -1);
    /* not a bulk response */
    assert_int_equal(PARSE("{\"error\":{\"type\":\"x\"},\"status\":500}", 1, &s), -1);
    assert_int_equal(PARSE("", 1, &s), -1);
    assert_int_equal(PARSE("{\"errors\":true,\"items\":[{\"create\":{\"status\":\"x\"}}]}", 1, &s),
                     -1);
    assert_int_equal(s.n, 0); /* nothing reported from a body that is not whole */
}

/* Elasticsearch without filter_path (or a proxy that drops it): every item in full. */
static void test_full_items(void **st)
{
    seen s = {0};
    static const char ok2[] =
        "{\"took\":30,\"errors\":false,\"items\":["
        "{\"create\":{\"_index\":\"logs-2026.11.30\",\"_id\":\"a1\",\"_version\":1,"
        "\"result\":\"created\",\"_shards\":{\"total\":2,\"successful\":1,\"failed\":0},"
        "\"_seq_no\":0,\"_primary_term\":1,\"status\":201}},"
        "{\"create\":{\"_index\":\"logs-2026.11.30\",\"_id\":\"a2\",\"_version\":1,"
        "\"result\":\"created\",\"_shards\":{\"total\":2,\"successful\":1,\"failed\":0},"
        "\"_seq_no\":1,\"_primary_term\":1,\"status\":201}}]}";
    assert_int_equal(PARSE(ok2, 2, &s), 2);
    assert_int_equal(s.n, 0);
    static const char mixed[] =
        "{\"took\":3,\"errors\":true,\"items\":["
        "{\"create\":{\"_index\":\"i\",\"_id\":\"a\",\"status\":409,\"error\":{\"type\":"
        "\"version_conflict_engine_exception\",\"reason\":\"[a]: version conflict\","
        "\"index_uuid\":\"u\",\"shard\":\"0\",\"index\":\"i\"}}},"
        "{\"create\":{\"_index\":\"i\",\"_id\":\"b\",\"status\":400,\"error\":{\"type\":"
        "\"document_parsing_exception\",\"reason\":\"failed to parse field [n] of type [long]: "
        "\\\"x\\\" \\\\\",\"caused_by\":{\"type\":\"illegal_argument_exception\",\"reason\":"
        "\"For input string: \\\"x\\\"\"}}}},"
        "{\"create\":{\"_index\":\"i\",\"_id\":\"c\",\"_version\":1,\"result\":\"created\","
        "\"_shards\":{\"total\":2,\"successful\":1,\"failed\":0},\"_seq_no\":5,"
        "\"_primary_term\":1,\"status\":201}}]}";
    assert_int_equal(PARSE(mixed, 3, &s), 2);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.idx[0], 1);
    assert_int_equal(s.status[0], 400);
    assert_string_equal(s.type[0], "document_parsing_exception");
    /* a key or string holding "status": is not a status */
    memset(&s, 0, sizeof s);
    assert_int_equal(PARSE("{\"errors\":false,\"items\":[{\"index\":{\"_id\":\"\\\"status\\\":1\","
                           "\"status\":200}}],\"took\":1}",
                           1, &s),
                     1);
    /* an item whose operation object has no status, or two operations, is not whole */
    assert_int_equal(PARSE("{\"errors\":false,\"items\":[{\"create\":{\"_id\":\"a\"}}]}", 1, &s),
                     -1);
    assert_int_equal(
        PARSE("{\"errors\":true,\"items\":[{\"create\":{\"status\":201},\"x\":{}}]}", 1, &s), -1);
    /* "errors":false before the items: counted, not read (one status each, the array last);
     * what does not add up is scanned in full */
    assert_int_equal(
        PARSE("{\"errors\":false,\"items\":[{\"create\":{\"status\":201},\"x\":{}}]}", 1, &s), 1);
    assert_int_equal(PARSE("{\"errors\":false,\"items\":[{\"create\":{\"status\":201}},"
                           "{\"create\":{\"status\":201}}] } \n",
                           2, &s),
                     2);
    assert_int_equal(PARSE("{\"errors\":false,\"items\":[{\"create\":{\"status\":201}},"
                           "{\"create\":{\"status\":201}}]}",
                           3, &s),
                     -1);
    assert_int_equal(PARSE("{\"errors\":false,\"items\":[{\"create\":{\"status\":201}}]}}", 1, &s),
                     -1);
    /* only JSON white space may follow, as in the full scan */
    assert_int_equal(
        PARSE("{\"errors\":false,\"items\":[{\"create\":{\"status\":201}}]}\x01", 1, &s), -1);
    assert_int_equal(s.n, 0);
}

/* A response of 20,000 full items: counted exactly, the one failure reported. */
static void test_large_full_response(void **st)
{
    sp_buf b = {0};
    sp_buf_printf(&b, "{\"took\":120,\"errors\":true,\"items\":[");
    for (int i = 0; i < 20000; i++)
        sp_buf_printf(&b,
                      "%s{\"create\":{\"_index\":\"logs\",\"_id\":\"%032x\",\"_version\":1,"
                      "\"result\":\"created\",\"_shards\":{\"total\":2,\"successful\":1,"
                      "\"failed\":0},\"_seq_no\":%d,\"_primary_term\":1,\"status\":%d%s}}",
                      i ? "," : "", i, i, i == 12345 ? 429 : 201,
                      i == 12345 ? ",\"error\":{\"type\":\"es_rejected_execution_exception\"}"
                                 : "");
    sp_buf_printf(&b, "]}");
    seen s = {0};
    assert_int_equal(sp_es_parse_response(b.base, b.len, 20000, cb, &s), 19999);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.idx[0], 12345);
    assert_string_equal(s.type[0], "es_rejected_execution_exception");
    assert_int_equal(sp_es_parse_response(b.base, b.len - 1, 20000, cb, &s), -1);
    sp_buf_free(&b);
}

/* The pool half notes failed items (and reuses its array), the loop half reports them; strings
 * with escaped quotes and backslashes are skipped whole by the byte loop. */
static void test_scan_then_report(void **st)
{
    static const char body[] = "{\"took\":3,\"errors\":true,\"items\":["
                               "{\"create\":{\"_id\":\"a\\\"b\\\\\",\"status\":201}},"
                               "{\"create\":{\"_id\":\"c\",\"status\":400,\"error\":{\"type\":"
                               "\"mapper_parsing_exception\","
                               "\"reason\":\"x \\\"y\\\" }\"}}},"
                               "{\"create\":{\"status\":429}}]}";
    sp_es_failures f = {0};
    for (int round = 0; round < 2; round++) {
        seen s = {0};
        assert_int_equal(sp_es_scan_response(body, sizeof body - 1, 3, &f), 1);
        assert_int_equal(f.n, 2);
        assert_int_equal(s.n, 0);
        sp_es_report_failures(&f, cb, &s);
        assert_int_equal(s.n, 2);
        assert_int_equal(s.idx[0], 1);
        assert_string_equal(s.type[0], "mapper_parsing_exception");
        assert_int_equal(s.idx[1], 2);
        assert_int_equal(s.status[1], 429);
    }
    assert_int_equal(sp_es_scan_response(body, sizeof body - 2, 3, &f), -1);
    free(f.v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_all_ok),
        cmocka_unit_test(test_mixed),
        cmocka_unit_test(test_bad_bodies),
        cmocka_unit_test(test_full_items),
        cmocka_unit_test(test_large_full_response),
        cmocka_unit_test(test_scan_then_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
