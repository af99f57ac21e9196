/* multiline's parts (docs/filters.md, "multiline"): the rules (ml_rules.c), the filter
 * (multiline.c). */
#ifndef SP_ML_INT_H
#define SP_ML_INT_H

#include "filter.h"

enum { SP_ML_AUTO, SP_ML_JAVA, SP_ML_PYTHON, SP_ML_GO, SP_ML_NODEJS, SP_ML_CUSTOM };

#define SP_ML_MAX_RULES 48

/* A transition: in `state`, a line matching `re` continues the group and moves to `next`. */
typedef struct {
    uint8_t lang, state, next;
    sp_pattern *re;
} sp_ml_rule;

/* A language's start pattern: a line matching it opens a group in state 1. */
typedef struct {
    uint8_t lang;
    sp_pattern *re;
} sp_ml_start;

typedef struct {
    sp_ml_start start[5];
    size_t nstart;
    sp_ml_rule rule[SP_ML_MAX_RULES];
    size_t nrule;
    int custom; /* start/continue from the config: no built-in prefilter */
    int avx2;   /* the CPU has AVX2: sp_ml_rules_may_start scans 32 bytes a step */
} sp_ml_rules;

/** Compiles the rules of `mode` (custom: `start` and `cont`); 0, or -1 with why. */
int sp_ml_rules_init(sp_ml_rules *rs, int mode, const char *start, const char *cont, char *why,
                     size_t whycap);
void sp_ml_rules_free(sp_ml_rules *rs);
/** The language (SP_ML_JAVA...) whose start pattern `line` matches first; 0: none. */
int sp_ml_rules_start(sp_ml_rules *rs, sp_slice line);
/** 0 when no built-in start pattern can match `line` (a cheap superset test); 1 otherwise. */
int sp_ml_rules_may_start(const sp_ml_rules *rs, sp_slice line);
/** Whether `line` continues a group of `lang` in *state (moved on when it does). */
int sp_ml_rules_continue(sp_ml_rules *rs, int lang, uint8_t *state, sp_slice line);

#endif
