/* parakeet_asr.c - the Parakeet family behind lib/stt/asr.h: long audio in
 * overlapping chunks merged token by token, sentences and words from the
 * aligned tokens, the mt_stt_result.
 *
 * Chunking follows mlx-audio's Model.generate(chunk_duration, overlap_duration)
 * with the defaults of its command line (python -m mlx_audio.stt.generate:
 * --chunk-duration 30, overlap 2 s): audio no longer than the chunk is decoded
 * whole; else windows of chunk_s seconds start every chunk_s - 2 s, each one's
 * token times are shifted by its start, and each is merged into the tokens so
 * far by the longest contiguous run of matching tokens in the overlap
 * (merge_longest_contiguous), or, when that finds too few, by their longest
 * common subsequence (merge_longest_common_subsequence).
 * Sentences (segments) are tokens_to_sentences(): a sentence ends after a
 * token holding ! ? 。 ？ ！, or a "." followed by a token holding a space (or
 * by nothing).  Words (not in mlx-audio, which stops at tokens): a word
 * starts at a token whose text begins with a space (the SentencePiece word
 * mark) and runs to the next such token; its times are its tokens'.
 * ref: mlx_audio/stt/models/parakeet/parakeet.py (generate),
 *      mlx_audio/stt/models/nemo/alignment.py (0.6.2). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/parakeet.h"
#include "stt/asr.h"
#include "stt/parakeet_asr.h"

#define PK_OVERLAP_S 2.0
#define PK_CHUNK_S 30.0

typedef struct tokv {
    mt_pk_token *v;
    size_t n, cap;
} tokv;

static int tv_push(tokv *t, const mt_pk_token *x) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        mt_pk_token *p = realloc(t->v, cap * sizeof *p);
        if (!p) return MT_ENOMEM;
        t->v = p;
        t->cap = cap;
    }
    t->v[t->n++] = *x;
    return MT_OK;
}

/* a[s:e] appended, with Python's slice clamping. */
static int tv_extend(tokv *t, const mt_pk_token *a, size_t na, long s, long e) {
    if (s < 0) s = 0;
    if (e > (long)na) e = (long)na;
    for (long i = s; i < e; i++) MT_TRY(tv_push(t, &a[i]));
    return MT_OK;
}

/* No usable overlap: tokens of a ending by the midpoint, then those of b from it. */
static int cut_merge(const mt_pk_token *a, size_t na, const mt_pk_token *b, size_t nb, tokv *out) {
    double cut = (a[na - 1].end + b[0].start) / 2;
    for (size_t i = 0; i < na; i++)
        if (a[i].end <= cut) MT_TRY(tv_push(out, &a[i]));
    for (size_t i = 0; i < nb; i++)
        if (b[i].start >= cut) MT_TRY(tv_push(out, &b[i]));
    return MT_OK;
}

/* The result of matched pairs (indices into a and b): a before the first
 * pair, each pair's a token with the longer gap between pairs (a's on a tie),
 * b after the last pair. */
static int assemble(const mt_pk_token *a, size_t na, const mt_pk_token *b, size_t nb, const long *ia, const long *ib,
                    size_t np, tokv *out) {
    MT_TRY(tv_extend(out, a, na, 0, ia[0]));
    for (size_t i = 0; i < np; i++) {
        MT_TRY(tv_push(out, &a[ia[i]]));
        if (i + 1 < np) {
            long ga = ia[i + 1] - (ia[i] + 1), gb = ib[i + 1] - (ib[i] + 1);
            if (ga < 0) ga = 0;
            if (gb < 0) gb = 0;
            if (gb > ga) MT_TRY(tv_extend(out, b, nb, ib[i] + 1, ib[i + 1]));
            else MT_TRY(tv_extend(out, a, na, ia[i] + 1, ia[i + 1]));
        }
    }
    return tv_extend(out, b, nb, ib[np - 1] + 1, (long)nb);
}

static int same(const mt_pk_token *x, const mt_pk_token *y, double ov) {
    return x->id == y->id && fabs(x->start - y->start) < ov / 2;
}

/* Returns MT_OK, MT_ENOMEM, or -1 when the contiguous match is too short
 * (the reference's RuntimeError: the caller then takes the LCS merge). */
static int merge_contiguous(const mt_pk_token *a, size_t na, const mt_pk_token *b, size_t nb, double ov, tokv *out) {
    double a_end = a[na - 1].end, b_start = b[0].start;
    if (a_end <= b_start) {
        MT_TRY(tv_extend(out, a, na, 0, (long)na));
        return tv_extend(out, b, nb, 0, (long)nb);
    }
    size_t *oa = malloc(sizeof(size_t) * na), *ob = malloc(sizeof(size_t) * nb);
    long *ia = malloc(sizeof(long) * (na + 1)), *ib = malloc(sizeof(long) * (na + 1));
    int rc = MT_OK;
    if (!oa || !ob || !ia || !ib) {
        rc = MT_ENOMEM;
        goto done;
    }
    size_t noa = 0, nob = 0;
    for (size_t i = 0; i < na; i++)
        if (a[i].end > b_start - ov) oa[noa++] = i;
    for (size_t i = 0; i < nb; i++)
        if (b[i].start < a_end + ov) ob[nob++] = i;
    size_t enough = noa / 2;
    if (noa < 2 || nob < 2) {
        rc = cut_merge(a, na, b, nb, out);
        goto done;
    }
    size_t best_i = 0, best_j = 0, best_len = 0;
    for (size_t i = 0; i < noa; i++)
        for (size_t j = 0; j < nob; j++) {
            if (!same(&a[oa[i]], &b[ob[j]], ov)) continue;
            size_t k = i, l = j, len = 0;
            while (k < noa && l < nob && same(&a[oa[k]], &b[ob[l]], ov)) {
                len++;
                k++;
                l++;
            }
            if (len > best_len) {
                best_len = len;
                best_i = i;
                best_j = j;
            }
        }
    if (best_len >= enough && best_len > 0) {
        long a0 = (long)na - (long)noa;   /* the reference takes the overlap as a's tail */
        for (size_t p = 0; p < best_len; p++) {
            ia[p] = a0 + (long)(best_i + p);
            ib[p] = (long)(best_j + p);
        }
        rc = assemble(a, na, b, nb, ia, ib, best_len, out);
    } else {
        rc = -1;
    }
done:
    free(oa);
    free(ob);
    free(ia);
    free(ib);
    return rc;
}

static int merge_lcs(const mt_pk_token *a, size_t na, const mt_pk_token *b, size_t nb, double ov, tokv *out) {
    double a_end = a[na - 1].end, b_start = b[0].start;
    if (a_end <= b_start) {
        MT_TRY(tv_extend(out, a, na, 0, (long)na));
        return tv_extend(out, b, nb, 0, (long)nb);
    }
    size_t noa = 0, nob = 0;
    size_t *oa = malloc(sizeof(size_t) * na), *ob = malloc(sizeof(size_t) * nb);
    if (!oa || !ob) {
        free(oa);
        free(ob);
        return MT_ENOMEM;
    }
    for (size_t i = 0; i < na; i++)
        if (a[i].end > b_start - ov) oa[noa++] = i;
    for (size_t i = 0; i < nb; i++)
        if (b[i].start < a_end + ov) ob[nob++] = i;
    int rc = MT_OK;
    if (noa < 2 || nob < 2) {
        rc = cut_merge(a, na, b, nb, out);
        free(oa);
        free(ob);
        return rc;
    }
    size_t W = nob + 1;
    int *dp = calloc((noa + 1) * W, sizeof(int));
    long *ia = malloc(sizeof(long) * (noa + nob + 1)), *ib = malloc(sizeof(long) * (noa + nob + 1));
    if (!dp || !ia || !ib) {
        rc = MT_ENOMEM;
        goto done;
    }
    for (size_t i = 1; i <= noa; i++)
        for (size_t j = 1; j <= nob; j++) {
            if (same(&a[oa[i - 1]], &b[ob[j - 1]], ov)) dp[i * W + j] = dp[(i - 1) * W + j - 1] + 1;
            else {
                int u = dp[(i - 1) * W + j], l = dp[i * W + j - 1];
                dp[i * W + j] = u > l ? u : l;
            }
        }
    size_t np = 0, i = noa, j = nob;
    while (i > 0 && j > 0) {
        if (same(&a[oa[i - 1]], &b[ob[j - 1]], ov)) {
            ia[np] = (long)(i - 1);
            ib[np] = (long)(j - 1);
            np++;
            i--;
            j--;
        } else if (dp[(i - 1) * W + j] > dp[i * W + j - 1]) {
            i--;
        } else {
            j--;
        }
    }
    if (np == 0) {
        rc = cut_merge(a, na, b, nb, out);
        goto done;
    }
    long a0 = (long)na - (long)noa;
    for (size_t p = 0; p < np / 2; p++) {   /* reverse */
        long t = ia[p];
        ia[p] = ia[np - 1 - p];
        ia[np - 1 - p] = t;
        t = ib[p];
        ib[p] = ib[np - 1 - p];
        ib[np - 1 - p] = t;
    }
    for (size_t p = 0; p < np; p++) ia[p] += a0;
    rc = assemble(a, na, b, nb, ia, ib, np, out);
done:
    free(dp);
    free(ia);
    free(ib);
    free(oa);
    free(ob);
    return rc;
}

int mt_parakeet_merge(const mt_pk_token *a, size_t na, const mt_pk_token *b, size_t nb, double overlap_s,
                      mt_pk_token **out, size_t *n_out, mt_err *err) {
    tokv r = {0};
    int rc;
    if (!na || !nb) {
        rc = na ? tv_extend(&r, a, na, 0, (long)na) : tv_extend(&r, b, nb, 0, (long)nb);
    } else {
        rc = merge_contiguous(a, na, b, nb, overlap_s, &r);
        if (rc == -1) {
            r.n = 0;
            rc = merge_lcs(a, na, b, nb, overlap_s, &r);
        }
    }
    if (rc) {
        free(r.v);
        *out = NULL;
        *n_out = 0;
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    *out = r.v;
    *n_out = r.n;
    return MT_OK;
}

int mt_parakeet_tokens(mt_parakeet *m, const float *audio, size_t n, double chunk_s, double overlap_s,
                       mt_stt_progress_fn progress, void *user, mt_pk_token **toks, size_t *ntok, mt_err *err) {
    *toks = NULL;
    *ntok = 0;
    double sr = mt_parakeet_sample_rate(m), total = (double)n / sr;
    if (n == 0) return MT_OK;
    if (chunk_s <= 0 || total <= chunk_s) {
        if (progress) progress(user, 0.0, total);
        return mt_parakeet_run(m, audio, n, toks, ntok, err);
    }
    if (overlap_s >= chunk_s)
        return mt_seterr(err, MT_EINVAL, "overlap_duration (%gs) must be less than chunk_duration (%gs)", overlap_s,
                         chunk_s);
    size_t cs = (size_t)(chunk_s * sr), os = (size_t)(overlap_s * sr), step = cs - os;
    if (step == 0 || cs == 0) return mt_seterr(err, MT_EINVAL, "chunk of %g s is too short", chunk_s);
    mt_pk_token *all = NULL;
    size_t nall = 0;
    int rc = MT_OK;
    for (size_t start = 0; start < n; start += step) {
        size_t end = start + cs < n ? start + cs : n;
        if (progress) progress(user, (double)start / sr, total);
        mt_pk_token *ct = NULL;
        size_t nc = 0;
        rc = mt_parakeet_run(m, audio + start, end - start, &ct, &nc, err);
        if (rc) break;
        double off = (double)start / sr;
        for (size_t i = 0; i < nc; i++) {
            ct[i].start += off;
            ct[i].end = ct[i].start + ct[i].duration;
        }
        if (nall) {
            mt_pk_token *mg = NULL;
            size_t nm = 0;
            rc = mt_parakeet_merge(all, nall, ct, nc, overlap_s, &mg, &nm, err);
            free(ct);
            if (rc) break;
            free(all);
            all = mg;
            nall = nm;
        } else {
            free(all);
            all = ct;
            nall = nc;
        }
        if (end == n) break;
    }
    if (rc) {
        free(all);
        return rc;
    }
    *toks = all;
    *ntok = nall;
    return MT_OK;
}

/* ---- sentences, words, the result ---- */

static int ends_sentence(const mt_pk_token *t, size_t i, size_t n) {
    const char *s = t[i].text;
    if (strchr(s, '!') || strchr(s, '?') || strstr(s, "\xe3\x80\x82") || strstr(s, "\xef\xbc\x9f") ||
        strstr(s, "\xef\xbc\x81"))
        return 1;
    return strchr(s, '.') && (i + 1 == n || strchr(t[i + 1].text, ' '));
}

static char *join_text(const mt_pk_token *t, size_t n) {
    size_t len = 1;
    for (size_t i = 0; i < n; i++) len += strlen(t[i].text);
    char *s = malloc(len), *p = s;
    if (!s) return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(t[i].text);
        memcpy(p, t[i].text, k);
        p += k;
    }
    *p = 0;
    return s;
}

static int cmp_start(const void *x, const void *y) {
    const mt_pk_token *a = *(const mt_pk_token *const *)x, *b = *(const mt_pk_token *const *)y;
    if (a->start < b->start) return -1;
    if (a->start > b->start) return 1;
    return a < b ? -1 : a > b;   /* stable: by position */
}

static int make_words(mt_stt_segment *sg, const mt_pk_token *const *tk, size_t n) {
    size_t nw = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || tk[i]->text[0] == ' ') nw++;
    sg->words = calloc(nw ? nw : 1, sizeof *sg->words);
    if (!sg->words) return MT_ENOMEM;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && tk[j]->text[0] != ' ') j++;
        size_t len = 1;
        for (size_t k = i; k < j; k++) len += strlen(tk[k]->text);
        mt_stt_word *w = &sg->words[sg->n_words++];
        w->word = malloc(len);
        if (!w->word) return MT_ENOMEM;
        w->word[0] = 0;
        for (size_t k = i; k < j; k++) strcat(w->word, tk[k]->text);
        w->start = tk[i]->start;
        w->end = tk[j - 1]->end;
        w->probability = 1.0;
        i = j;
    }
    return MT_OK;
}

static int add_sentence(mt_stt_result *res, const mt_pk_token *t, size_t n, int words) {
    mt_stt_segment *sg = &res->segs[res->n_segs];
    memset(sg, 0, sizeof *sg);
    sg->id = (int)res->n_segs;
    res->n_segs++;
    sg->text = join_text(t, n);   /* in decoding order, as the reference joins before sorting */
    const mt_pk_token **tk = malloc(sizeof *tk * n);
    sg->tokens = malloc(sizeof(int32_t) * n);
    if (!sg->text || !tk || !sg->tokens) {
        free(tk);
        return MT_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) tk[i] = &t[i];
    qsort(tk, n, sizeof *tk, cmp_start);
    for (size_t i = 0; i < n; i++) sg->tokens[i] = tk[i]->id;
    sg->n_tokens = n;
    sg->start = tk[0]->start;
    sg->end = tk[n - 1]->end;
    int rc = words ? make_words(sg, tk, n) : MT_OK;
    free(tk);
    return rc;
}

int mt_parakeet_result(const mt_pk_token *t, size_t n, double duration, int words, mt_stt_result *res, mt_err *err) {
    memset(res, 0, sizeof *res);
    res->duration = duration;
    int rc = MT_OK;
    res->segs = calloc(n ? n : 1, sizeof *res->segs);
    char *all = join_text(t, n);
    if (!res->segs || !all) rc = MT_ENOMEM;
    for (size_t i = 0, s = 0; i < n && !rc; i++)
        if (ends_sentence(t, i, n) || i + 1 == n) {
            rc = add_sentence(res, t + s, i + 1 - s, words);
            s = i + 1;
        }
    if (!rc) {   /* the text, stripped of surrounding white space */
        char *p = all;
        while (*p == ' ' || (*p >= '\t' && *p <= '\r')) p++;
        size_t k = strlen(p);
        while (k > 0 && (p[k - 1] == ' ' || (p[k - 1] >= '\t' && p[k - 1] <= '\r'))) k--;
        memmove(all, p, k);
        all[k] = 0;
        res->text = all;
        all = NULL;
    }
    free(all);
    if (rc) {
        mt_stt_result_free(res);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    return MT_OK;
}

/* ---- the family ---- */

static int pk_load(void **self, const char *dir, const mt_config *cfg, mt_pool *pool, mt_err *err) {
    mt_parakeet *m = NULL;
    MT_TRY(mt_parakeet_load(&m, dir, cfg, pool, err));
    *self = m;
    return MT_OK;
}

static int pk_transcribe(void *self, const float *audio, size_t n, const mt_asr_opts *o, mt_stt_result *res,
                         mt_err *err) {
    mt_parakeet *m = self;
    double chunk = o->chunk_s > 0 ? o->chunk_s : PK_CHUNK_S;
    double overlap = chunk > PK_OVERLAP_S ? PK_OVERLAP_S : chunk / 2;
    mt_pk_token *t = NULL;
    size_t nt = 0;
    MT_TRY(mt_parakeet_tokens(m, audio, n, chunk, overlap, o->progress, o->progress_user, &t, &nt, err));
    double dur = (double)n / mt_parakeet_sample_rate(m);
    int rc = mt_parakeet_result(t, nt, dur, o->word_timestamps, res, err);
    free(t);
    if (!rc && o->progress) o->progress(o->progress_user, dur, dur);
    return rc;
}

static void pk_free(void *self) { mt_parakeet_free(self); }

static int pk_claims(const mt_config *cfg) { return mt_parakeet_claims(cfg); }

static const char *const pk_types[] = {"parakeet", "parakeet_tdt", NULL};

const mt_asr_family mt_asr_parakeet = {
    .name = "parakeet",
    .model_types = pk_types,
    .caps = MT_ASR_SEGMENTS | MT_ASR_WORDS,
    .summary = "NVIDIA Parakeet (FastConformer + TDT / RNN-T / CTC), sentence and word timestamps",
    .claims = pk_claims,
    .load = pk_load,
    .transcribe = pk_transcribe,
    .free = pk_free,
};
