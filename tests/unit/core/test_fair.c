/* The fair backpressure rule (fair.c): which sources pause at which marks, and when they resume
 * (docs/architecture.md, "Fair backpressure"). */
#include "unit.h"

#include "fair.h"

#define MIB (1024 * 1024)

typedef struct {
    sp_source src;
    int pauses, resumes;
} fake_src;

static void fake_pause(sp_source *s)
{
    ((fake_src *)s)->pauses++;
}

static void fake_resume(sp_source *s)
{
    ((fake_src *)s)->resumes++;
}

static sp_input fake_in;

static void add(sp_fair *f, fake_src *s, uint64_t recent)
{
    memset(s, 0, sizeof *s);
    s->src.in = &fake_in;
    s->src.pause = fake_pause;
    s->src.resume = fake_resume;
    s->src.recent = recent;
    sp_fair_add(f, &s->src);
}

static void setup(sp_fair *f, int on)
{
    memset(&fake_in, 0, sizeof fake_in);
    sp_fair_init(f);
    sp_fair_set(f, on, 0, 8 * MIB); /* fair_mark: 4 MiB, low mark 3.2 MiB */
}

/* Marks: 0 means half of memory_limit; resume at 80% of the mark; a mark above the limit is
 * the default too; off: never. */
static void test_marks(void **state)
{
    sp_fair f;
    setup(&f, 1);
    assert_int_equal(f.high, 4 * MIB);
    assert_int_equal(f.low, 4 * MIB / 10 * 8);
    sp_fair_set(&f, 1, 6 * MIB, 8 * MIB);
    assert_int_equal(f.high, 6 * MIB);
    sp_fair_set(&f, 1, 9 * MIB, 8 * MIB);
    assert_int_equal(f.high, 4 * MIB);
    sp_fair_set(&f, 0, 0, 8 * MIB);
    assert_true(f.high == UINT64_MAX && f.low == UINT64_MAX);
}

/* Below the high mark nothing pauses, however unequal the intake. */
static void test_below_mark_nothing_pauses(void **state)
{
    sp_fair f;
    fake_src flood, quiet;
    setup(&f, 1);
    add(&f, &flood, 100 * MIB);
    add(&f, &quiet, 1000);
    sp_fair_check(&f, 4 * MIB - 1);
    assert_int_equal(flood.pauses + quiet.pauses, 0);
    assert_int_equal(f.npaused, 0);
}

/* At the mark the flood pauses, the quiet source never does (it is below its share), however
 * often the rule runs and however the intake decays. */
static void test_flood_pauses_quiet_flows(void **state)
{
    sp_fair f;
    fake_src flood, quiet;
    setup(&f, 1);
    add(&f, &flood, 100 * MIB);
    add(&f, &quiet, 1000);
    sp_fair_check(&f, 4 * MIB);
    assert_int_equal(flood.pauses, 1);
    assert_true(flood.src.paused);
    assert_int_equal(fake_in.sources_paused, 1);
    assert_int_equal(fake_in.source_pauses, 1);
    for (int i = 0; i < 20; i++) { /* the quiet one keeps writing, seconds go by */
        quiet.src.recent += 1000;
        sp_fair_tick(&f, 1000 * (uint64_t)(i + 1));
        sp_fair_check(&f, 7 * MIB);
    }
    assert_int_equal(quiet.pauses, 0);
    assert_int_equal(flood.pauses, 1);
    assert_int_equal(flood.src.recent, 100 * MIB); /* frozen while paused */
}

/* Largest first, one per check: three sources above the share pause in order of size; the ones
 * at or below the share do not. */
static void test_largest_first(void **state)
{
    sp_fair f;
    fake_src a, b, c, d;
    setup(&f, 1);
    add(&f, &a, 30 * MIB);
    add(&f, &b, 50 * MIB);
    add(&f, &c, 10 * MIB);
    add(&f, &d, 10 * MIB); /* share: 25 MiB */
    sp_fair_check(&f, 5 * MIB);
    assert_true(b.src.paused && !a.src.paused);
    sp_fair_check(&f, 5 * MIB);
    assert_true(a.src.paused);
    for (int i = 0; i < 5; i++)
        sp_fair_check(&f, 5 * MIB);
    assert_true(!c.src.paused && !d.src.paused);
    assert_int_equal(f.npaused, 2);
}

/* Equal sources share equally: none is above its share, so none pauses before the hard limit
 * (the router's global pause). A lone source likewise. */
static void test_equal_and_alone(void **state)
{
    sp_fair f;
    fake_src a, b;
    setup(&f, 1);
    add(&f, &a, 10 * MIB);
    add(&f, &b, 10 * MIB);
    sp_fair_check(&f, 7 * MIB);
    assert_int_equal(f.npaused, 0);
    sp_fair_remove(&f, &b.src);
    sp_fair_check(&f, 7 * MIB);
    assert_int_equal(f.npaused, 0);
}

/* An idle source (a container that has not written yet, a connection never read because the
 * buffer was full when it came) is owed its share: a lone flood is above its share as soon as
 * another source is registered, and pauses at the mark. */
static void test_idle_source_counts(void **state)
{
    sp_fair f;
    fake_src flood, idle;
    setup(&f, 1);
    add(&f, &flood, 10 * MIB);
    sp_fair_check(&f, 5 * MIB);
    assert_int_equal(f.npaused, 0);
    add(&f, &idle, 0);
    sp_fair_check(&f, 5 * MIB);
    assert_true(flood.src.paused);
    assert_false(idle.src.paused);
}

/* Resume: not between the marks, all at the low mark; a removed paused source is uncounted. */
static void test_resume_at_low_mark(void **state)
{
    sp_fair f;
    fake_src a, b, q;
    setup(&f, 1);
    add(&f, &a, 50 * MIB);
    add(&f, &b, 40 * MIB);
    add(&f, &q, 1 * MIB);
    sp_fair_check(&f, 5 * MIB);
    sp_fair_check(&f, 5 * MIB);
    assert_int_equal(f.npaused, 2);
    sp_fair_check(&f, f.low + 1);
    assert_int_equal(a.resumes + b.resumes, 0);
    sp_fair_check(&f, f.low);
    assert_int_equal(a.resumes, 1);
    assert_int_equal(b.resumes, 1);
    assert_int_equal(f.npaused, 0);
    assert_int_equal(fake_in.sources_paused, 0);
    assert_int_equal(fake_in.source_pauses, 2);
    sp_fair_check(&f, 5 * MIB);
    assert_true(a.src.paused);
    sp_fair_remove(&f, &a.src);
    assert_int_equal(f.npaused, 0);
    assert_int_equal(fake_in.sources_paused, 0);
}

/* Decay halves the running sources' intake once a second, not more often. */
static void test_decay(void **state)
{
    sp_fair f;
    fake_src a;
    setup(&f, 1);
    add(&f, &a, 1024);
    sp_fair_tick(&f, 1000);
    assert_int_equal(a.src.recent, 512);
    sp_fair_tick(&f, 1500);
    assert_int_equal(a.src.recent, 512);
    sp_fair_tick(&f, 2000);
    assert_int_equal(a.src.recent, 256);
}

/* Throttle's slow and the rule together: a source held for both reasons is told once, and
 * resumes only when neither holds it. */
static void test_slow_and_fair(void **state)
{
    sp_fair f;
    fake_src flood, quiet;
    setup(&f, 1);
    add(&f, &flood, 100 * MIB);
    add(&f, &quiet, 1000);
    sp_fair_slow(&f, &flood.src, 500);
    assert_int_equal(flood.src.paused, SP_SOURCE_SLOW);
    assert_int_equal(f.npaused, 0); /* not the rule's */
    sp_fair_check(&f, 5 * MIB);     /* the rule takes it too: not told again */
    assert_int_equal(flood.src.paused, SP_SOURCE_SLOW | SP_SOURCE_FAIR);
    assert_int_equal(flood.pauses, 1);
    assert_int_equal(fake_in.sources_paused, 1);
    sp_fair_tick(&f, 600); /* slow is over, the rule still holds it */
    assert_int_equal(flood.src.paused, SP_SOURCE_FAIR);
    assert_int_equal(flood.resumes, 0);
    sp_fair_check(&f, 0);
    assert_int_equal(flood.resumes, 1);
    assert_int_equal(fake_in.sources_paused, 0);
    /* the other way round: the rule lets go first, slow still holds */
    sp_fair_check(&f, 5 * MIB);
    sp_fair_slow(&f, &flood.src, 2000);
    sp_fair_check(&f, 0);
    assert_int_equal(flood.src.paused, SP_SOURCE_SLOW);
    assert_int_equal(flood.resumes, 1);
    sp_fair_tick(&f, 1999);
    assert_int_equal(flood.resumes, 1);
    sp_fair_tick(&f, 2000);
    assert_int_equal(flood.resumes, 2);
    assert_int_equal(flood.src.paused, 0);
    assert_int_equal(quiet.pauses, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_marks),
        cmocka_unit_test(test_below_mark_nothing_pauses),
        cmocka_unit_test(test_flood_pauses_quiet_flows),
        cmocka_unit_test(test_largest_first),
        cmocka_unit_test(test_equal_and_alone),
        cmocka_unit_test(test_idle_source_counts),
        cmocka_unit_test(test_resume_at_low_mark),
        cmocka_unit_test(test_decay),
        cmocka_unit_test(test_slow_and_fair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
