/* cbatch.c - continuous batching for generation jobs.
 *
 * Up to B records decode together.  Each step: free slots take the next records,
 * newcomers run one chunk of their prompt (prefill_step tokens; a short prompt
 * is then done and samples its first token in the same step), every running
 * sequence samples its next token, the finished ones are answered (the record
 * loop writes answers in input order), and the others advance by one batched
 * decode step (mt_model_decode_batch).  A slot never waits for its neighbours:
 * a short answer frees its slot for the next record while long ones go on.
 * A sequence that speculates (gen/speculative.h) runs its own rounds (draft,
 * one verifying pass) in its turn instead of joining the batched step.
 * Each sequence owns its cache and sampler, so an answer does not depend on
 * its neighbours (greedy: up to the batched products' float reassociation;
 * seeded sampling: its own random stream). */
#include "gen/request.h"
#include "gen/seq.h"
#include "gen/speculative.h"

#include <stdlib.h>
#include <string.h>

typedef struct slot {
    int used;
    size_t ticket, lineno;
    json_t *rec;             /* borrowed from the record loop until answered */
    mt_gen_request req;
    int32_t *ids;
    size_t n_ids;
    char *save;
    mt_gen_result res;
    mt_gen_seq q;
    int started;             /* q was started (mt_gen_seq_free needed) */
    mt_spec *spec;           /* speculative decoding: this sequence runs its own rounds */
} slot;

static void slot_clear(slot *s) {
    mt_spec_free(s->spec);
    if (s->started) mt_gen_seq_free(&s->q);
    mt_gen_result_free(&s->res);
    mt_gen_request_free(&s->req);
    free(s->ids);
    free(s->save);
    memset(s, 0, sizeof *s);
}

/* Parse and prepare a record into slot s (its prefill runs in the main loop). */
static int slot_start(mt_gen_job *j, slot *s, json_t *rec, size_t lineno, size_t ticket, mt_err *err) {
    memset(s, 0, sizeof *s);
    s->rec = rec;
    s->lineno = lineno;
    s->ticket = ticket;
    MT_TRY(mt_gen_request_parse(&s->req, rec, &j->defaults, j->return_ids, err));
    s->req.reproducible = j->reproducible;
    MT_TRY(mt_gen_record_prepare(j, rec, lineno, &s->req, &s->ids, &s->n_ids, &s->save, err));
    s->started = 1;
    MT_TRY(mt_gen_seq_begin(&s->q, j->model, j->pr->tok, s->ids, s->n_ids, &s->req.gp, NULL, NULL, &s->res, err));
    s->used = 1;
    return MT_OK;
}

/* The answer of a finished slot (rc: how its sequence ended), handed to the loop; the slot is
 * freed.  Returns the loop's status (non-zero: stop). */
static int slot_answer(mt_gen_job *j, mt_jsonl_stream *st, slot *s, int rc, mt_err *e) {
    json_t *out = NULL;
    if (!rc) rc = mt_gen_seq_finish(&s->q, e);
    if (!rc) mt_gen_record_tally(j, &s->req, &s->res);
    if (!rc && s->save) rc = mt_gen_record_save(j, s->save, &s->res, e);
    if (!rc) {
        out = mt_gen_request_answer(&s->req, &s->res, j->model_name, s->lineno);
        if (!out) rc = mt_seterr(e, MT_ENOMEM, "out of memory");
        else if (s->save && !s->req.openai) json_object_set_new(out, "prompt_cache_file", json_string(s->save));
    }
    size_t ticket = s->ticket;
    slot_clear(s);
    return mt_jsonl_done(st, ticket, out, rc, e);
}

int mt_gen_stream_handler(void *job, mt_jsonl_stream *st, mt_err *err) {
    mt_gen_job *j = job;
    size_t B = j->batch ? j->batch : 1, V = (size_t)j->model->hp.vocab;
    slot *sl = calloc(B, sizeof *sl);
    mt_kvcache **caches = malloc(B * sizeof *caches);
    int32_t *toks = malloc(B * sizeof *toks);
    size_t *idx = malloc(B * sizeof *idx);
    float *logits = malloc(B * V * sizeof *logits);
    int rc = MT_OK, eof = 0;
    if (!sl || !caches || !toks || !idx || !logits) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    size_t generated = 0;
    while (!rc) {
        /* free slots take the next records */
        for (size_t b = 0; b < B && !eof && !rc; b++) {
            if (sl[b].used) continue;
            json_t *rec;
            size_t lineno, ticket;
            if (!mt_jsonl_next(st, &rec, &lineno, &ticket)) {
                eof = 1;
                break;
            }
            mt_err e = {0};
            int r = slot_start(j, &sl[b], rec, lineno, ticket, &e);
            if (r) {
                slot_clear(&sl[b]);
                rc = mt_jsonl_done(st, ticket, NULL, r, &e);
                b--;   /* the slot is still free */
            }
        }
        if (rc) break;
        /* newcomers prefill one chunk of their prompt per step (prefill_step tokens), so a long
         * prompt does not hold up the others' decoding for long */
        for (size_t b = 0; b < B && !rc; b++) {
            slot *s = &sl[b];
            if (!s->used || s->q.prefilled) continue;
            mt_err e = {0};
            int r = mt_gen_seq_prefill(&s->q, &e);
            /* speculative decoding (not with a grammar): the sequence then runs its own rounds */
            if (!r && s->q.prefilled && !s->q.done && mt_spec_wanted(&s->req.gp) && !s->req.gp.grammar)
                r = mt_spec_new(&s->spec, &s->q, j->model, &e);
            if (r) rc = slot_answer(j, st, s, r, &e);
        }
        if (rc) break;
        /* every running sequence picks its next token; finished ones are answered */
        size_t n = 0;
        for (size_t b = 0; b < B && !rc; b++) {
            slot *s = &sl[b];
            if (!s->used || !s->q.prefilled) continue;
            mt_err e = {0};
            int32_t t = 0;
            if (s->spec && !s->q.done) {   /* a speculative round: its own forward passes */
                size_t before = s->res.n_tokens;
                int r = mt_spec_step(s->spec, &s->q, j->model, &e);
                generated += s->res.n_tokens - before;
                if (r || s->q.done) rc = slot_answer(j, st, s, r, &e);
                continue;
            }
            int r = s->q.done ? MT_OK : mt_gen_seq_sample(&s->q, &t, &e);
            if (r || s->q.done) {
                rc = slot_answer(j, st, s, r, &e);
                continue;
            }
            generated++;
            caches[n] = s->q.cache;
            toks[n] = t;
            idx[n++] = b;
        }
        if (rc) break;
        if (!n) {
            int any = 0;
            for (size_t b = 0; b < B; b++) any |= sl[b].used;
            if (eof && !any) break;
            continue;
        }
        const mt_jsonl_tick *tick = j->defaults.tick;
        if (tick && tick->fn)
            mt_jsonl_tick_note(tick, "%zu of %zu slots decoding, %zu tokens generated", n, B, generated);
        mt_err e = {0};
        int r = mt_model_decode_batch(j->model, caches, toks, n, logits, &e);
        j->decode_steps++;
        j->decode_rows += n;
        for (size_t i = 0; i < n && !rc; i++) {
            slot *s = &sl[idx[i]];
            if (r) rc = slot_answer(j, st, s, r, &e);
            else memcpy(s->q.logits, logits + i * V, V * sizeof *logits);
        }
    }
    for (size_t b = 0; sl && b < B; b++)
        if (sl[b].used || sl[b].started) slot_clear(&sl[b]);
    free(sl);
    free(caches);
    free(toks);
    free(idx);
    free(logits);
    return rc;
}

/* --batch auto: how many sequences to decode together.  Batched decode reads each weight
 * once per step for all sequences, so throughput grows with the batch until the products
 * turn compute-bound (on CPUs, around 8-16 sequences); past that, more slots only add KV
 * memory.  So: 16, or fewer when the KV caches of that many full-length sequences (the
 * record's prompt plus max_tokens, bounded by the model's context; 4096 tokens when
 * unknown) would not fit in half the memory available now. */
size_t mt_gen_batch_auto(const mt_model *m, const mt_gen_params *gp, size_t mem_available) {
    const mt_decoder_hp *hp = &m->hp;
    int f16 = gp->kv_f16 > 0 || (gp->kv_f16 < 0 && mt_model_kv_f16(m));
    /* layers with K/V rows (a recurrent layer whose mixer replaces the attention keeps none, but
     * its state: floats per sequence whatever the length) */
    int kv_layers = 0;
    double state = 0;
    for (int l = 0; m->layers && l < hp->n_layers; l++) state += 4.0 * (double)m->layers[l].state_floats;
    for (int l = 0; l < hp->n_layers; l++)   /* as mt_kvcache_new's no_kv */
        kv_layers += !(state > 0 && m->layers[l].mixer && !m->layers[l].mixer_parallel) && !(m->layers && m->layers[l].kv_from >= 0);
    double per_tok = 2.0 * kv_layers * hp->n_kv_heads * hp->head_dim * (f16 ? 2 : 4);
    if (m->kv_heads)   /* multi-head latent attention: keys and values of their own widths */
        per_tok = (double)kv_layers * ((double)m->kv_heads * m->kv_head_dim + (double)m->kv_v_dim) * (f16 ? 2 : 4);
    if (gp->kv_bits > 0) per_tok = per_tok * (gp->kv_bits + 1.0) / (f16 ? 16.0 : 32.0);
    double len = 4096;
    if (gp->max_kv_size > 0 && !m->own_cache) len = gp->max_kv_size;
    else if (m->ctx_len) len = (double)m->ctx_len < 512.0 + gp->max_tokens ? (double)m->ctx_len : 512.0 + gp->max_tokens;
    double need = per_tok * len + state;
    double fit = mem_available && need > 0 ? 0.5 * (double)mem_available / need : 16;
    size_t b = fit >= 16 ? 16 : fit < 1 ? 1 : (size_t)fit;
    return b;
}
