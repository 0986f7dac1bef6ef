/* request.c - per-record generation options (native and OpenAI Batch API lines)
 * and the matching answer objects. */
#include "gen/request.h"
#include "core/jsonl.h"
#include "gen/pcache.h"
#include "gen/structured.h"
#include "gen/speculative.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>

static int get_num(json_t *o, const char *k, double *out, int *set, mt_err *err) {
    json_t *v = json_object_get(o, k);
    *set = 0;
    if (!v || json_is_null(v)) return MT_OK;
    if (!json_is_number(v)) return mt_seterr(err, MT_EINVAL, "\"%s\" must be a number", k);
    *out = json_number_value(v);
    *set = 1;
    return MT_OK;
}

static int opt_float(json_t *o, const char *k, float *dst, mt_err *err) {
    double d = 0;
    int set;
    MT_TRY(get_num(o, k, &d, &set, err));
    if (set) *dst = (float)d;
    return MT_OK;
}

static int opt_int(json_t *o, const char *k, int *dst, long long lo, long long hi, mt_err *err) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return MT_OK;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return mt_seterr(err, MT_EINVAL, "\"%s\" must be an integer in [%lld, %lld]", k, lo, hi);
    *dst = (int)json_integer_value(v);
    return MT_OK;
}

int mt_gen_request_parse(mt_gen_request *req, json_t *rec, const mt_gen_params *defaults, int return_ids,
                         mt_err *err) {
    memset(req, 0, sizeof *req);
    req->gp = *defaults;
    req->return_ids = return_ids;
    json_t *o = rec;
    json_t *cid = json_object_get(rec, "custom_id");
    if (cid || json_object_get(rec, "body")) {
        json_t *body = json_object_get(rec, "body"), *url = json_object_get(rec, "url");
        if (!json_is_object(body)) return mt_seterr(err, MT_EINVAL, "OpenAI batch line: \"body\" must be an object");
        if (cid && !json_is_string(cid)) return mt_seterr(err, MT_EINVAL, "\"custom_id\" must be a string");
        const char *u = json_is_string(url) ? json_string_value(url) : "/v1/chat/completions";
        if (!strcmp(u, "/v1/chat/completions")) req->openai = 1;
        else if (!strcmp(u, "/v1/completions")) req->openai = 2;
        else return mt_seterr(err, MT_EINVAL, "OpenAI batch line: url \"%s\" is not supported", u);
        req->custom_id = cid ? json_string_value(cid) : NULL;
        o = body;
        if (req->openai == 1 && !json_is_array(json_object_get(o, "messages")))
            return mt_seterr(err, MT_EINVAL, "OpenAI batch line: body needs \"messages\"");
        if (req->openai == 2 && !json_is_string(json_object_get(o, "prompt")))
            return mt_seterr(err, MT_EINVAL, "OpenAI batch line: body needs a string \"prompt\"");
    }
    req->prompt_rec = o;
    if (!req->openai) MT_TRY(mt_json_get_bool(o, "return_ids", &req->return_ids, err));
    mt_gen_params *gp = &req->gp;
    mt_sampler_params *sp = &gp->sp;
    MT_TRY(opt_int(o, "max_tokens", &gp->max_tokens, 0, 1 << 24, err));
    if (!req->openai) MT_TRY(opt_int(o, "logprobs", &gp->logprobs, 0, 1000, err));
    MT_TRY(opt_int(o, "max_kv_size", &gp->max_kv_size, 0, 1 << 30, err));
    MT_TRY(opt_int(o, "prefill_step_size", &gp->prefill_step, 1, 1 << 30, err));
    if (gp->max_kv_size > 0 && gp->max_kv_size <= 4) return mt_seterr(err, MT_EINVAL, "\"max_kv_size\" must exceed 4");
    MT_TRY(opt_int(o, "max_completion_tokens", &gp->max_tokens, 0, 1 << 24, err));
    MT_TRY(opt_float(o, "temp", &sp->temp, err));
    MT_TRY(opt_float(o, "temperature", &sp->temp, err));
    MT_TRY(opt_float(o, "top_p", &sp->top_p, err));
    MT_TRY(opt_int(o, "top_k", &sp->top_k, 0, 1 << 30, err));
    MT_TRY(opt_float(o, "min_p", &sp->min_p, err));
    MT_TRY(opt_int(o, "min_tokens_to_keep", &sp->min_tokens_to_keep, 1, 1 << 30, err));
    MT_TRY(opt_float(o, "xtc_probability", &sp->xtc_probability, err));
    MT_TRY(opt_float(o, "xtc_threshold", &sp->xtc_threshold, err));
    MT_TRY(opt_float(o, "repetition_penalty", &sp->repetition_penalty, err));
    MT_TRY(opt_int(o, "repetition_context_size", &sp->repetition_context_size, 0, 1 << 30, err));
    MT_TRY(opt_float(o, "presence_penalty", &sp->presence_penalty, err));
    MT_TRY(opt_int(o, "presence_context_size", &sp->presence_context_size, 0, 1 << 30, err));
    MT_TRY(opt_float(o, "frequency_penalty", &sp->frequency_penalty, err));
    MT_TRY(opt_int(o, "frequency_context_size", &sp->frequency_context_size, 0, 1 << 30, err));
    /* speculative decoding (gen/speculative.h): 0 = off for this record */
    MT_TRY(opt_int(o, "num_draft_tokens", &gp->num_draft, 0, MT_SPEC_MAX_DRAFT, err));
    MT_TRY(opt_int(o, "prompt_lookup", &gp->prompt_lookup, 0, MT_SPEC_MAX_DRAFT, err));
    if (gp->num_draft > 0 && !gp->draft && json_object_get(o, "num_draft_tokens"))
        return mt_seterr(err, MT_EINVAL, "\"num_draft_tokens\" needs a draft model (--draft-model)");
    json_t *seed = json_object_get(o, "seed");
    if (seed && !json_is_null(seed)) {
        if (!json_is_integer(seed)) return mt_seterr(err, MT_EINVAL, "\"seed\" must be an integer");
        sp->seed = (uint64_t)json_integer_value(seed);
    }
    json_t *lb = json_object_get(o, "logit_bias");
    if (lb && !json_is_null(lb)) {
        if (!json_is_object(lb)) return mt_seterr(err, MT_EINVAL, "\"logit_bias\" must be an object {\"token id\": bias}");
        size_t n = json_object_size(lb), i = 0;
        req->bias_ids = malloc((n ? n : 1) * sizeof *req->bias_ids);
        req->bias_vals = malloc((n ? n : 1) * sizeof *req->bias_vals);
        if (!req->bias_ids || !req->bias_vals) return mt_seterr(err, MT_ENOMEM, "out of memory");
        const char *k;
        json_t *v;
        json_object_foreach(lb, k, v) {
            char *end;
            long id = strtol(k, &end, 10);
            if (!*k || *end || id < 0 || id > INT32_MAX || !json_is_number(v))
                return mt_seterr(err, MT_EINVAL, "\"logit_bias\": key \"%s\" must be a token id with a number", k);
            req->bias_ids[i] = (int32_t)id;
            req->bias_vals[i++] = (float)json_number_value(v);
        }
        sp->bias_ids = req->bias_ids;
        sp->bias_vals = req->bias_vals;
        sp->n_bias = n;
    }
    json_t *st = json_object_get(o, "stop");
    if (st && !json_is_null(st)) {
        size_t n = json_is_string(st) ? 1 : json_is_array(st) ? json_array_size(st) : (size_t)-1;
        if (n == (size_t)-1) return mt_seterr(err, MT_EINVAL, "\"stop\" must be a string or a list of strings");
        req->stop = calloc(n ? n : 1, sizeof *req->stop);
        if (!req->stop) return mt_seterr(err, MT_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            json_t *s = json_is_string(st) ? st : json_array_get(st, i);
            if (!json_is_string(s)) return mt_seterr(err, MT_EINVAL, "\"stop\" must be a string or a list of strings");
            req->stop[i] = strdup(json_string_value(s));
            if (!req->stop[i]) return mt_seterr(err, MT_ENOMEM, "out of memory");
        }
        gp->stop = (const char *const *)req->stop;
        gp->n_stop = n;
    }
    return MT_OK;
}

void mt_gen_request_free(mt_gen_request *req) {
    if (!req) return;
    if (req->stop)
        for (size_t i = 0; i < req->gp.n_stop; i++) free(req->stop[i]);
    free(req->stop);
    free(req->bias_ids);
    free(req->bias_vals);
    free(req->inject);   /* one block: the struct, then its rows */
    mt_gen_grammars_release(req->grammars, req->gp.grammar);
    memset(req, 0, sizeof *req);
}

json_t *mt_gen_request_answer(const mt_gen_request *req, const mt_gen_result *res, const char *model_name,
                              size_t line_no) {
    json_t *text = json_stringn(res->text, res->text_len);
    if (!text) text = json_string("");   /* never: the detokenizer emits valid UTF-8 */
    double ptps = res->prefill_s > 0 ? (res->prompt_tokens - res->cached_tokens) / res->prefill_s : 0;
    double dtps = res->decode_s > 0 ? res->n_tokens / res->decode_s : 0;
    if (!req->openai) {
        json_t *a = json_pack("{s:o,s:s,s:I,s:I}", "text", text, "finish_reason", res->finish_reason,
                              "prompt_tokens", (json_int_t)res->prompt_tokens, "completion_tokens",
                              (json_int_t)res->n_tokens);
        if (a && !req->reproducible) {
            json_object_set_new(a, "prefill_tps", json_real(ptps));
            json_object_set_new(a, "decode_tps", json_real(dtps));
        }
        if (a && res->cached_tokens && !req->reproducible) json_object_set_new(a, "cached_tokens", json_integer((json_int_t)res->cached_tokens));
        if (a && mt_spec_wanted(&req->gp) && !req->reproducible) {
            json_object_set_new(a, "draft_tokens", json_integer((json_int_t)res->draft_tokens));
            json_object_set_new(a, "accepted_tokens", json_integer((json_int_t)res->accepted_tokens));
        }
        if (a && req->return_ids) {
            json_t *ids = json_array();
            for (size_t i = 0; i < res->n_tokens; i++) json_array_append_new(ids, json_integer(res->tokens[i]));
            json_object_set_new(a, "ids", ids);
        }
        if (a && req->gp.logprobs > 0 && res->top_ids) {
            size_t K = (size_t)req->gp.logprobs;
            json_t *lps = json_array();
            for (size_t i = 0; i < res->n_tokens; i++) {
                json_t *top = json_array();
                for (size_t k = 0; k < K; k++)
                    json_array_append_new(top, json_pack("[I,f]", (json_int_t)res->top_ids[i * K + k],
                                                         (double)res->top_logprobs[i * K + k]));
                json_array_append_new(lps, json_pack("{s:I,s:f,s:o}", "id", (json_int_t)res->tokens[i], "logprob",
                                                     (double)res->token_logprobs[i], "top", top));
            }
            json_object_set_new(a, "logprobs", lps);
        }
        return a;
    }
    char rid[64], cid[64];
    snprintf(rid, sizeof rid, "batch_req_%zu", line_no);
    snprintf(cid, sizeof cid, "%s-%zu", req->openai == 1 ? "chatcmpl" : "cmpl", line_no);
    json_t *choice = req->openai == 1
        ? json_pack("{s:i,s:{s:s,s:o},s:s}", "index", 0, "message", "role", "assistant", "content", text,
                    "finish_reason", res->finish_reason)
        : json_pack("{s:i,s:o,s:s}", "index", 0, "text", text, "finish_reason", res->finish_reason);
    json_t *body = json_pack("{s:s,s:s,s:I,s:s,s:[o],s:{s:I,s:I,s:I}}", "id", cid, "object",
                             req->openai == 1 ? "chat.completion" : "text_completion", "created",
                             (json_int_t)time(NULL), "model", model_name ? model_name : "", "choices", choice,
                             "usage", "prompt_tokens", (json_int_t)res->prompt_tokens, "completion_tokens",
                             (json_int_t)res->n_tokens, "total_tokens",
                             (json_int_t)(res->prompt_tokens + res->n_tokens));
    if (body && req->reproducible) json_object_del(body, "created");
    if (body && res->cached_tokens && !req->reproducible)
        json_object_set_new(json_object_get(body, "usage"), "prompt_tokens_details",
                            json_pack("{s:I}", "cached_tokens", (json_int_t)res->cached_tokens));
    return json_pack("{s:s,s:s?,s:{s:i,s:s,s:o},s:n}", "id", rid, "custom_id", req->custom_id, "response",
                     "status_code", 200, "request_id", rid, "body", body, "error");
}

/* A record's id as a file name for --save-prompt-cache FOLDER: "<id>.kv.zst". */
static int save_name(const mt_gen_job *j, json_t *rec, size_t lineno, char **out, mt_err *err) {
    json_t *id = json_object_get(rec, "custom_id");
    if (!id) id = json_object_get(rec, "id");
    char buf[64];
    const char *s = buf;
    if (json_is_string(id)) s = json_string_value(id);
    else if (json_is_integer(id)) snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(id));
    else snprintf(buf, sizeof buf, "%zu", lineno);
    if (!*s || !strcmp(s, ".") || !strcmp(s, "..") || strchr(s, '/') || strlen(s) > 200)
        return mt_seterr(err, MT_EINVAL, "id \"%.60s\" cannot name a file in %s", s, j->save_cache);
    size_t n = strlen(j->save_cache) + strlen(s) + 16;
    *out = malloc(n);
    if (!*out) return mt_seterr(err, MT_ENOMEM, "out of memory");
    size_t dl = strlen(j->save_cache);
    snprintf(*out, n, "%s%s%s%s", j->save_cache, dl && j->save_cache[dl - 1] == '/' ? "" : "/", s,
             j->save_level < 0 ? ".safetensors" : ".kv.zst");
    return MT_OK;
}

/* The ids to run for record i, the cache they follow, and where to save its state. */
int mt_gen_record_prepare(mt_gen_job *j, json_t *rec, size_t lineno, mt_gen_request *req, int32_t **ids, size_t *n,
                          char **save, mt_err *err) {
    *save = NULL;
    json_t *o = req->prompt_rec;
    if (j->grammars) {
        MT_TRY(mt_gen_grammars_for(j->grammars, o, &req->gp.grammar, err));
        req->grammars = j->grammars;
    } else if (json_object_get(o, "response_format") || json_object_get(o, "json_schema") || json_object_get(o, "regex") ||
               json_object_get(o, "grammar")) {
        return mt_seterr(err, MT_EINVAL, "structured output (\"response_format\", \"json_schema\", \"regex\", \"grammar\") is "
                         "not available in this mode");
    }
    json_t *pc = json_object_get(o, "prompt_cache"), *sc = json_object_get(o, "save_prompt_cache");
    if (pc && !json_is_null(pc) && !json_is_string(pc)) return mt_seterr(err, MT_EINVAL, "\"prompt_cache\" must be a file name");
    if (sc && !json_is_null(sc) && !json_is_string(sc)) return mt_seterr(err, MT_EINVAL, "\"save_prompt_cache\" must be a file name");
    const char *path = json_is_string(pc) ? json_string_value(pc) : j->prompt_cache;
    if ((path || json_is_string(sc) || j->save_cache) && !j->caches)
        return mt_seterr(err, MT_EINVAL, "prompt caches are not available in this mode");
    if ((path || json_is_string(sc) || j->save_cache) && j->model->no_kvfile)   /* refused before any work */
        return mt_seterr(err, MT_EUNSUPPORTED, "prompt-cache files are not supported for %s", j->model->no_kvfile);
    json_t *ia = json_object_get(o, "ids");
    if (ia && !json_is_null(ia)) {   /* token ids given: no tokenizer, no template */
        if (!json_is_array(ia)) return mt_seterr(err, MT_EINVAL, "\"ids\" must be an array of token ids");
        *n = json_array_size(ia);
        *ids = malloc((*n ? *n : 1) * sizeof **ids);
        if (!*ids) return mt_seterr(err, MT_ENOMEM, "out of memory");
        for (size_t i = 0; i < *n; i++) {
            json_t *v = json_array_get(ia, i);
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= j->model->hp.vocab)
                return mt_seterr(err, MT_EINVAL, "\"ids\"[%zu] is not a token id (0..%d)", i, j->model->hp.vocab - 1);
            (*ids)[i] = (int32_t)json_integer_value(v);
        }
    }
    if (path && j->media)
        return mt_seterr(err, MT_EINVAL, "prompt caches do not go with images yet (--prompt-cache / \"prompt_cache\")");
    if (path) {
        const mt_kvfile *f;
        const mt_kvcache *c;
        MT_TRY(mt_gen_caches_get(j->caches, path, &f, &c, err));
        const mt_gen_params *g = &req->gp;
        if (g->max_kv_size > 0 && !c->max_size && c->len > (size_t)g->max_kv_size)
            return mt_seterr(err, MT_EINVAL, "%s holds %zu tokens, more than --max-kv-size %d", path, c->len,
                             g->max_kv_size);
        if (g->kv_bits > 0 && c->qscheme != MT_KVQ_NONE &&
            (g->kv_bits != c->qbits || (c->qscheme == MT_KVQ_AFFINE && g->kv_group_size > 0 && g->kv_group_size != c->qgroup)))
            return mt_seterr(err, MT_EINVAL, "%s: its KV cache is quantized to %d bits in groups of %d, which --kv-bits %d "
                             "--kv-group-size %d does not match", path, c->qbits, c->qgroup, g->kv_bits,
                             g->kv_group_size > 0 ? g->kv_group_size : c->qgroup);
        if (!*ids) MT_TRY(mt_gen_caches_encode(j->pr, f, o, j->add_generation_prompt, ids, n, err));
        req->gp.prefix = c;
        req->gp.prefix_tokens = f->tokens;
    } else if (!*ids && j->media) {
        MT_TRY(j->media(j->media_user, j->pr, o, j->add_generation_prompt, ids, n, &req->inject, err));
        req->gp.inject = req->inject;
    } else if (!*ids)
        MT_TRY(mt_prompter_encode(j->pr, o, j->add_generation_prompt, -1, NULL, NULL, ids, n, err));
    if (json_is_string(sc)) {
        if (!(*save = strdup(json_string_value(sc)))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    } else if (j->save_cache && j->save_dir) {
        MT_TRY(save_name(j, rec, lineno, save, err));
    } else if (j->save_cache) {
        if (j->saved++) return mt_seterr(err, MT_EINVAL, "--save-prompt-cache %s takes one record; give a folder (ending "
                                         "in /) for one file per record", j->save_cache);
        if (!(*save = strdup(j->save_cache))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    if (*save) {
        json_t *af = json_object_get(o, "save_prompt_cache_after");
        const char *after = json_is_string(af) ? json_string_value(af) : j->save_after_generation ? "generation" : "prompt";
        if (af && !json_is_null(af) && !json_is_string(af))
            return mt_seterr(err, MT_EINVAL, "\"save_prompt_cache_after\" must be \"prompt\" or \"generation\"");
        if (!strcmp(after, "prompt")) req->gp.snapshot = 1;
        else if (!strcmp(after, "generation")) req->gp.snapshot = 2;
        else return mt_seterr(err, MT_EINVAL, "\"save_prompt_cache_after\" must be \"prompt\" or \"generation\"");
    }
    return MT_OK;
}

void mt_gen_record_tally(mt_gen_job *j, const mt_gen_request *req, const mt_gen_result *res) {
    if (!req->gp.grammar) return;
    j->gram_answers++;
    j->gram_tokens += res->n_tokens;
    j->gram_s += res->grammar_s;
    j->gram_decode_s += res->decode_s;
    /* ended by the model's eos, which the grammar allows only where it can end */
    if (res->eos) {
        j->gram_ended++;
        j->gram_valid += mt_gen_grammar_valid(j->grammars, req->gp.grammar, res->text, res->text_len);
    }
}

int mt_gen_record_save(mt_gen_job *j, const char *path, const mt_gen_result *res, mt_err *err) {
    if (!res->prompt_cache) return mt_seterr(err, MT_EINVAL, "internal: no state to save");
    return mt_gen_caches_save(j->caches, j->pr, path, res->prompt_cache, res->prompt_ids, res->n_prompt_ids,
                              j->save_level, err);
}

void mt_gen_batch_handler(void *user, json_t **recs, const size_t *linenos, size_t n, json_t **outs, int *rcs,
                          mt_err *errs) {
    mt_gen_job *j = user;
    mt_gen_request *req = calloc(n, sizeof *req);
    int32_t **ids = calloc(n, sizeof *ids);
    char **save = calloc(n, sizeof *save);
    size_t *nids = calloc(n, sizeof *nids), *map = calloc(n, sizeof *map);
    const int32_t **bp = calloc(n, sizeof *bp);
    const mt_gen_params **bg = calloc(n, sizeof *bg);
    mt_gen_result *res = calloc(n, sizeof *res);
    int *brc = calloc(n, sizeof *brc);
    mt_err *berr = calloc(n, sizeof *berr);
    if (!req || !ids || !save || !nids || !map || !bp || !bg || !res || !brc || !berr) {
        for (size_t i = 0; i < n; i++) rcs[i] = mt_seterr(&errs[i], MT_ENOMEM, "out of memory");
        goto done;
    }
    size_t B = 0;
    for (size_t i = 0; i < n; i++) {
        rcs[i] = mt_gen_request_parse(&req[i], recs[i], &j->defaults, j->return_ids, &errs[i]);
        req[i].reproducible = j->reproducible;
        if (!rcs[i]) rcs[i] = mt_gen_record_prepare(j, recs[i], linenos[i], &req[i], &ids[i], &nids[i], &save[i], &errs[i]);
        if (rcs[i]) continue;
        if (mt_spec_wanted(&req[i].gp)) {   /* speculative records run alone (gen/speculative.h) */
            mt_gen_result r;
            rcs[i] = mt_generate(j->model, j->pr->tok, ids[i], nids[i], &req[i].gp, NULL, NULL, &r, &errs[i]);
            if (rcs[i]) continue;
            if (save[i]) rcs[i] = mt_gen_record_save(j, save[i], &r, &errs[i]);
            if (!rcs[i]) outs[i] = mt_gen_request_answer(&req[i], &r, j->model_name, linenos[i]);
            if (outs[i] && save[i] && !req[i].openai) json_object_set_new(outs[i], "prompt_cache_file", json_string(save[i]));
            mt_gen_result_free(&r);
            continue;
        }
        bp[B] = ids[i];
        nids[B] = nids[i];
        bg[B] = &req[i].gp;
        map[B++] = i;
    }
    if (B) mt_generate_batch(j->model, j->pr->tok, bp, nids, bg, B, res, brc, berr);
    for (size_t b = 0; b < B; b++) {
        size_t i = map[b];
        rcs[i] = brc[b];
        if (brc[b]) { errs[i] = berr[b]; continue; }
        mt_gen_record_tally(j, &req[i], &res[b]);
        if (save[i]) rcs[i] = mt_gen_record_save(j, save[i], &res[b], &errs[i]);
        if (!rcs[i]) outs[i] = mt_gen_request_answer(&req[i], &res[b], j->model_name, linenos[i]);
        if (outs[i] && save[i] && !req[i].openai) json_object_set_new(outs[i], "prompt_cache_file", json_string(save[i]));
        mt_gen_result_free(&res[b]);
    }
done:
    for (size_t i = 0; req && i < n; i++) mt_gen_request_free(&req[i]);
    for (size_t i = 0; ids && i < n; i++) free(ids[i]);
    for (size_t i = 0; save && i < n; i++) free(save[i]);
    free(req); free(ids); free(save); free(nids); free(map); free(bp); free(bg); free(res); free(brc); free(berr);
}

static int score_one(mt_gen_job *j, json_t *rec, json_t **out, mt_err *err) {
    int32_t *ids = NULL;
    size_t n = 0;
    mt_embed_inject *inj = NULL;
    json_t *a = json_object_get(rec, "ids");
    if (a) {
        if (!json_is_array(a) || json_array_size(a) == 0) return mt_seterr(err, MT_EINVAL, "\"ids\" must be a non-empty array");
        n = json_array_size(a);
        ids = malloc(n * sizeof *ids);
        if (!ids) return mt_seterr(err, MT_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_array_get(a, i);
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= j->model->hp.vocab) {
                free(ids);
                return mt_seterr(err, MT_EINVAL, "\"ids\"[%zu] is not a token id", i);
            }
            ids[i] = (int32_t)json_integer_value(v);
        }
    } else if (j->media) {
        MT_TRY(j->media(j->media_user, j->pr, rec, j->add_generation_prompt, &ids, &n, &inj, err));
        if (n == 0) { free(ids); free(inj); return mt_seterr(err, MT_EINVAL, "the text has no tokens"); }
    } else {
        MT_TRY(mt_prompter_encode(j->pr, rec, j->add_generation_prompt, -1, NULL, NULL, &ids, &n, err));
        if (n == 0) { free(ids); return mt_seterr(err, MT_EINVAL, "the text has no tokens"); }
    }
    float *lp = malloc(n * sizeof *lp);
    int rc = lp ? mt_score_inject(j->model, ids, n, j->defaults.kv_bits, j->defaults.kv_group_size, j->score_kv_f16, inj,
                                  lp, err)
                : mt_seterr(err, MT_ENOMEM, "out of memory");
    free(inj);
    if (!rc) {
        json_t *ja = json_array(), *jl = json_array();
        double sum = 0;
        for (size_t i = 0; i < n; i++) json_array_append_new(ja, json_integer(ids[i]));
        for (size_t i = 1; i < n; i++) {
            json_array_append_new(jl, json_real(lp[i]));
            sum += lp[i];
        }
        /* the logits were finite (mt_score checks), but exp can still overflow: JSON has no inf */
        double ppl = n > 1 ? exp(-sum / (double)(n - 1)) : 1.0;
        *out = json_pack("{s:I,s:o,s:o,s:f,s:o}", "n", (json_int_t)n, "ids", ja, "logprobs", jl, "sum", sum, "ppl",
                         isfinite(ppl) ? json_real(ppl) : json_null());
        if (!*out) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    free(lp);
    free(ids);
    return rc;
}

void mt_score_handler(void *user, json_t **recs, const size_t *linenos, size_t n, json_t **outs, int *rcs,
                      mt_err *errs) {
    (void)linenos;
    for (size_t i = 0; i < n; i++) rcs[i] = score_one(user, recs[i], &outs[i], &errs[i]);
}
