/*
 * The document an output ships for a record (README, "The document"): json.c's encoding with the
 * container's metadata (meta.c: image, labels) merged into its "container" object. Part of the
 * plugin SDK; outputs call it on their encoder threads (thread-safe).
 */
#ifndef SP_DOCUMENT_H
#define SP_DOCUMENT_H

#include <stdint.h>

#include "chunk.h"
#include "record.h"
#include "slice.h"

/** Appends the document for `r` of tag `tag` (no trailing newline). */
void sp_document_record(sp_buf *out, const sp_record *r, sp_slice tag);
/** Appends the documents of every record of chunk `c`, one line each ('\n' after each), and
 * returns how many were written. */
uint32_t sp_document_chunk_lines(sp_buf *out, const sp_chunk *c);

#endif
