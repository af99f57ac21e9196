/* Fair backpressure: which sources pause when (docs/architecture.md, "Fair backpressure"). */
#include "fair.h"

#include <string.h>

#define SP_FAIR_DECAY_MS 1000

void sp_fair_init(sp_fair *f)
{
    memset(f, 0, sizeof *f);
    sp_list_init(&f->sources);
    f->high = f->low = UINT64_MAX;
}

void sp_fair_set(sp_fair *f, int on, uint64_t mark, uint64_t memory_limit)
{
    f->on = on;
    if (!mark || mark > memory_limit) mark = memory_limit / 2;
    f->high = on ? mark : UINT64_MAX;
    f->low = on ? mark / 10 * 8 : UINT64_MAX;
}

/* Holds `s` for reason `why` (SP_SOURCE_FAIR, SP_SOURCE_SLOW); the input is told once. */
static void sp_fair_hold(sp_fair *f, sp_source *s, int why)
{
    if (s->paused & why) return;
    int was = s->paused;
    s->paused |= why;
    if (why == SP_SOURCE_FAIR) f->npaused++;
    if (was) return;
    s->in->sources_paused++;
    s->in->source_pauses++;
    if (s->pause) s->pause(s);
}

static void sp_fair_unhold(sp_fair *f, sp_source *s, int why)
{
    if (!(s->paused & why)) return;
    s->paused &= ~why;
    if (why == SP_SOURCE_FAIR) f->npaused--;
    if (s->paused) return;
    s->in->sources_paused--;
    if (s->resume) s->resume(s);
}

void sp_fair_release(sp_fair *f)
{
    sp_list *it, *tmp;
    sp_list_foreach_safe(it, tmp, &f->sources)
    {
        sp_source *s = sp_list_entry(it, sp_source, link);
        sp_fair_unhold(f, s, SP_SOURCE_FAIR);
    }
}

void sp_fair_slow(sp_fair *f, sp_source *s, uint64_t until_ms)
{
    if (until_ms > s->slow_until) s->slow_until = until_ms;
    sp_fair_hold(f, s, SP_SOURCE_SLOW);
}

void sp_fair_check(sp_fair *f, uint64_t held)
{
    if (held <= f->low && f->npaused) {
        sp_fair_release(f);
        return;
    }
    if (held < f->high) return;
    /* The fair share: the recent intake over every source, busy or idle (an idle connection is
     * owed its share as much as a busy one: a container that starts writing while the buffer is
     * full must find room). Paused ones keep the intake they had when paused, so they stay
     * counted as the big ones. */
    uint64_t total = 0, n = 0;
    sp_source *big = NULL;
    sp_list *it;
    sp_list_foreach(it, &f->sources)
    {
        sp_source *s = sp_list_entry(it, sp_source, link);
        total += s->recent;
        n++;
        if (!(s->paused & SP_SOURCE_FAIR) && (!big || s->recent > big->recent)) big = s;
    }
    /* recent > total / n, without the rounding: the largest first, one per check (the router
     * checks on every commit above the mark, so the next one goes if the buffer keeps growing). */
    if (big && big->recent * n > total) sp_fair_hold(f, big, SP_SOURCE_FAIR);
}

void sp_fair_tick(sp_fair *f, uint64_t now_ms)
{
    int decay = now_ms - f->last_decay_ms >= SP_FAIR_DECAY_MS;
    if (decay) f->last_decay_ms = now_ms;
    sp_list *it, *tmp;
    sp_list_foreach_safe(it, tmp, &f->sources)
    {
        sp_source *s = sp_list_entry(it, sp_source, link);
        if ((s->paused & SP_SOURCE_SLOW) && now_ms >= s->slow_until)
            sp_fair_unhold(f, s, SP_SOURCE_SLOW);
        if (decay && !s->paused) s->recent /= 2;
    }
}

/* ---- the SDK's side (input.h) ---- */

void sp_fair_add(sp_fair *f, sp_source *s)
{
    sp_list_insert_tail(&f->sources, &s->link);
}

void sp_fair_remove(sp_fair *f, sp_source *s)
{
    if (s->paused & SP_SOURCE_FAIR) f->npaused--;
    if (s->paused) s->in->sources_paused--;
    s->paused = 0;
    sp_list_remove(&s->link);
}
