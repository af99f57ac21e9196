/*
 * The kafka output's message headers, kept for reuse. Every message carries the record's id in
 * the header `shipper-id` (docs/kafka.md), so every message needs a header list, and librdkafka
 * takes the list a message is produced with and frees it with the message: three allocations
 * when produced and three frees in the delivery report, per record, on the loop thread (about
 * a quarter of the output's CPU; README "Benchmarks", ⁵). Instead the delivery report detaches
 * the list (rd_kafka_message_detach_headers) and gives it back here, and the next message gets it
 * with the id written over the old one: librdkafka stores a header's value inside the header
 * (rd_kafka_header_add copies it) and rd_kafka_header_get_last points at it. That is checked once
 * at start; if it does not hold, every message gets a new list as before.
 *
 * Lists out of librdkafka's hands are owned here; those in messages it never reports (a
 * producer destroyed with messages inside) are freed by librdkafka with them. Lists that sat in
 * the pool for a whole second are freed (beyond SP_KAFKA_HDR_KEEP), so an idle output holds
 * little (docs/architecture.md, "Who owns what").
 */
#include <stdlib.h>
#include <string.h>

#include "kafka.h"

static const char sp_kafka_id_name[] = "shipper-id";

/* The value of the `shipper-id` header in `h`: SP_KAFKA_ID_LEN bytes we may write. */
static char *sp_kafka_hdr_id(rd_kafka_headers_t *h)
{
    const void *v;
    size_t size;
    if (rd_kafka_header_get_last(h, sp_kafka_id_name, &v, &size) || size != SP_KAFKA_ID_LEN)
        return NULL;
    return (char *)v; /* the header's own malloc'ed copy (rd_kafka_header_add) */
}

/* A new list: the static headers, then the id. */
static rd_kafka_headers_t *sp_kafka_hdr_new(const sp_kafka *k, const char *id)
{
    rd_kafka_headers_t *h =
        k->headers ? rd_kafka_headers_copy(k->headers) : rd_kafka_headers_new(1);
    rd_kafka_header_add(h, sp_kafka_id_name, sizeof sp_kafka_id_name - 1, id, SP_KAFKA_ID_LEN);
    return h;
}

void sp_kafka_hdr_init(sp_kafka *k)
{
    char a[SP_KAFKA_ID_LEN], b[SP_KAFKA_ID_LEN];
    memset(a, '0', sizeof a);
    memset(b, 'f', sizeof b);
    rd_kafka_headers_t *h = sp_kafka_hdr_new(k, a);
    char *v = sp_kafka_hdr_id(h);
    if (v && memcmp(v, a, sizeof a) == 0) {
        memcpy(v, b, sizeof b);
        const void *w;
        size_t size;
        k->hreuse = rd_kafka_header_get_last(h, sp_kafka_id_name, &w, &size) == 0 && w == v &&
                    size == sizeof b && memcmp(w, b, sizeof b) == 0;
    }
    rd_kafka_headers_destroy(h);
    if (!k->hreuse) sp_out_warn(k->o, "kafka: message headers are not reused (librdkafka)");
}

rd_kafka_headers_t *sp_kafka_hdr_take(sp_kafka *k, const char *id, char **idp)
{
    if (!k->hnfree) {
        rd_kafka_headers_t *h = sp_kafka_hdr_new(k, id);
        *idp = k->hreuse ? sp_kafka_hdr_id(h) : NULL;
        return h;
    }
    sp_khdr *e = &k->hfree[--k->hnfree];
    if (k->hnfree < k->hlow) k->hlow = k->hnfree;
    memcpy(e->id, id, SP_KAFKA_ID_LEN);
    *idp = e->id;
    return e->h;
}

void sp_kafka_hdr_give(sp_kafka *k, rd_kafka_headers_t *h, char *id)
{
    if (!id || k->stopping) {
        rd_kafka_headers_destroy(h);
        return;
    }
    if (k->hnfree == k->hcap) {
        k->hcap = k->hcap ? k->hcap * 2 : 1024;
        k->hfree = sp_realloc(k->hfree, k->hcap * sizeof *k->hfree);
    }
    k->hfree[k->hnfree].h = h;
    k->hfree[k->hnfree].id = id;
    k->hnfree++;
}

/* Lists that stayed in the pool since the last trim (its low-water mark) were not needed: they
 * are freed, the oldest first, down to SP_KAFKA_HDR_KEEP. */
void sp_kafka_hdr_trim(sp_kafka *k, int all)
{
    size_t idle = all ? k->hnfree : k->hlow;
    size_t n = all ? idle : idle > SP_KAFKA_HDR_KEEP ? idle - SP_KAFKA_HDR_KEEP : 0;
    for (size_t i = 0; i < n; i++)
        rd_kafka_headers_destroy(k->hfree[i].h);
    if (n) memmove(k->hfree, k->hfree + n, (k->hnfree - n) * sizeof *k->hfree);
    k->hnfree -= n;
    k->hlow = k->hnfree;
    if (all) {
        free(k->hfree);
        k->hfree = NULL;
        k->hcap = 0;
    }
}
