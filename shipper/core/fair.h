/*
 * Fair backpressure (docs/architecture.md, "Fair backpressure"): the rule that picks which
 * sources (sp_source, input.h) the router pauses when the buffer fills, so that pressure falls
 * on the sources that cause it. Kept apart from the router so the rule is tested alone.
 */
#ifndef SP_FAIR_H
#define SP_FAIR_H

#include <stdint.h>

#include "input.h"
#include "list.h"

typedef struct sp_fair {
    sp_list sources; /* every registered sp_source */
    int on;          /* buffer.fair */
    uint64_t high;   /* buffer.fair_mark: above it, sources above their share pause */
    uint64_t low;    /* 80% of high: every source the rule paused resumes */
    uint64_t npaused;
    uint64_t last_decay_ms;
} sp_fair;

void sp_fair_init(sp_fair *f);
/** Sets the marks: `mark` bytes (0: half of memory_limit), resume at 80% of it. */
void sp_fair_set(sp_fair *f, int on, uint64_t mark, uint64_t memory_limit);
/** The rule, for `held` bytes counted against memory_limit: at or above the high mark, pauses
 * the largest running source whose recent intake is above the fair share (the mean over every
 * registered source); at or below the low mark, resumes every source it paused. */
void sp_fair_check(sp_fair *f, uint64_t held);
/** Throttle `action: slow`: holds `s` until `until_ms` (the loop's clock); sp_fair_tick
 * resumes it after that (unless the rule holds it too). */
void sp_fair_slow(sp_fair *f, sp_source *s, uint64_t until_ms);
/** At the router's tick: resumes slowed sources whose time is up; once a second halves the
 * recent intake of every running source. */
void sp_fair_tick(sp_fair *f, uint64_t now_ms);
/** Resumes every source the rule paused (fair off, shutdown). */
void sp_fair_release(sp_fair *f);
/** What sp_source_add / sp_source_remove (plugin.c) do to the list. */
void sp_fair_add(sp_fair *f, sp_source *s);
void sp_fair_remove(sp_fair *f, sp_source *s);

#endif
