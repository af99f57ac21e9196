/*
 * The filter interface: an ordered stage between the inputs and the buffer (docs/filters.md).
 * Part of the plugin SDK (docs/architecture.md, "The plugin SDK"): a filter sees this header and
 * the leaf utilities, never the core's own headers. The core runs every filter whose `match`
 * fits a record's tag, in the configured order, on the loop thread, where records enter the
 * buffer (sp_input_batch_add); a filter keeps the record, drops it, or rewrites it.
 *
 * Rewriting: `r`'s slices (message, stream, extras...) may be pointed at the filter's own
 * buffers, which must stay valid until the filter's next `apply` (the core copies the record
 * into the chunk before that). Reuse those buffers: a filter allocates nothing per record in the
 * common case.
 */
#ifndef SP_FILTER_H
#define SP_FILTER_H

#include <stdint.h>

#include "config.h"
#include "log.h"
#include "reasons.h"
#include "record.h"

typedef struct sp_filter sp_filter;
typedef struct sp_source sp_source;
typedef struct sp_hold sp_hold;
struct sp_router;

/* KEEP: on to the next filter; DROP: gone (counted as dropped); HOLD: the filter keeps the record
 * to emit it later, joined with others (multiline), through sp_filter_emit (counted as held). */
enum { SP_FILTER_KEEP = 0, SP_FILTER_DROP = 1, SP_FILTER_HOLD = 2 };

/** What a filter type declares: its settings and its callbacks. */
typedef struct {
    const char *name;            /* the `type:` value */
    const sp_conf_field *fields; /* settings; the struct is `conf_size` bytes */
    size_t conf_size;
    const char *const *planned; /* keys rejected as "not supported yet (planned)" */
    /** Validates the settings and prepares the instance (f->data: compiled patterns, scratch
     * buffers); 0, or -1 with err set. Runs for --check too. */
    int (*check)(sp_filter *f, const sp_node *n, sp_conf_err *err);
    /** One record: SP_FILTER_KEEP (possibly rewritten) or SP_FILTER_DROP. */
    int (*apply)(sp_filter *f, sp_record *r, sp_slice tag);
    /** Several times a second on the loop: windows, summaries (sp_filter_emit). Optional. */
    void (*tick)(sp_filter *f, uint64_t now_ms);
    /** At shutdown, before the buffer's last flush: emit what the filter holds (sp_filter_emit).
     * Optional. */
    void (*drain)(sp_filter *f);
    /** Appends filter-specific Prometheus lines. Optional. */
    void (*metrics)(sp_filter *f, sp_buf *out);
    /** Frees f->data. Optional. */
    void (*free)(sp_filter *f);
} sp_filter_type;

struct sp_filter {
    const sp_filter_type *type;
    char *name; /* for metrics: the type, or type.N when there are several */
    int index;  /* its place in `filters:` */
    int line;
    char *match; /* glob on the tag */
    void *conf;
    void *data;
    struct sp_router *router; /* set when the daemon runs */
    uint64_t kept, dropped;   /* counted by the core */
    uint64_t held;            /* SP_FILTER_HOLD answers, counted by the core */
    sp_reasons results;       /* other outcomes the filter counts (sp_filter_count) */
};

/* Log lines about a filter instance: "filter <name>: " and the message. */
#define sp_flt_error(f, fmt, ...) sp_error("filter %s: " fmt, (f)->name, ##__VA_ARGS__)
#define sp_flt_warn(f, fmt, ...) sp_warn("filter %s: " fmt, (f)->name, ##__VA_ARGS__)
#define sp_flt_info(f, fmt, ...) sp_info("filter %s: " fmt, (f)->name, ##__VA_ARGS__)

/** Counts one outcome besides kept/dropped ("unparsed", "redacted"): a `result` label of
 * shipper_filter_records_total. */
void sp_filter_count(sp_filter *f, const char *result);
/**
 * Adds a record the filter makes (throttle's summary, a multiline group) to the buffer: it goes
 * through the filters after `f`, then into the open chunk of `tag`. From `tick` and `drain`, or
 * inside `apply`, where it goes into the input's open batch ahead of the record being filtered
 * (`tag` must then be the record's tag).
 */
void sp_filter_emit(sp_filter *f, sp_slice tag, const sp_record *r);

/**
 * What held records wait on (input.h, sp_hold): a filter keeps one per group it holds, reused
 * (it grows, it is not freed per group). One entry per held record.
 */
typedef struct {
    sp_hold **v;
    uint32_t n, cap;
} sp_holds;

/** Inside `apply`, before answering SP_FILTER_HOLD: `h` takes what the record being filtered
 * waits on (nothing when it waits on nothing). */
void sp_filter_hold(sp_filter *f, sp_holds *h);
/** sp_filter_emit for a record made of held records: what they wait on (`h`, emptied) moves to
 * the chunk the record goes to. */
void sp_filter_emit_held(sp_filter *f, sp_slice tag, const sp_record *r, sp_holds *h);
/** Ends what `h` waits on without a chunk (delivered: 0 when its records are lost) and frees it. */
void sp_holds_free(sp_holds *h, int delivered);

/** The source (input.h) of the record being filtered now, or NULL (an input without sources,
 * a record a filter made). Only valid inside `apply`. */
sp_source *sp_filter_source(const sp_filter *f);
/** Pauses source `s` alone for `ms` milliseconds (throttle `action: slow`); calling it again
 * while it is held moves the end. The router resumes it at its tick after that. */
void sp_source_slow(sp_source *s, uint64_t ms);

/* ---- fields (shipper/fields.c) ---- */

/**
 * The value of field `name` of `r` as text in *out: `message`, `stream`, `tag`, `container.id`,
 * `container.name`, `container.image.name`, `container.labels.KEY` (from the container's
 * metadata, shipper/meta.h: *out is then in a per-thread buffer until the next such lookup), or
 * an extra: a top-level key, else a dotted path into nested maps (`user.id`). A number or bool is
 * written as text into tmp[0..tmpcap). 1 when present and a scalar, 0 otherwise.
 */
int sp_field_text(const sp_record *r, sp_slice tag, sp_slice name, sp_slice *out, char *tmp,
                  size_t tmpcap);
/** Glob (fnmatch) or, written /.../, a regex (PCRE2): a pattern a filter tests fields with. */
typedef struct sp_pattern sp_pattern;
/** A field name resolved once, when the filter starts: which of the record's own fields it is,
 * or an extra (then whether it is a dotted path). */
typedef struct {
    sp_slice name;
    enum {
        SP_FIELD_EXTRA,
        SP_FIELD_MESSAGE,
        SP_FIELD_STREAM,
        SP_FIELD_CONTAINER_ID,
        SP_FIELD_CONTAINER_NAME,
        SP_FIELD_TAG,
        SP_FIELD_IMAGE, /* container.image.name (or container.image): the container's metadata */
        SP_FIELD_LABEL  /* container.labels.KEY (KEY may hold dots) */
    } slot;
    int dotted;
} sp_field;
sp_field sp_field_make(sp_slice name);
/** sp_field_text for a field made by sp_field_make: the per-record part only. */
int sp_field_get(const sp_field *f, const sp_record *r, sp_slice tag, sp_slice *out, char *tmp,
                 size_t tmpcap);
/** Whether field f of r (as sp_field_get reads it) matches p: 0 when it is absent or not a
 * scalar. A string extra is compared where it lies, without a copy. */
int sp_field_match(const sp_field *f, const sp_record *r, sp_slice tag, sp_pattern *p);
/** The pair of extras (or of any map) at *p, advancing past it: its key (base NULL when the key
 * is not a str or bin) and its value's raw MessagePack bytes. 0, or -1 when the bytes end or are
 * not MessagePack. Scalars inline; containers through sp_mp_skip. */
int sp_extras_next(const uint8_t **p, const uint8_t *end, sp_slice *key, sp_slice *val);
/** The raw MessagePack value of extra `key` (top level) in *val; 1 found (the last one when the
 * key repeats), 0 not. */
int sp_extras_find(const sp_record *r, sp_slice key, sp_slice *val);

/** One pair of a record's extras: its key (base NULL when not a str or bin) and raw value. */
typedef struct {
    sp_slice key;
    sp_slice val;
} sp_extra;

/**
 * The pairs of r's extras in *out, in order; returns how many are well-formed (r->nextras unless
 * the bytes end early or are not MessagePack). Found once per record and shared by every filter
 * down the chain while r->extras is the same slice, so a lookup after the first costs a few
 * compares. Valid until the filter returns, emits a record or calls this for another record.
 */
uint32_t sp_extras_pairs(const sp_record *r, const sp_extra **out);
/** Where pair i of sp_extras_pairs' `x` starts (its key's header): pairs are back to back. */
static inline const char *sp_extra_start(const sp_record *r, const sp_extra *x, uint32_t i)
{
    return i ? x[i - 1].val.base + x[i - 1].val.len : r->extras.base;
}
/** Lists the n pairs of a record's extras into x[0..n), as sp_extras_pairs finds them; 0, or
 * -1 when it cannot (sp_extras_pairs then walks them). */
typedef int (*sp_extras_fill_fn)(void *arg, sp_extra *x, uint32_t n);
/**
 * For a filter that has just written all of r's extras itself (r->extras and r->nextras set)
 * and knows where its pairs are: sp_extras_pairs calls fill(arg, ...) for r, in this pass,
 * instead of walking the pairs (and not at all when no filter after asks). `arg` must stay
 * valid until the record leaves the chain.
 */
void sp_extras_known(const sp_record *r, sp_extras_fill_fn fill, void *arg);
/** The core only (shipper/core/filters.c): a record enters (1) or leaves (0) the filter chain;
 * an index built before is not reused after. */
void sp_extras_pass(int enter);

/**
 * Rebuilding a record's extras without allocating per record: start, put pairs, finish. Keys
 * put later replace earlier pairs with the same key (the old extras included): the last one
 * wins, so a document never has a key twice.
 */
typedef struct {
    sp_buf out;   /* the new extras (the filter keeps it: the record points into it) */
    sp_buf index; /* scratch: pair offsets */
    sp_buf table; /* scratch: hash table for duplicate keys */
    uint32_t n;
} sp_extras_edit;

void sp_extras_begin(sp_extras_edit *e);
/** Appends every pair of r's extras except those whose key is in skip[0..nskip). */
void sp_extras_copy(sp_extras_edit *e, const sp_record *r, const sp_slice *skip, size_t nskip);
/** Appends a pair: key (a string) and an already encoded value. */
void sp_extras_put_raw(sp_extras_edit *e, sp_slice key, sp_slice value);
void sp_extras_put_str(sp_extras_edit *e, sp_slice key, sp_slice value);
/** Appends pairs already encoded in buf (n of them): a parser's output. */
void sp_extras_put_pairs(sp_extras_edit *e, sp_slice pairs, uint32_t n);
/** Drops earlier pairs whose key repeats and points r->extras/nextras at the result. */
void sp_extras_finish(sp_extras_edit *e, sp_record *r);
void sp_extras_edit_free(sp_extras_edit *e);
/** In place: drops all but the last of pairs with the same key in a map's `n` pairs at
 * buf[at..buf->len); returns the new count. `index`/`table` are scratch. */
uint32_t sp_extras_dedup(sp_buf *buf, size_t at, uint32_t n, sp_buf *index, sp_buf *table);

/** Compiles `text`; NULL with a message in why[0..whycap) when it is not valid. */
sp_pattern *sp_pattern_new(const char *text, char *why, size_t whycap);
int sp_pattern_match(sp_pattern *p, sp_slice s);
void sp_pattern_free(sp_pattern *p);

#endif
