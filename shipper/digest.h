/* Digests shared by plugins (the Forward handshake's SHA-512, on both its sides). */
#ifndef SP_DIGEST_H
#define SP_DIGEST_H

#include "slice.h"

/** Writes the lowercase hex SHA-512 of the concatenated parts (129 bytes with the NUL). */
void sp_sha512_hex(const sp_slice *parts, int nparts, char out[129]);

#endif
