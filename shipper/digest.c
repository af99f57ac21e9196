#include "digest.h"

#include <openssl/evp.h>

void sp_sha512_hex(const sp_slice *parts, int nparts, char out[129])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[64];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha512(), NULL);
    for (int i = 0; i < nparts; i++)
        EVP_DigestUpdate(ctx, parts[i].base, parts[i].len);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 64; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[128] = 0;
}
