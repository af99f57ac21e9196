/*
 * A chunk: a contiguous buffer of records (record.h layout) that share one tag. Inputs append to
 * an open chunk; once closed (full, or flush_interval old) the router hands it to every matching
 * output, and it is freed when the last of them has finished with it.
 */
#ifndef SP_CHUNK_H
#define SP_CHUNK_H

#include <stdint.h>

#include "list.h"
#include "slice.h"

typedef struct sp_chunk {
    sp_list link; /* router's open list, then nothing while outputs hold it */
    char *tag;    /* NUL-terminated copy */
    size_t tag_len;
    sp_buf data; /* the records */
    uint32_t nrecords;
    int refs;     /* outputs that have not finished with it */
    uint64_t seq; /* creation order, unique per process */
    uint64_t opened_ms;
    uint64_t outputs;         /* bitmask of matching outputs, fixed at creation */
    struct sp_tagent *tagent; /* while open: the tag entry that points at it */
    void *spool;              /* spool's handle when the chunk is on disk (issue: spool) */
} sp_chunk;

/** Iterates records: `for (p = start; p < end;) sp_record_read(&p, end, &r)`. */
#define SP_CHUNK_BEGIN(c) ((const uint8_t *)(c)->data.base)
#define SP_CHUNK_END(c) ((const uint8_t *)(c)->data.base + (c)->data.len)

#endif
