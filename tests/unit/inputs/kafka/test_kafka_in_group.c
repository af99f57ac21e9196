/* The kafka input's rebalance callback (inputs/kafka/kafka_in_group.c) when librdkafka cannot
 * name the group's rebalance protocol. rd_kafka_rebalance_protocol answers NULL once the group
 * is being left: a revoke that rd_kafka_consumer_close serves at stop got NULL there and
 * crashed the process (strcmp on NULL; seen as SIGSEGV on SIGTERM in test_kafka_input). A
 * consumer without group.id has no group, so the protocol is NULL here every time. */
#include "unit.h"

#include "kafka_in_int.h"

static rd_kafka_t *test_consumer(void)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(c, "bootstrap.servers", "127.0.0.1:9", err, sizeof err),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    assert_non_null(rk);
    assert_null(rd_kafka_rebalance_protocol(rk)); /* the condition under test */
    return rk;
}

/* At stop (closing): the revoke is answered by giving the partitions up, without a crash. */
static void test_revoke_while_closing(void **state)
{
    rd_kafka_t *rk = test_consumer();
    sp_kafka_in k;
    memset(&k, 0, sizeof k);
    sp_list_init(&k.parts);
    k.closing = 1;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, "logs", 3);
    sp_kafka_in_rebalance_cb(rk, RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, l, &k);
    sp_kafka_in_rebalance_cb(rk, RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, l, &k);
    assert_int_equal(k.rebalances, 0); /* closing: not counted, nothing set up */
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
}

/* Running: a revoke still starts the drain (the last protocol seen, eager by default). */
static void test_revoke_running(void **state)
{
    rd_kafka_t *rk = test_consumer();
    uv_loop_t loop;
    uv_loop_init(&loop);
    sp_input in = {.name = "kafka", .loop = &loop};
    sp_kafka_in_conf conf = {.revoke_timeout = 1000};
    sp_kafka_in k;
    memset(&k, 0, sizeof k);
    k.in = &in;
    k.conf = &conf;
    k.rk = rk;
    sp_list_init(&k.parts);
    uv_timer_init(&loop, &k.drain_timer);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, "logs", 3);
    sp_kafka_in_rebalance_cb(rk, RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, l, &k);
    assert_int_equal(k.rebalances, 1);
    assert_non_null(k.revoking);
    assert_int_equal(k.revoke_coop, 0);
    assert_true(uv_is_active((uv_handle_t *)&k.drain_timer));
    uv_timer_stop(&k.drain_timer);
    uv_close((uv_handle_t *)&k.drain_timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    rd_kafka_topic_partition_list_destroy(k.revoking);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_revoke_while_closing),
        cmocka_unit_test(test_revoke_running),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
