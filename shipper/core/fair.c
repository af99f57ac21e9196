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

static void sp_fair_pause(sp_fair *f, sp_source *s)
{
    s->paused = 1;
    f->npaused++;
    s->in->sources_paused++;
    s->in->source_pauses++;
    if (s->pause) s->pause(s);
}

static void sp_fair_resume(sp_fair *f, sp_source *s)
{
    s->paused = 0;
    f->npaused--;
    s->in->sources_paused--;
    if (s->resume) s->resume(s);
}

void sp_fair_release(sp_fair *f)
{
    sp_list *it, *tmp;
    sp_list_foreach_safe(it, tmp, &f->sources)
    {
        sp_source *s = sp_list_entry(it, sp_source, link);
        if (s->paused) sp_fair_resume(f, s);
    }
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
        if (!s->paused && (!big || s->recent > big->recent)) big = s;
    }
    /* recent > total / n, without the rounding: the largest first, one per check (the router
     * checks on every commit above the mark, so the next one goes if the buffer keeps growing). */
    if (big && big->recent * n > total) sp_fair_pause(f, big);
}

void sp_fair_tick(sp_fair *f, uint64_t now_ms)
{
    if (now_ms - f->last_decay_ms < SP_FAIR_DECAY_MS) return;
    f->last_decay_ms = now_ms;
    sp_list *it;
    sp_list_foreach(it, &f->sources)
    {
        sp_source *s = sp_list_entry(it, sp_source, link);
        if (!s->paused) s->recent /= 2;
    }
}

/* ---- the SDK's side (input.h) ---- */

void sp_fair_add(sp_fair *f, sp_source *s)
{
    sp_list_insert_tail(&f->sources, &s->link);
}

void sp_fair_remove(sp_fair *f, sp_source *s)
{
    if (s->paused) {
        s->paused = 0;
        f->npaused--;
        s->in->sources_paused--;
    }
    sp_list_remove(&s->link);
}
