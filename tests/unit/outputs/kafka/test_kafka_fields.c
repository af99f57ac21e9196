/* The kafka output's pure parts: key/topic field selection, failure counting, statistics. */
#include "unit.h"
#include "mp_pack.h"

#include "mp.h"
#include "kafka.h"

static void test_field_parse(void **st)
{
    (void)st;
    sp_kafka_field f;
    assert_int_equal(sp_kafka_field_parse("container.id", 1, &f), 0);
    assert_int_equal(f.kind, SP_KF_ID);
    assert_int_equal(sp_kafka_field_parse("container.name", 0, &f), 0);
    assert_int_equal(f.kind, SP_KF_NAME);
    assert_int_equal(sp_kafka_field_parse("none", 1, &f), 0);
    assert_int_equal(f.kind, SP_KF_NONE);
    assert_int_equal(sp_kafka_field_parse("none", 0, &f), -1); /* topic_key: none makes no sense */
    assert_int_equal(sp_kafka_field_parse("", 1, &f), -1);
    assert_int_equal(sp_kafka_field_parse("app", 1, &f), 0);
    assert_int_equal(f.kind, SP_KF_EXTRA);
}

static void test_field_get(void **st)
{
    (void)st;
    sp_buf ex = {0};
    tp_put_str(&ex, "n", 1);
    tp_put_uint(&ex, 7); /* not a string: never a key */
    tp_put_str(&ex, "app", 3);
    tp_put_str(&ex, "web", 3);
    sp_record r = {0};
    r.container_id = SP_SLICE_LIT("abc");
    r.container_name = SP_SLICE_LIT("web-1");
    r.nextras = 2;
    r.extras = sp_buf_slice(&ex);
    sp_slice tag = SP_SLICE_LIT("docker.web-1");
    sp_kafka_field f;
    sp_kafka_field_parse("container.id", 1, &f);
    assert_true(SP_SLICE_IS(sp_kafka_field_get(&f, &r, tag), "abc"));
    sp_kafka_field_parse("tag", 1, &f);
    assert_true(SP_SLICE_IS(sp_kafka_field_get(&f, &r, tag), "docker.web-1"));
    sp_kafka_field_parse("app", 1, &f);
    assert_true(SP_SLICE_IS(sp_kafka_field_get(&f, &r, tag), "web"));
    sp_kafka_field_parse("n", 1, &f);
    assert_null(sp_kafka_field_get(&f, &r, tag).base);
    sp_kafka_field_parse("missing", 1, &f);
    assert_null(sp_kafka_field_get(&f, &r, tag).base);
    sp_kafka_field_parse("none", 1, &f);
    assert_null(sp_kafka_field_get(&f, &r, tag).base);
    sp_buf_free(&ex);
}

static void test_failures_and_stats(void **st)
{
    (void)st;
    sp_kafka *k = calloc(1, sizeof *k);
    sp_kafka_count_failure(k, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
    sp_kafka_count_failure(k, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    sp_kafka_count_failure(k, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
    assert_int_equal(k->failed[0].n, 2);
    assert_int_equal(k->failed[1].n, 1);
    /* The shape librdkafka 2.0 writes: totals last, partitions repeat "txmsgs". */
    char json[] = "{ \"name\": \"shipper#producer-1\", \"msg_cnt\":12, \"brokers\":{ "
                  "\"b1\": { \"outbuf_msg_cnt\":3, \"rtt\": { \"min\":10, \"max\":900, "
                  "\"avg\":450, \"cnt\":3 } }, "
                  "\"boot\": { \"rtt\": { \"min\":0, \"max\":0, \"avg\":0, \"cnt\":0 } }, "
                  "\"b2\": { \"rtt\": { \"min\":10, \"max\":90, \"avg\":50, \"cnt\":9 } } }, "
                  "\"topics\":{ \"logs\": { \"partitions\": { \"0\": { \"txmsgs\":400, "
                  "\"txbytes\":1 } } } }, \"tx\":7, \"txmsgs\":1000, \"txmsg_bytes\":250000 }";
    sp_kafka_stats_cb(NULL, json, strlen(json), k);
    assert_int_equal(k->st_txmsgs, 1000);
    assert_int_equal(k->st_txbytes, 250000);
    assert_int_equal(k->st_msg_cnt, 12);
    assert_true(k->st_rtt_avg_us == 450);
    free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_parse),
        cmocka_unit_test(test_field_get),
        cmocka_unit_test(test_failures_and_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
