/* A Forward record map → the record fields of record.h, Docker's keys recognised. */
#ifndef SP_FORWARD_RECORD_H
#define SP_FORWARD_RECORD_H

#include "record.h"

/** Docker's partial-message fields of one record. */
typedef struct {
    int is_partial;
    int last;
    uint32_t ordinal;
    sp_slice id;
} sp_docker_partial;

/**
 * Reads the record map at p: `log` (or `message`) becomes the message, `source` the stream,
 * `container_id` and `container_name` (without its leading '/') the container; partial_* fields
 * fill `part`; every other key is copied into `extras` and referenced by r->extras.
 * Returns the length of the map (> 0) or SP_FWD_EMALFORMED.
 */
int sp_fwd_record(const uint8_t *p, const uint8_t *end, sp_record *r, sp_buf *extras,
                  sp_docker_partial *part);

/** The document key of Fluent Bit's per-record metadata (docs/forward.md). */
#define SP_FWD_META_KEY "fluent_metadata"

/**
 * Adds Fluent Bit's non-empty metadata map `meta` to the record read by sp_fwd_record, as the
 * field SP_FWD_META_KEY ("_" SP_FWD_META_KEY when the record has such a key of its own).
 */
void sp_fwd_record_meta(sp_record *r, sp_buf *extras, sp_slice meta);

#endif
