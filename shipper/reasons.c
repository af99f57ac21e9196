/* Counters by reason (reasons.h). Not on a record's path: errors and rejections only. */
#include "reasons.h"

#include <stdio.h>
#include <string.h>

/* `reason` as a label value, in `label`. */
static void sp_reasons_label(const char *reason, char label[64])
{
    snprintf(label, 64, "%s", reason);
    for (char *r = label; *r; r++)
        if (!(*r == '_' || (*r >= 'a' && *r <= 'z') || (*r >= 'A' && *r <= 'Z') ||
              (*r >= '0' && *r <= '9')))
            *r = '_';
}

void sp_reasons_add(sp_reasons *t, const char *reason)
{
    char label[64];
    sp_reasons_label(reason, label);
    for (int k = 0; k < SP_REASONS_MAX; k++) {
        if (!t->slot[k].name[0]) memcpy(t->slot[k].name, label, sizeof label);
        if (strcmp(t->slot[k].name, label) == 0) {
            t->slot[k].n++;
            return;
        }
    }
    t->other++;
}

uint64_t sp_reasons_get(const sp_reasons *t, const char *reason)
{
    char label[64];
    sp_reasons_label(reason, label);
    for (int k = 0; k < SP_REASONS_MAX && t->slot[k].name[0]; k++)
        if (strcmp(t->slot[k].name, label) == 0) return t->slot[k].n;
    return 0;
}

void sp_reasons_render(const sp_reasons *t, sp_buf *out, const char *metric, const char *label,
                       const char *value)
{
    for (int k = 0; k < SP_REASONS_MAX && t->slot[k].name[0]; k++)
        sp_buf_printf(out, "%s{%s=\"%s\",reason=\"%s\"} %llu\n", metric, label, value,
                      t->slot[k].name, (unsigned long long)t->slot[k].n);
    if (t->other)
        sp_buf_printf(out, "%s{%s=\"%s\",reason=\"other\"} %llu\n", metric, label, value,
                      (unsigned long long)t->other);
}
