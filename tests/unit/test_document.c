/* The document module: a record (or a chunk) to its JSON document, container metadata merged
 * in; json.c alone is pure and never reads the metadata cache. */
#include "unit.h"

#include <sys/stat.h>
#include <unistd.h>

#include "chunk.h"
#include "document.h"
#include "json.h"
#include "meta.h"
#include "record.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char dir[64];

static int setup(void **st)
{
    snprintf(dir, sizeof dir, "/tmp/sp_test_doc_XXXXXX");
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, ID);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/%s/config.v2.json", dir, ID);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(
        "{\"Name\":\"/web-1\",\"Config\":{\"Image\":\"nginx:1.25\",\"Labels\":{\"app\":\"web\"}}}",
        f);
    fclose(f);
    sp_meta_reset();
    assert_int_equal(sp_meta_add_dir(dir), 0);
    return 0;
}

static int teardown(void **st)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    sp_meta_reset();
    return 0;
}

static sp_record rec(const char *msg)
{
    sp_record r;
    memset(&r, 0, sizeof r);
    r.sec = 1764389373;
    r.prec = 3;
    r.message = sp_slice_make(msg, strlen(msg));
    r.container_id = SP_SLICE_LIT(ID);
    return r;
}

#define DOC_HEAD                                                                                   \
    "{\"@timestamp\":\"2025-11-29T04:09:33.000Z\",\"message\":\"%s\",\"container\":{\"id\":\"" ID  \
    "\""
#define DOC_META ",\"image\":{\"name\":\"nginx:1.25\"},\"labels\":{\"app\":\"web\"}"
#define DOC_TAIL "},\"tag\":\"docker.web\"}"

static void container_more(void *ctx, sp_slice id, sp_buf *out)
{
    (*(int *)ctx)++;
    assert_int_equal(id.len, 64);
    SP_BUF_LIT(out, ",\"x\":1");
}

static void test_json_is_pure(void **st)
{
    sp_record r = rec("a");
    sp_buf b = {0};
    /* The metadata is known, but the encoder alone does not ask for it. */
    sp_json_document(&b, &r, SP_SLICE_LIT("docker.web"), NULL, NULL);
    sp_buf_putc(&b, 0);
    char want[1024];
    snprintf(want, sizeof want, DOC_HEAD DOC_TAIL, "a");
    assert_string_equal(b.base, want);
    /* The caller's hook writes into the container object. */
    int calls = 0;
    b.len = 0;
    sp_json_document(&b, &r, SP_SLICE_LIT("docker.web"), container_more, &calls);
    sp_buf_putc(&b, 0);
    snprintf(want, sizeof want, DOC_HEAD ",\"x\":1" DOC_TAIL, "a");
    assert_string_equal(b.base, want);
    assert_int_equal(calls, 1);
    sp_buf_free(&b);
}

static void test_document_merges_metadata(void **st)
{
    sp_record r = rec("b");
    sp_buf b = {0};
    sp_document_record(&b, &r, SP_SLICE_LIT("docker.web"));
    sp_buf_putc(&b, 0);
    char want[1024];
    snprintf(want, sizeof want, DOC_HEAD DOC_META DOC_TAIL, "b");
    assert_string_equal(b.base, want);
    sp_buf_free(&b);
}

static void test_document_chunk_lines(void **st)
{
    sp_chunk c;
    memset(&c, 0, sizeof c);
    c.tag = "docker.web";
    c.tag_len = strlen(c.tag);
    sp_record r1 = rec("one"), r2 = rec("two");
    sp_record_write(&c.data, &r1);
    sp_record_write(&c.data, &r2);
    c.nrecords = 2;
    sp_buf b = {0};
    SP_BUF_LIT(&b, "kept|");
    assert_int_equal(sp_document_chunk_lines(&b, &c), 2);
    sp_buf_putc(&b, 0);
    char want[2048];
    snprintf(want, sizeof want,
             "kept|" DOC_HEAD DOC_META DOC_TAIL "\n" DOC_HEAD DOC_META DOC_TAIL "\n", "one", "two");
    assert_string_equal(b.base, want);
    sp_buf_free(&b);
    sp_buf_free(&c.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_is_pure),
        cmocka_unit_test(test_document_merges_metadata),
        cmocka_unit_test(test_document_chunk_lines),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
