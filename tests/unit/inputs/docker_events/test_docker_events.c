/* docker_events: the resume point skips what is before it and, at its very nanosecond, the
 * events already taken; it survives the state file. */
#include "unit.h"

#include <errno.h>
#include <unistd.h>

#include "docker_events_int.h"

static void test_point(void **st)
{
    sp_de_point p = {.time_nano = 100};
    assert_int_equal(sp_de_point_take(&p, 99, "a start"), 0); /* before: seen already */
    assert_int_equal(sp_de_point_take(&p, 100, "a start"), 1);
    assert_int_equal(sp_de_point_take(&p, 100, "a start"), 0); /* the same event again */
    assert_int_equal(sp_de_point_take(&p, 100, "b start"), 1); /* another at that time */
    assert_int_equal(p.nkeys, 2);
    assert_int_equal(sp_de_point_take(&p, 101, "a die"), 1);
    assert_int_equal(p.nkeys, 1); /* keys are only those at the latest time */
    assert_int_equal(sp_de_point_take(&p, 100, "c start"), 0);
    assert_int_equal(sp_de_point_take(&p, 101, "a die"), 0);
    sp_buf_free(&p.keys);
}

static void test_state_roundtrip(void **st)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/sp-de-state-%d", (int)getpid());
    sp_de_point p = {0}, q = {0};
    sp_de_point_take(&p, 1764561519122616028ULL, "f8ef die");
    sp_de_point_take(&p, 1764561519122616028ULL, "f8ef health_status: healthy");
    assert_int_equal(sp_de_state_save(path, &p), 0);
    assert_int_equal(sp_de_state_load(path, &q), 0);
    assert_true(q.time_nano == 1764561519122616028ULL);
    assert_int_equal(q.nkeys, 2);
    assert_int_equal(sp_de_point_take(&q, q.time_nano, "f8ef die"), 0);
    assert_int_equal(sp_de_point_take(&q, q.time_nano, "f8ef health_status: healthy"), 0);
    assert_int_equal(sp_de_point_take(&q, q.time_nano, "f8ef destroy"), 1);
    FILE *f = fopen(path, "w");
    fputs("garbage", f);
    fclose(f);
    assert_int_equal(sp_de_state_load(path, &q), -EINVAL);
    unlink(path);
    assert_int_equal(sp_de_state_load(path, &q), -ENOENT);
    sp_buf_free(&p.keys);
    sp_buf_free(&q.keys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_point),
        cmocka_unit_test(test_state_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
