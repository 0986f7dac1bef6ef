/* genopts.h - the generation options mlx-gen and mlx-vlm share: sampling,
 * stopping, batching, resuming, sharding, KV cache and prompt-cache options,
 * parsed the same way (same names, ranges and messages) by both programs.
 *
 * A program appends mt_genopts_long() to its own getopt_long table
 * (mt_genopts_table), passes every option it does not know itself to
 * mt_genopts_parse, then calls mt_genopts_finish.  Messages go to the
 * caller's stream, prefixed with its program name. */
#ifndef MT_GENOPTS_H
#define MT_GENOPTS_H

#include <getopt.h>
#include <stdio.h>
#include "gen/generate.h"

typedef struct mt_genopts {
    mt_gen_params gp;            /* defaults for every record (mt_gen_params_default first) */
    const char *stops[64];
    int batch;                   /* --batch N (1) */
    int score;                   /* --score */
    int int8;                    /* --int8 (MT_QMATH=int8 set in the environment) */
    int numerics;                /* --numerics (MT_NUMERICS_F32) */
    int kv_start;                /* --quantized-kv-start, -1: not given */
    double prefix_mb;            /* --prefix-cache-mb (512) */
    const char *resume;          /* --resume FILE */
    size_t shard_k, shard_n;     /* --shard K/N */
    int return_ids;              /* --ids */
    int reproducible;            /* --reproducible */
    const char *prompt_cache;    /* --prompt-cache FILE */
    const char *save_cache;      /* --save-prompt-cache PATH */
    int save_after_generation;   /* --save-after-generation */
    int threads;                 /* -t N (0: all cores) */
} mt_genopts;

/* The usage lines of the shared options. */
extern const char mt_genopts_usage[];

void mt_genopts_init(mt_genopts *o);
/* getopt_long entries of the shared options (values >= 1000, and 'n', 't'), and their
 * count; mt_genopts_table returns the program's own entries followed by them (malloc'd,
 * zero-terminated; NULL when out of memory). */
const struct option *mt_genopts_long(size_t *n);
struct option *mt_genopts_table(const struct option *own, size_t n_own);
/* The short options the shared table takes ("n:t:"). */
#define MT_GENOPTS_SHORT "n:t:"
/* Parse option c with argument arg: 1 when it is a shared option and parsed, 0 when it is
 * not one, -1 after writing "prog: ..." to errf for a bad value. */
int mt_genopts_parse(mt_genopts *o, int c, const char *arg, FILE *errf, const char *prog);
/* Checks across options, and the derived defaults (gp.stop, gp.kv_start); 0 or 1 after a
 * message. */
int mt_genopts_finish(mt_genopts *o, FILE *errf, const char *prog);

#endif
