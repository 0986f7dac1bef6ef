/* timing.c - word-level timestamps (openai-whisper timing.py): cross-attention
 * of the alignment heads over the window, softmax over time, per-(head, frame)
 * standardisation across tokens, a width-7 median filter, DTW of the negated
 * mean, words by split_to_word_tokens (unicode-boundary or space split),
 * merge_punctuations and the segment-boundary adjustments of
 * add_word_timestamps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stt/stt_int.h"

typedef struct wt {          /* WordTiming */
    char *word;
    int ntok;
    double start, end, prob;
} wt;

static const char PUNCTUATION[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";   /* string.punctuation */

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* UTF-8 -> code points; returns the count (out has room for strlen(s)) */
static size_t to_cps(const char *s, uint32_t *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (*p) {
        uint32_t c = *p;
        int k = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
        if (k) c &= (uint32_t)(0x3F >> k);
        p++;
        for (int i = 0; i < k && *p; i++, p++) c = (c << 6) | (*p & 0x3F);
        out[n++] = c;
    }
    return n;
}

static char *dupcat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *r = malloc(la + lb + 1);
    if (!r) return NULL;
    memcpy(r, a, la);
    memcpy(r + la, b, lb + 1);
    return r;
}

/* split_to_word_tokens of toks[n]: words (malloc'ed strings) and their token
 * counts; returns the word count or -1 on allocation failure */
static int split_words(const mt_wtok *tok, int lang, const int32_t *toks, int n, char ***words_out, int **ntok_out,
                       int32_t **first_out)
{
    char *full = NULL;
    if (mt_wtok_decode_ts(tok, toks, (size_t)n, &full, NULL)) return -1;
    uint32_t *fcp = malloc((strlen(full) + 1) * sizeof *fcp);
    char **words = calloc((size_t)n + 1, sizeof *words);
    int *ntok = calloc((size_t)n + 1, sizeof *ntok);
    int32_t *first = calloc((size_t)n + 1, sizeof *first);
    uint32_t *cps = NULL;
    size_t cps_cap = 0;
    int nw = 0, ok = fcp && words && ntok && first;
    size_t nfull = ok ? to_cps(full, fcp) : 0, uoff = 0;
    int cur_start = 0;
    for (int i = 0; ok && i < n; i++) {
        char *dec = NULL;
        if (mt_wtok_decode_ts(tok, toks + cur_start, (size_t)(i + 1 - cur_start), &dec, NULL)) { ok = 0; break; }
        size_t need = strlen(dec) + 1;
        if (need > cps_cap) {
            free(cps);
            cps = malloc(need * sizeof *cps);
            cps_cap = need;
            if (!cps) { free(dec); ok = 0; break; }
        }
        size_t nc = to_cps(dec, cps), idx = nc;
        for (size_t k = 0; k < nc; k++) if (cps[k] == 0xFFFD) { idx = k; break; }
        int accept = idx == nc || (uoff + idx < nfull && fcp[uoff + idx] == 0xFFFD);
        if (accept) {
            words[nw] = dec;
            ntok[nw] = i + 1 - cur_start;
            first[nw] = toks[cur_start];
            nw++;
            cur_start = i + 1;
            uoff += nc;
        } else free(dec);
    }
    free(cps);
    free(fcp);
    free(full);
    static const char *const nospace[] = {"zh", "ja", "th", "lo", "my", "yue"};
    int unicode = 0;
    const char *code = lang >= 0 ? mt_wtok_lang_code(lang) : NULL;
    for (size_t k = 0; code && k < sizeof nospace / sizeof nospace[0]; k++) if (!strcmp(code, nospace[k])) unicode = 1;
    if (ok && !unicode) {
        int m = 0;
        for (int k = 0; k < nw && ok; k++) {
            char *st = stt_py_strip(words[k]);
            if (!st) { ok = 0; break; }
            int special = first[k] >= tok->eot, with_space = words[k][0] == ' ', punct = strstr(PUNCTUATION, st) != NULL;
            free(st);
            if (special || with_space || punct || m == 0) {
                words[m] = words[k];
                ntok[m] = ntok[k];
                first[m] = first[k];
                m++;
            } else {
                char *c = dupcat(words[m - 1], words[k]);
                if (!c) { ok = 0; break; }
                free(words[m - 1]);
                free(words[k]);
                words[m - 1] = c;
                ntok[m - 1] += ntok[k];
            }
            if (m - 1 != k) words[k] = NULL;
        }
        for (int k = m; k < nw; k++) if (words[k]) { free(words[k]); words[k] = NULL; }
        nw = m;
    }
    if (!ok) {
        for (int k = 0; words && k < n + 1; k++) free(words[k]);
        free(words);
        free(ntok);
        free(first);
        return -1;
    }
    *words_out = words;
    *ntok_out = ntok;
    *first_out = first;
    return nw;
}

/* dtw_cpu + backtrace of x[N][M] (float64 costs stored in float32 like the
 * reference); path of length *plen in ti[], fi[] (room for N + M) */
static void dtw(const double *x, int N, int M, int *ti, int *fi, int *plen, float *cost, signed char *trace)
{
    int W = M + 1;
    for (int i = 0; i <= N; i++)
        for (int j = 0; j <= M; j++) {
            cost[(size_t)i * W + j] = INFINITY;
            trace[(size_t)i * W + j] = -1;
        }
    cost[0] = 0;
    for (int j = 1; j <= M; j++)
        for (int i = 1; i <= N; i++) {
            float c0 = cost[(size_t)(i - 1) * W + j - 1], c1 = cost[(size_t)(i - 1) * W + j], c2 = cost[(size_t)i * W + j - 1];
            float c;
            int t;
            if (c0 < c1 && c0 < c2) { c = c0; t = 0; }
            else if (c1 < c0 && c1 < c2) { c = c1; t = 1; }
            else { c = c2; t = 2; }
            cost[(size_t)i * W + j] = (float)(x[(size_t)(i - 1) * M + j - 1] + (double)c);
            trace[(size_t)i * W + j] = (signed char)t;
        }
    for (int j = 0; j <= M; j++) trace[j] = 2;
    for (int i = 0; i <= N; i++) trace[(size_t)i * W] = 1;
    int i = N, j = M, n = 0;
    while (i > 0 || j > 0) {
        ti[n] = i - 1;
        fi[n] = j - 1;
        n++;
        int t = trace[(size_t)i * W + j];
        if (t == 0) { i--; j--; }
        else if (t == 1) i--;
        else j--;
    }
    for (int a = 0, b = n - 1; a < b; a++, b--) {
        int t = ti[a]; ti[a] = ti[b]; ti[b] = t;
        t = fi[a]; fi[a] = fi[b]; fi[b] = t;
    }
    *plen = n;
}

/* find_alignment: alignment[] of the text tokens (may be 0 words) */
static int find_alignment(mt_whisper *w, const mt_wtok *tok, int lang, int task, const float *xa, const int32_t *text,
                          int nt, int num_frames, wt **out, int *nout, mt_err *err)
{
    *out = NULL;
    *nout = 0;
    if (nt == 0) return MT_OK;
    const mt_whisper_hp *hp = mt_whisper_hparams(w);
    int V = hp->n_vocab, A = hp->n_audio_ctx;
    const int (*heads)[2] = NULL;
    int H = (int)mt_whisper_alignment_heads(w, &heads);
    int32_t sot[4];
    int L = mt_wtok_sot_sequence(tok, lang, task, 0, sot);
    int T = L + 1 + nt + 1;
    if (H < 1) return mt_seterr(err, MT_EINVAL, "word timestamps: the model has no alignment heads");
    if (T > hp->n_text_ctx) return mt_seterr(err, MT_EINVAL, "word timestamps: too many tokens");
    int F = num_frames / 2;
    if (F > A) F = A;
    if (F < 1) return MT_OK;
    int rc = MT_OK;
    int32_t *ids = malloc((size_t)T * sizeof *ids);
    float *qk = malloc((size_t)H * T * A * sizeof *qk);
    float *logits = malloc((size_t)T * V * sizeof *logits);
    double *mat = NULL, *probs = NULL;
    float *cost = NULL, *tmp = NULL;
    signed char *trace = NULL;
    int *ti = NULL, *fi = NULL, *ntok = NULL;
    int32_t *first = NULL;
    char **words = NULL;
    int nw = 0;
    if (!ids || !qk || !logits) { rc = mt_seterr(err, MT_ENOMEM, "word timestamps: out of memory"); goto done; }
    memcpy(ids, sot, (size_t)L * sizeof *ids);
    ids[L] = tok->no_timestamps;
    memcpy(ids + L + 1, text, (size_t)nt * sizeof *ids);
    ids[T - 1] = tok->eot;
    if ((rc = mt_whisper_cross_qk(w, xa, ids, T, qk, logits, err))) goto done;

    probs = malloc((size_t)nt * sizeof *probs);
    int R = nt + 1;   /* rows L .. T-2 */
    mat = calloc((size_t)R * F, sizeof *mat);
    tmp = malloc((size_t)(F + 8) * sizeof *tmp);
    float *wts = malloc((size_t)T * F * sizeof *wts), *row = malloc((size_t)(F + 8) * sizeof *row);
    if (!probs || !mat || !tmp || !wts || !row) {
        free(wts);
        free(row);
        rc = mt_seterr(err, MT_ENOMEM, "word timestamps: out of memory");
        goto done;
    }
    for (int i = 0; i < nt; i++) {   /* softmax over the text vocabulary */
        const float *x = logits + (size_t)(L + i) * V;
        probs[i] = (double)(float)exp((double)x[text[i]] - stt_lse_f(x, tok->eot));
    }
    for (int h = 0; h < H; h++) {
        /* softmax over frames */
        for (int t = 0; t < T; t++) {
            const float *q = qk + ((size_t)h * T + t) * A;
            float *o = wts + (size_t)t * F;
            double lse = stt_lse_f(q, F);
            for (int f = 0; f < F; f++) o[f] = expf((float)((double)q[f] - lse));
        }
        /* (w - mean) / std over tokens, population std */
        for (int f = 0; f < F; f++) {
            double mu = 0, var = 0;
            for (int t = 0; t < T; t++) mu += wts[(size_t)t * F + f];
            mu /= T;
            for (int t = 0; t < T; t++) {
                double d = wts[(size_t)t * F + f] - mu;
                var += d * d;
            }
            float sd = (float)sqrt(var / T), fm = (float)mu;
            for (int t = 0; t < T; t++) wts[(size_t)t * F + f] = (wts[(size_t)t * F + f] - fm) / sd;
        }
        /* median filter (width 7, reflect padding) and the head mean */
        for (int r = 0; r < R; r++) {
            const float *x = wts + (size_t)(L + r) * F;
            double *mrow = mat + (size_t)r * F;
            if (F <= 3) {
                for (int f = 0; f < F; f++) mrow[f] += x[f];
                continue;
            }
            for (int f = 0; f < F + 6; f++) {
                int s = f - 3;
                if (s < 0) s = -s;
                if (s >= F) s = 2 * (F - 1) - s;
                row[f] = x[s];
            }
            for (int f = 0; f < F; f++) {   /* median of 7: insertion sort */
                for (int a = 0; a < 7; a++) {
                    float v = row[f + a];
                    int b = a;
                    while (b > 0 && tmp[b - 1] > v) { tmp[b] = tmp[b - 1]; b--; }
                    tmp[b] = v;
                }
                mrow[f] += tmp[3];
            }
        }
    }
    free(wts);
    free(row);
    for (size_t k = 0; k < (size_t)R * F; k++) mat[k] = -(double)(float)(mat[k] / H);

    cost = malloc((size_t)(R + 1) * (F + 1) * sizeof *cost);
    trace = malloc((size_t)(R + 1) * (F + 1));
    ti = malloc((size_t)(R + F + 2) * sizeof *ti);
    fi = malloc((size_t)(R + F + 2) * sizeof *fi);
    if (!cost || !trace || !ti || !fi) { rc = mt_seterr(err, MT_ENOMEM, "word timestamps: out of memory"); goto done; }
    int plen = 0;
    dtw(mat, R, F, ti, fi, &plen, cost, trace);

    /* words of text + [eot] */
    int32_t *tx = malloc((size_t)(nt + 1) * sizeof *tx);
    if (!tx) { rc = mt_seterr(err, MT_ENOMEM, "word timestamps: out of memory"); goto done; }
    memcpy(tx, text, (size_t)nt * sizeof *tx);
    tx[nt] = tok->eot;
    nw = split_words(tok, lang, tx, nt + 1, &words, &ntok, &first);
    free(tx);
    if (nw < 0) { nw = 0; rc = mt_seterr(err, MT_ENOMEM, "word timestamps: out of memory"); goto done; }
    if (nw <= 1) goto done;

    /* jump times: the first path point of every text index */
    double *jt = malloc((size_t)plen * sizeof *jt);
    if (!jt) { rc = mt_seterr(err, MT_ENOMEM, "word timestamps: out of memory"); goto done; }
    int nj = 0;
    for (int k = 0; k < plen; k++)
        if (k == 0 || ti[k] != ti[k - 1]) jt[nj++] = fi[k] / 50.0;
    wt *al = calloc((size_t)nw, sizeof *al);
    if (!al) { free(jt); rc = mt_seterr(err, MT_ENOMEM, "word timestamps: out of memory"); goto done; }
    int b0 = 0, na = 0;
    for (int k = 0; k + 1 < nw; k++) {
        int b1 = b0 + ntok[k];
        al[na].word = words[k];
        words[k] = NULL;
        al[na].ntok = ntok[k];
        al[na].start = b0 < nj ? jt[b0] : NAN;
        al[na].end = b1 < nj ? jt[b1] : NAN;
        double s = 0;
        for (int i = b0; i < b1 && i < nt; i++) s += probs[i];
        al[na].prob = b1 > b0 ? s / (b1 - b0) : NAN;
        na++;
        b0 = b1;
    }
    free(jt);
    *out = al;
    *nout = na;

done:
    for (int k = 0; words && k < nw; k++) free(words[k]);
    free(words);
    free(ntok);
    free(first);
    free(ids);
    free(qk);
    free(logits);
    free(mat);
    free(probs);
    free(cost);
    free(tmp);
    free(trace);
    free(ti);
    free(fi);
    return rc;
}

static int ends_with_space(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && s[n - 1] == ' ';
}

static int merge_punctuations(wt *a, int n, const char *prepended, const char *appended)
{
    int i = n - 2, j = n - 1;
    while (i >= 0) {
        wt *p = &a[i], *f = &a[j];
        char *st = stt_py_strip(p->word);
        if (!st) return -1;
        int hit = p->word[0] == ' ' && strstr(prepended, st) != NULL;
        free(st);
        if (hit) {
            char *c = dupcat(p->word, f->word);
            if (!c) return -1;
            free(f->word);
            f->word = c;
            f->ntok += p->ntok;
            p->word[0] = 0;
            p->ntok = 0;
        } else j = i;
        i--;
    }
    i = 0;
    j = 1;
    while (j < n) {
        wt *p = &a[i], *f = &a[j];
        if (!ends_with_space(p->word) && strstr(appended, f->word) != NULL) {
            char *c = dupcat(p->word, f->word);
            if (!c) return -1;
            free(p->word);
            p->word = c;
            p->ntok += f->ntok;
            f->word[0] = 0;
            f->ntok = 0;
        } else i = j;
        j++;
    }
    return 0;
}

int stt_add_word_timestamps(mt_whisper *w, const mt_wtok *tok, int lang, int task, const float *xa, mt_stt_segment *segs,
                            size_t n, int num_frames, const char *prepend, const char *append, double last_speech,
                            mt_err *err)
{
    if (n == 0) return MT_OK;
    size_t total = 0;
    for (size_t s = 0; s < n; s++)
        for (size_t k = 0; k < segs[s].n_tokens; k++) total += segs[s].tokens[k] < tok->eot;
    int32_t *text = malloc((total + 1) * sizeof *text);
    if (!text) return mt_seterr(err, MT_ENOMEM, "word timestamps: out of memory");
    size_t nt = 0;
    for (size_t s = 0; s < n; s++)
        for (size_t k = 0; k < segs[s].n_tokens; k++)
            if (segs[s].tokens[k] < tok->eot) text[nt++] = segs[s].tokens[k];
    wt *al = NULL;
    int na = 0;
    int rc = find_alignment(w, tok, lang, task, xa, text, (int)nt, num_frames, &al, &na, err);
    free(text);
    if (rc) return rc;

    double *dur = malloc(((size_t)na + 1) * sizeof *dur);
    if (!dur) { rc = mt_seterr(err, MT_ENOMEM, "word timestamps: out of memory"); goto done; }
    int nd = 0;
    for (int i = 0; i < na; i++) {
        double d = al[i].end - al[i].start;
        if (d != 0) dur[nd++] = d;
    }
    double median = 0.0;
    if (nd > 0) {
        qsort(dur, (size_t)nd, sizeof *dur, cmpd);
        median = nd % 2 ? dur[nd / 2] : (dur[nd / 2 - 1] + dur[nd / 2]) / 2;
    }
    free(dur);
    if (median > 0.7) median = 0.7;
    double maxd = median * 2;
    if (nd > 0) {
        static const char marks[] = ".\xe3\x80\x82!\xef\xbc\x81?\xef\xbc\x9f";
        for (int i = 1; i < na; i++)
            if (al[i].end - al[i].start > maxd) {
                if (strstr(marks, al[i].word)) al[i].end = al[i].start + maxd;
                else if (strstr(marks, al[i - 1].word)) al[i].start = al[i].end - maxd;
            }
    }
    if (merge_punctuations(al, na, prepend ? prepend : "", append ? append : "")) {
        rc = mt_seterr(err, MT_ENOMEM, "word timestamps: out of memory");
        goto done;
    }
    double time_offset = segs[0].seek * (double)160 / 16000;
    int wi = 0;
    for (size_t s = 0; s < n; s++) {
        mt_stt_segment *sg = &segs[s];
        size_t ntext = 0;
        for (size_t k = 0; k < sg->n_tokens; k++) ntext += sg->tokens[k] < tok->eot;
        size_t saved = 0;
        mt_stt_word *words = calloc((size_t)na + 1, sizeof *words);
        if (!words) { rc = mt_seterr(err, MT_ENOMEM, "word timestamps: out of memory"); goto done; }
        size_t nw = 0;
        while (wi < na && saved < ntext) {
            wt *t = &al[wi];
            if (t->word[0]) {
                words[nw].word = strdup(t->word);
                if (!words[nw].word) {
                    for (size_t k = 0; k < nw; k++) free(words[k].word);
                    free(words);
                    rc = mt_seterr(err, MT_ENOMEM, "word timestamps: out of memory");
                    goto done;
                }
                words[nw].start = stt_round2(time_offset + t->start);
                words[nw].end = stt_round2(time_offset + t->end);
                words[nw].probability = t->prob;
                nw++;
            }
            saved += (size_t)t->ntok;
            wi++;
        }
        if (nw > 0) {
            mt_stt_word *w0 = &words[0], *w1 = nw > 1 ? &words[1] : NULL;
            if (w0->end - last_speech > median * 4 &&
                (w0->end - w0->start > maxd || (w1 && w1->end - w0->start > maxd * 2))) {
                if (w1 && w1->end - w1->start > maxd) {
                    double b = w1->end / 2 > w1->end - maxd ? w1->end / 2 : w1->end - maxd;
                    w0->end = w1->start = b;
                }
                w0->start = w0->end - maxd > 0 ? w0->end - maxd : 0;
            }
            if (sg->start < w0->end && sg->start - 0.5 > w0->start) {
                double m = w0->end - median < sg->start ? w0->end - median : sg->start;
                w0->start = m > 0 ? m : 0;
            } else sg->start = w0->start;
            mt_stt_word *wl = &words[nw - 1];
            if (sg->end > wl->start && sg->end + 0.5 < wl->end) {
                double m = wl->start + median;
                wl->end = m > sg->end ? m : sg->end;
            } else sg->end = wl->end;
            last_speech = sg->end;
        }
        for (size_t k = 0; k < sg->n_words; k++) free(sg->words[k].word);
        free(sg->words);
        sg->words = words;
        sg->n_words = nw;
    }

done:
    for (int i = 0; i < na; i++) free(al[i].word);
    free(al);
    return rc;
}
