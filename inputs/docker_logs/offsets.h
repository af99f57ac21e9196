/*
 * The tail offset store: per container, the file being read (identity) and the offset up to
 * which every line has been released by all outputs. One small text file, replaced atomically
 * (write a temporary, fsync, rename, fsync the directory), so a crash leaves the old or the new
 * state, never a torn one.
 */
#ifndef SP_OFFSETS_H
#define SP_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

/** One container's position. */
typedef struct {
    char id[65];  /* container id, NUL-terminated */
    uint64_t dev; /* file identity: device, inode... */
    uint64_t ino;
    uint64_t fp; /* ...and a hash of its first fp_len bytes (a reused inode differs) */
    uint32_t fp_len;
    uint64_t offset; /* bytes before it are delivered */
} sp_offset;

/**
 * Loads `path` into a malloc'ed array (*out, *n). A missing file is an empty store (0); a
 * malformed line is skipped. Returns 0 or a negative errno.
 */
int sp_offsets_load(const char *path, sp_offset **out, size_t *n);

/** Replaces `path` with `n` entries atomically. 0 or a negative errno. */
int sp_offsets_save(const char *path, const sp_offset *v, size_t n);

#endif
