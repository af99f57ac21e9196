/* Elasticsearch output: bulk response parsing and per-item classification. */
#include "unit.h"

#include "outputs/elasticsearch/es.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_all_ok),
        cmocka_unit_test(test_mixed),
        cmocka_unit_test(test_bad_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
