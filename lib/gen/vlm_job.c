/* vlm_job.c - a record's images into its prompt and image rows (vlm_job.h).
 * ref: mlx_vlm/prompt_utils.py (apply_chat_template, MessageFormat), mlx_vlm/utils.py
 * (load_image), mlx_vlm/generate (prepare_inputs). */
#include "gen/vlm_job.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"

typedef struct cached {
    uint64_t key;
    int w, h;
    float *rows;
    size_t n_rows;
    uint64_t used;      /* last use (a counter) */
} cached;

struct mt_vlm_job {
    mt_vlm *vlm;
    mt_vlm_proc proc;
    mt_image_opts iopts;
    const void *stdin_data;
    size_t stdin_n;
    cached *c;
    size_t nc, cap, bytes, max_bytes;
    uint64_t clock;
    size_t encoded, reused;
};

int mt_vlm_job_new(mt_vlm_job **out, mt_vlm *v, double cache_mb, mt_err *err) {
    *out = NULL;
    mt_vlm_job *j = calloc(1, sizeof *j);
    if (!j) return mt_seterr(err, MT_ENOMEM, "out of memory");
    j->vlm = v;
    j->max_bytes = cache_mb > 0 ? (size_t)(cache_mb * 1e6) : 0;
    int rc = mt_vlm_proc_load(&j->proc, v->dir, v->model_type, err);
    if (rc) {
        mt_preferr(err, "%s", v->dir);
        free(j);
        return rc;
    }
    *out = j;
    return MT_OK;
}

void mt_vlm_job_free(mt_vlm_job *j) {
    if (!j) return;
    for (size_t i = 0; i < j->nc; i++) free(j->c[i].rows);
    free(j->c);
    free(j);
}

void mt_vlm_job_set_stdin_image(mt_vlm_job *j, const void *data, size_t n) {
    j->stdin_data = data;
    j->stdin_n = n;
}

void mt_vlm_job_set_image_opts(mt_vlm_job *j, const mt_image_opts *o) { j->iopts = *o; }

void mt_vlm_job_counts(const mt_vlm_job *j, size_t *encoded, size_t *reused) {
    *encoded = j->encoded;
    *reused = j->reused;
}

/* ---- the record's images and messages ---- */

typedef struct imglist {
    char **src;          /* copies of the record's strings */
    size_t n, cap;
} imglist;

static int img_push(imglist *l, const char *s, mt_err *err) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 8;
        char **p = realloc(l->src, nc * sizeof *p);
        if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory");
        l->src = p;
        l->cap = nc;
    }
    if (!(l->src[l->n] = strdup(s))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    l->n++;
    return MT_OK;
}

static void img_free(imglist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->src[i]);
    free(l->src);
}

/* the image a content part names, or NULL when the part is no image (*bad: an image part
 * without a usable string) */
static const char *part_image(json_t *part, int *bad) {
    *bad = 0;
    const char *type = json_string_value(json_object_get(part, "type"));
    if (!type) return NULL;
    json_t *v = NULL;
    if (!strcmp(type, "image_url") || !strcmp(type, "input_image")) {
        v = json_object_get(part, "image_url");
        if (json_is_object(v)) v = json_object_get(v, "url");
    } else if (!strcmp(type, "image")) {
        v = json_object_get(part, "image");
        if (!v) v = json_object_get(part, "url");
        if (!v) v = json_object_get(part, "path");
    } else {
        return NULL;
    }
    if (!json_is_string(v)) {
        *bad = 1;
        return NULL;
    }
    return json_string_value(v);
}

/* content of a message as a list of parts (a string becomes one text part) */
static json_t *as_parts(json_t *content) {
    if (json_is_array(content)) return json_deep_copy(content);
    json_t *a = json_array();
    if (json_is_string(content)) json_array_append_new(a, json_pack("{s:s,s:O}", "type", "text", "text", content));
    return a;
}

/* an image part of the template's messages, remembering its source until collected */
static json_t *img_part(const char *src) { return json_pack("{s:s,s:s}", "type", "image", "_src", src); }

/* Build the messages the template renders (image parts as {"type": "image"}) and collect
 * the images in the order the template meets them. */
static int build_messages(const mt_vlm_job *j, json_t *rec, json_t **msgs_out, imglist *imgs, mt_err *err) {
    *msgs_out = NULL;
    json_t *im = json_object_get(rec, "image");
    if (!im) im = json_object_get(rec, "images");
    if (im && !json_is_string(im) && !json_is_array(im))
        return mt_seterr(err, MT_EINVAL, "\"image\" must be a file name, a data URL or a list of them");
    size_t n_top = json_is_array(im) ? json_array_size(im) : im ? 1 : 0;
    json_t *top = json_array();   /* the top-level images as parts */
    for (size_t k = 0; k < n_top; k++) {
        json_t *v = json_is_array(im) ? json_array_get(im, k) : im;
        if (!json_is_string(v)) {
            json_decref(top);
            return mt_seterr(err, MT_EINVAL, "\"image\" must hold strings (file names or data URLs)");
        }
        json_array_append_new(top, img_part(json_string_value(v)));
    }
    json_t *msgs = json_object_get(rec, "messages");
    json_t *out = NULL;
    int first = j->vlm->fam->image_first, rc = MT_OK;
    if (msgs) {
        if (!json_is_array(msgs)) { json_decref(top); return mt_seterr(err, MT_EINVAL, "\"messages\" must be an array"); }
        out = json_array();
        size_t last_user = (size_t)-1;
        for (size_t i = 0; i < json_array_size(msgs); i++) {
            const char *role = json_string_value(json_object_get(json_array_get(msgs, i), "role"));
            if (role && !strcmp(role, "user")) last_user = i;
        }
        if (n_top && last_user == (size_t)-1)
            rc = mt_seterr(err, MT_EINVAL, "\"image\" given but \"messages\" has no user message to attach it to");
        for (size_t i = 0; !rc && i < json_array_size(msgs); i++) {
            json_t *m0 = json_array_get(msgs, i);
            if (!json_is_object(m0)) { rc = mt_seterr(err, MT_EINVAL, "\"messages\"[%zu] is not an object", i); break; }
            json_t *m = json_deep_copy(m0), *content = json_object_get(m, "content");
            json_array_append_new(out, m);
            if (json_is_array(content)) {
                json_t *parts = json_array();
                for (size_t k = 0; k < json_array_size(content); k++) {
                    json_t *p = json_array_get(content, k);
                    int bad = 0;
                    const char *src = json_is_object(p) ? part_image(p, &bad) : NULL;
                    if (bad) {
                        rc = mt_seterr(err, MT_EINVAL, "\"messages\"[%zu] content part %zu: an image part needs its url or "
                                       "file name as a string", i, k);
                        break;
                    }
                    json_array_append_new(parts, src ? img_part(src) : json_incref(p));
                }
                json_object_set_new(m, "content", parts);
            }
            if (!rc && i == last_user && n_top) {
                json_t *parts = as_parts(json_object_get(m, "content")), *imgp = json_deep_copy(top);
                if (first) { json_array_extend(imgp, parts); json_decref(parts); parts = imgp; }
                else { json_array_extend(parts, imgp); json_decref(imgp); }
                json_object_set_new(m, "content", parts);
            }
        }
    } else {
        json_t *p = json_object_get(rec, "prompt");
        if (!p) p = json_object_get(rec, "text");
        if (!p) rc = mt_seterr(err, MT_EINVAL, "record has no \"prompt\" or \"messages\"");
        else if (!json_is_string(p)) rc = mt_seterr(err, MT_EINVAL, "\"prompt\" must be a string");
        else {
            json_t *parts = json_deep_copy(top), *text = json_pack("{s:s,s:O}", "type", "text", "text", p);
            if (first) json_array_append_new(parts, text);
            else json_array_insert_new(parts, 0, text);
            out = json_pack("[{s:s,s:o}]", "role", "user", "content", parts);
        }
    }
    json_decref(top);
    /* collect the sources in rendering order, and drop the marks */
    for (size_t i = 0; !rc && i < json_array_size(out); i++) {
        json_t *c = json_object_get(json_array_get(out, i), "content");
        for (size_t k = 0; !rc && json_is_array(c) && k < json_array_size(c); k++) {
            json_t *p = json_array_get(c, k), *s = json_object_get(p, "_src");
            if (!s) continue;
            rc = img_push(imgs, json_string_value(s), err);
            json_object_del(p, "_src");
        }
    }
    if (rc) {
        json_decref(out);
        return rc;
    }
    *msgs_out = out;
    return MT_OK;
}

/* ---- images ---- */

static uint64_t fnv(const uint8_t *p, size_t n, uint64_t h) {
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* the image as mlx-vlm's load_image + the processor's convert_to_rgb give it
 * (mt_vlm_image_decode: a PNG's transparent colour key turns white where the reference does so) */
static int load_image(const mt_vlm_job *j, const char *src, mt_image *img, mt_err *err) {
    if (!strcmp(src, "-")) {
        if (!j->stdin_data) return mt_seterr(err, MT_EINVAL, "\"-\" names the image given on stdin, and there is none");
        return mt_vlm_image_decode(&j->proc, img, j->stdin_data, j->stdin_n, &j->iopts, err);
    }
    if (!strncmp(src, "http://", 7) || !strncmp(src, "https://", 8))
        return mt_seterr(err, MT_EUNSUPPORTED, "images are not fetched from URLs; download it and give the file");
    if (!strncmp(src, "file://", 7)) src += 7;
    int b64 = !strncmp(src, "data:", 5);
    int rc = MT_OK;
    if (!b64) {
        rc = mt_vlm_image_load(&j->proc, img, src, &j->iopts, err);
        /* a long string without a path separator that is no file: a bare base64 image */
        if (rc == MT_ENOTFOUND && strlen(src) > 256 && !strchr(src, '/')) {
            mt_clearerr(err);
            b64 = 1;
        }
    }
    if (b64) {
        uint8_t *bytes = NULL;
        size_t n = 0;
        rc = mt_base64_payload(src, strlen(src), j->iopts.max_bytes, &bytes, &n, err);
        if (!rc) rc = mt_vlm_image_decode(&j->proc, img, bytes, n, &j->iopts, err);
        free(bytes);
    }
    return rc;
}

static cached *cache_find(mt_vlm_job *j, uint64_t key, int w, int h) {
    for (size_t i = 0; i < j->nc; i++)
        if (j->c[i].key == key && j->c[i].w == w && j->c[i].h == h) {
            j->c[i].used = ++j->clock;
            return &j->c[i];
        }
    return NULL;
}

static void cache_put(mt_vlm_job *j, uint64_t key, int w, int h, const float *rows, size_t n_rows) {
    size_t bytes = n_rows * j->vlm->text_hidden * sizeof(float);
    if (!j->max_bytes || bytes > j->max_bytes) return;
    while (j->nc && j->bytes + bytes > j->max_bytes) {   /* evict the least recently used */
        size_t o = 0;
        for (size_t i = 1; i < j->nc; i++)
            if (j->c[i].used < j->c[o].used) o = i;
        j->bytes -= j->c[o].n_rows * j->vlm->text_hidden * sizeof(float);
        free(j->c[o].rows);
        j->c[o] = j->c[--j->nc];
    }
    if (j->nc == j->cap) {
        size_t nc = j->cap ? 2 * j->cap : 16;
        cached *p = realloc(j->c, nc * sizeof *p);
        if (!p) return;
        j->c = p;
        j->cap = nc;
    }
    float *copy = malloc(bytes);
    if (!copy) return;
    memcpy(copy, rows, bytes);
    j->c[j->nc++] = (cached){key, w, h, copy, n_rows, ++j->clock};
    j->bytes += bytes;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* one image: its prompt text, and its rows appended to *rows.  MT_VLM_TIMING=1 prints its tiles,
 * image tokens and load+preprocessing and encoding times on stderr (bench/vlm/run.sh). */
static int one_image(mt_vlm_job *j, const char *src, size_t idx, char **text, float **rows, size_t *nrows,
                     size_t *cap, int *grid, mt_err *err) {
    mt_image img = {0};
    mt_vlm_pixels px = {0};
    float *r = NULL;
    size_t nr = 0;
    double t0 = now_s(), t1, t2;
    int rc = load_image(j, src, &img, err);
    if (!rc) rc = mt_vlm_preprocess(&j->proc, &img, &px, err);
    t1 = t2 = now_s();
    if (!rc) rc = mt_vlm_image_text(&j->proc, &px, text, err);
    if (!rc) {   /* the merged grid (t, h, w) for M-RoPE */
        int mg = j->proc.merge > 0 ? j->proc.merge : 1;
        grid[0] = px.grid_t;
        grid[1] = px.grid_h / mg;
        grid[2] = px.grid_w / mg;
    }
    if (!rc) {
        uint64_t key = fnv(img.rgb, (size_t)img.w * (size_t)img.h * 3, 1469598103934665603ull);
        cached *c = cache_find(j, key, img.w, img.h);
        if (c) {
            r = c->rows;
            nr = c->n_rows;
            j->reused++;
        } else {
            rc = mt_vlm_encode(j->vlm, px.data, (size_t)px.n, px.h, px.w, &r, &nr, err);
            t2 = now_s();
            if (!rc) {
                j->encoded++;
                cache_put(j, key, img.w, img.h, r, nr);
            }
        }
        long want = mt_vlm_image_tokens(&j->proc, &px);
        const char *tm = getenv("MT_VLM_TIMING");
        if (!rc && tm && *tm && strcmp(tm, "0"))
            fprintf(stderr, "mlx-vlm: image %zu: %d tiles of %dx%d, %zu tokens, loaded+preprocessed %.3f s, encoded %.3f s%s\n",
                    idx + 1, px.n, px.w, px.h, nr, t1 - t0, t2 - t1, c ? " (cached)" : "");
        if (!rc && want != (long)nr)
            rc = mt_seterr(err, MT_EFORMAT, "the processor gives %ld image tokens, the model %zu rows", want, nr);
        size_t H = j->vlm->text_hidden;
        if (!rc && *nrows + nr > *cap) {
            size_t nc = (*nrows + nr) * 2;
            float *p = realloc(*rows, nc * H * sizeof *p);
            if (!p) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
            else { *rows = p; *cap = nc; }
        }
        if (!rc) {
            memcpy(*rows + *nrows * H, r, nr * H * sizeof *r);
            *nrows += nr;
        }
        if (!c) free(r);
    }
    mt_vlm_pixels_free(&px);
    mt_image_clear(&img);
    if (rc) {
        const char *name = strncmp(src, "data:", 5) && strlen(src) < 200 ? src : "inline data";
        mt_preferr(err, "image %zu (%s)", idx + 1, name);
    }
    return rc;
}

/* M-RoPE positions as mlx-vlm's get_rope_index (qwen2_vl/language.py) gives them for one
 * sequence: text runs t = h = w = running index; the k-th image (counted as a <|vision_start|>
 * followed by the image token), from the first image token at or after the previous image's
 * end, gets t = s + ti, h = s + row, w = s + col over its merged grid (grids[3k..3k+2]),
 * s = (max position so far) + 1; text after it resumes at max + 1.  pos[3 * i + axis];
 * *delta = max + 1 - n (mlx-vlm's rope_deltas). */
static void mrope_positions(const mt_vlm *v, const int32_t *ids, size_t n, const int *grids, size_t ngrid,
                            int32_t *pos, long *delta) {
    size_t nimg = 0;
    for (size_t i = 0; i + 1 < n; i++) nimg += ids[i] == v->vision_start_id && ids[i + 1] == v->image_token_id;
    if (nimg > ngrid) nimg = ngrid;
    size_t st = 0;
    long next = 0;   /* the next text position: max + 1 */
    for (size_t k = 0; k < nimg; k++) {
        size_t ed = st;
        while (ed < n && ids[ed] != v->image_token_id) ed++;
        if (ed >= n) break;   /* no image token left (mlx-vlm's list.index would raise) */
        for (size_t i = st; i < ed; i++, next++) pos[3 * i] = pos[3 * i + 1] = pos[3 * i + 2] = (int32_t)next;
        const int *g = grids + 3 * k;
        long s0 = next, gm = g[0];
        gm = g[1] > gm ? g[1] : gm;
        gm = g[2] > gm ? g[2] : gm;
        size_t cnt = (size_t)g[0] * (size_t)g[1] * (size_t)g[2], i = ed;
        for (int t = 0; t < g[0]; t++)
            for (int y = 0; y < g[1]; y++)
                for (int x = 0; x < g[2] && i < n; x++, i++) {
                    pos[3 * i] = (int32_t)(s0 + t);
                    pos[3 * i + 1] = (int32_t)(s0 + y);
                    pos[3 * i + 2] = (int32_t)(s0 + x);
                }
        next = s0 + (gm > 0 ? gm : 1);
        st = ed + cnt;
    }
    for (size_t i = st; i < n; i++, next++) pos[3 * i] = pos[3 * i + 1] = pos[3 * i + 2] = (int32_t)next;
    *delta = next - (long)n;
}

/* mlx-vlm's PROMPT_WITH_IMAGE_TOKEN prompt (PaliGemma): no chat template, the placeholder once
 * per image, then the text of the last message (its text parts joined by " ", stripped, as
 * extract_text_from_content does) or of "prompt". */
static int image_token_prompt(const mt_vlm_job *j, json_t *rec, json_t *msgs, size_t n_images, char **out,
                              mt_err *err) {
    mt_buf b = {0};
    for (size_t i = 0; i < n_images; i++) mt_buf_str(&b, j->vlm->fam->placeholder);
    json_t *p = json_object_get(rec, "prompt");
    if (!p) p = json_object_get(rec, "text");
    if (json_is_string(p)) {
        mt_buf_str(&b, json_string_value(p));
    } else {
        json_t *c = json_object_get(json_array_get(msgs, json_array_size(msgs) - 1), "content");
        if (json_is_string(c)) {
            mt_buf_str(&b, json_string_value(c));
        } else {
            mt_buf t = {0};
            for (size_t k = 0; k < json_array_size(c); k++) {
                json_t *part = json_array_get(c, k);
                const char *ty = json_string_value(json_object_get(part, "type"));
                if (!ty || (strcmp(ty, "text") && strcmp(ty, "input_text") && strcmp(ty, "output_text"))) continue;
                const char *s = json_string_value(json_object_get(part, "text"));
                if (!s || !*s) s = json_string_value(json_object_get(part, "content"));
                if (!s || !*s) continue;
                if (t.n) mt_buf_str(&t, " ");
                mt_buf_str(&t, s);
            }
            const char *s = t.p ? t.p : "", *e = s + t.n;   /* Python's str.strip() of ASCII whitespace */
            while (s < e && strchr(" \t\n\r\f\v", *s)) s++;
            while (e > s && strchr(" \t\n\r\f\v", e[-1])) e--;
            mt_buf_put(&b, s, (size_t)(e - s));
            mt_buf_free(&t);
        }
    }
    mt_buf_put(&b, "", 1);
    if (b.oom) {
        mt_buf_free(&b);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    *out = b.p;
    return MT_OK;
}

/* PaliGemmaProcessor: the bos token right after the last image token, "\n" at the end */
static int image_token_finish(const mt_vlm_job *j, const mt_prompter *pr, char **full, mt_err *err) {
    const char *bos = pr->bos_token;
    if (!bos && pr->bos_id >= 0) bos = mt_tokenizer_id_to_token(pr->tok, pr->bos_id);
    if (!bos) return mt_seterr(err, MT_EFORMAT, "the tokenizer has no bos token (the PaliGemma prompt needs one)");
    const char *tok = j->vlm->fam->placeholder, *last = NULL;
    for (const char *s = *full; tok && *tok && (s = strstr(s, tok)); s++) last = s;
    size_t at = last ? (size_t)(last - *full) + strlen(tok) : 0;
    mt_buf b = {0};
    mt_buf_put(&b, *full, at);
    mt_buf_str(&b, bos);
    mt_buf_str(&b, *full + at);
    mt_buf_put(&b, "\n", 2);
    if (b.oom) {
        mt_buf_free(&b);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    free(*full);
    *full = b.p;
    return MT_OK;
}

int mt_vlm_job_record(void *user, const mt_prompter *pr, json_t *rec, int agp, int32_t **ids, size_t *n,
                      mt_embed_inject **inj, mt_err *err) {
    mt_vlm_job *j = user;
    *ids = NULL;
    *n = 0;
    *inj = NULL;
    imglist imgs = {0};
    json_t *msgs = NULL;
    char *text = NULL, *full = NULL;
    float *rows = NULL;
    int *grids = NULL;
    size_t nrows = 0, cap = 0, len = 0;
    int rc = build_messages(j, rec, &msgs, &imgs, err);
    if (!rc && imgs.n && !(grids = calloc(3 * imgs.n, sizeof *grids))) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!rc && j->vlm->image_token_prompt && imgs.n > 1)
        rc = mt_seterr(err, MT_EINVAL, "%s takes one image per prompt in mlx-vlm (this record has %zu)",
                       j->vlm->model_type, imgs.n);
    if (!rc && j->vlm->image_token_prompt) {
        rc = image_token_prompt(j, rec, msgs, imgs.n, &text, err);
    } else if (!rc) {
        json_t *r2 = json_deep_copy(rec);
        json_object_del(r2, "prompt");
        json_object_del(r2, "text");
        json_object_set(r2, "messages", msgs);
        int add_special = 0;
        rc = mt_prompter_render(pr, r2, agp, -1, &text, &len, &add_special, err);
        json_decref(r2);
    }
    /* each placeholder, in order, becomes its image's text */
    mt_buf b = {0};
    const char *ph = j->vlm->fam->placeholder;
    size_t pl = strlen(ph), k = 0;
    for (const char *s = text; !rc && s;) {
        const char *hit = strstr(s, ph);
        if (!hit) {
            mt_buf_str(&b, s);
            break;
        }
        mt_buf_put(&b, s, (size_t)(hit - s));
        if (k >= imgs.n) {
            rc = mt_seterr(err, MT_EINVAL, "the prompt has more image places (%s) than the record's %zu images", ph, imgs.n);
            break;
        }
        char *it = NULL;
        rc = one_image(j, imgs.src[k], k, &it, &rows, &nrows, &cap, grids + 3 * k, err);
        if (!rc) mt_buf_str(&b, it);
        free(it);
        k++;
        s = hit + pl;
    }
    if (!rc && k < imgs.n)
        rc = mt_seterr(err, MT_EINVAL, "the record has %zu images but the prompt places %zu (the chat template "
                       "writes %s for each image part)", imgs.n, k, ph);
    mt_buf_put(&b, "", 1);
    if (!rc && b.oom) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!rc) full = b.p, b.p = NULL;
    mt_buf_free(&b);
    if (!rc && j->vlm->image_token_prompt) rc = image_token_finish(j, pr, &full, err);
    if (!rc) rc = mt_tokenizer_encode(pr->tok, full, strlen(full), j->vlm->add_special, ids, n, err);
    if (!rc && nrows) {
        /* one block: the struct, the rows, then (M-RoPE models) the prompt's positions */
        const int *ms = j->vlm->lm->mrope;
        size_t H = j->vlm->text_hidden, np = ms[0] || ms[1] || ms[2] ? *n : 0;
        mt_embed_inject *x = malloc(sizeof *x + nrows * H * sizeof(float) + 3 * np * sizeof(int32_t));
        if (!x) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        else {
            float *dst = (float *)(x + 1);
            memcpy(dst, rows, nrows * H * sizeof(float));
            *x = (mt_embed_inject){j->vlm->image_token_id, dst, nrows, 0, NULL, 0, 0};
            if (np) {
                int32_t *pos = (int32_t *)(dst + nrows * H);
                mrope_positions(j->vlm, *ids, np, grids, imgs.n, pos, &x->rope_delta);
                x->pos3 = pos;
                x->n_pos = np;
            }
            *inj = x;
        }
    }
    if (rc) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    free(rows);
    free(grids);
    free(full);
    free(text);
    img_free(&imgs);
    json_decref(msgs);
    return rc;
}
