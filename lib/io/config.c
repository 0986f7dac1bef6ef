/* config.c - config.json access and MLX quantization rules. */
#include "io/config.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"

#define MT_CONFIG_MAX (64u << 20)

struct mt_config {
    json_t *root;
    char *label;
    char *nan_key;   /* dotted path of the first NaN of the file, or NULL */
};

void mt_config_free(mt_config *c) {
    if (!c) return;
    json_decref(c->root);
    free(c->label);
    free(c->nan_key);
    free(c);
}

/* What NaN becomes in the second parse that finds where the NaNs were. */
#define NAN_MARK "@NaN@"

/* Python's json module writes NaN, Infinity and -Infinity, which are not JSON.
 * Outside strings, rewrite them to +-DBL_MAX and NaN to nan_rep ("null").
 * Returns a malloc'd, NUL-terminated copy, or NULL when there was nothing to
 * rewrite (or no memory); *had_nan tells whether a NaN was rewritten. */
static char *rewrite_nonfinite(const char *t, size_t n, const char *nan_rep, int *had_nan) {
    const struct { const char *tok, *rep; } subs[] = {
        {"-Infinity", "-1.7976931348623157e308"}, {"Infinity", "1.7976931348623157e308"}, {"NaN", nan_rep}};
    char *o = malloc(3 * n + 1);   /* every replacement grows its token by less than 3x */
    if (!o) return NULL;
    size_t w = 0;
    int in_str = 0, changed = 0;
    *had_nan = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = t[i];
        if (in_str) {
            o[w++] = ch;
            if (ch == '\\' && i + 1 < n) o[w++] = t[++i];
            else if (ch == '"') in_str = 0;
            continue;
        }
        if (ch == '"') in_str = 1;
        int k;
        for (k = 0; k < 3; k++) {
            size_t tl = strlen(subs[k].tok), rl = strlen(subs[k].rep);
            if (i + tl <= n && memcmp(t + i, subs[k].tok, tl) == 0) {
                memcpy(o + w, subs[k].rep, rl);
                w += rl;
                i += tl - 1;
                changed = 1;
                if (k == 2) *had_nan = 1;
                break;
            }
        }
        if (k == 3) o[w++] = ch;
    }
    o[w] = 0;
    if (!changed) { free(o); return NULL; }
    return o;
}

/* After a JSON_DECODE_INT_AS_REAL parse: turn integral reals back into integers. */
static void reintegerize(json_t *j) {
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_object(j)) {
        json_object_foreach(j, k, v) {
            if (json_is_real(v)) {
                double d = json_real_value(v);
                if (d == floor(d) && fabs(d) < 9.0e15) json_object_set_new(j, k, json_integer((json_int_t)d));
            } else {
                reintegerize(v);
            }
        }
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) {
            if (json_is_real(v)) {
                double d = json_real_value(v);
                if (d == floor(d) && fabs(d) < 9.0e15) json_array_set_new(j, i, json_integer((json_int_t)d));
            } else {
                reintegerize(v);
            }
        }
    }
}

/* Walk the document (a) and its parse with NaN written as NAN_MARK (b) side by side:
 * the first node null in a and the mark in b was a NaN.  Its dotted path goes to
 * path[0..cap); returns 1 when found. */
static int find_nan(json_t *a, json_t *b, char *path, size_t len, size_t cap) {
    if (json_is_null(a) && json_is_string(b) && !strcmp(json_string_value(b), NAN_MARK)) return 1;
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_object(a) && json_is_object(b)) {
        json_object_foreach(a, k, v) {
            int n = snprintf(path + len, cap - len, "%s%s", len ? "." : "", k);
            size_t nl = n < 0 ? len : len + (size_t)n >= cap ? cap - 1 : len + (size_t)n;
            if (find_nan(v, json_object_get(b, k), path, nl, cap)) return 1;
            path[len] = 0;
        }
    } else if (json_is_array(a) && json_is_array(b)) {
        json_array_foreach(a, i, v) {
            int n = snprintf(path + len, cap - len, "%s%zu", len ? "." : "", i);
            size_t nl = n < 0 ? len : len + (size_t)n >= cap ? cap - 1 : len + (size_t)n;
            if (find_nan(v, json_array_get(b, i), path, nl, cap)) return 1;
            path[len] = 0;
        }
    }
    return 0;
}

/* transformers >= 5 tags non-finite floats so config.json stays JSON: {"__float__": "Infinity"}
 * (mlx-lm undoes it on load).  The value such an object stands for: +-DBL_MAX for +-Infinity (as
 * for Python's bare Infinity above), null for NaN (*nan set); NULL when v is no such tag. */
static json_t *float_tag(json_t *v, int *nan) {
    if (!json_is_object(v) || json_object_size(v) != 1) return NULL;
    const char *s = json_string_value(json_object_get(v, "__float__"));
    if (!s) return NULL;
    if (!strcmp(s, "Infinity")) return json_real(DBL_MAX);
    if (!strcmp(s, "-Infinity")) return json_real(-DBL_MAX);
    if (!strcmp(s, "NaN")) { *nan = 1; return json_null(); }
    return NULL;
}

/* Replace every tagged float under v (path: its key path so far, for the first NaN's *nan_key). */
static void untag_floats(json_t *v, char *path, size_t len, size_t cap, char **nan_key) {
    const char *k;
    json_t *c, *r;
    void *tmp;
    size_t i;
    int nan = 0;
    if (json_is_object(v)) {
        json_object_foreach_safe(v, tmp, k, c) {
            int n = snprintf(path + len, cap - len, "%s%s", len ? "." : "", k);
            size_t nl = n < 0 ? len : len + (size_t)n >= cap ? cap - 1 : len + (size_t)n;
            if ((r = float_tag(c, &nan))) {
                if (nan && !*nan_key) *nan_key = strdup(path);
                json_object_set_new(v, k, r);
            } else {
                untag_floats(c, path, nl, cap, nan_key);
            }
            path[len] = 0;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, c) {
            int n = snprintf(path + len, cap - len, "%s%zu", len ? "." : "", i);
            size_t nl = n < 0 ? len : len + (size_t)n >= cap ? cap - 1 : len + (size_t)n;
            if ((r = float_tag(c, &nan))) {
                if (nan && !*nan_key) *nan_key = strdup(path);
                json_array_set_new(v, i, r);
            } else {
                untag_floats(c, path, nl, cap, nan_key);
            }
            path[len] = 0;
        }
    }
}

int mt_config_parse(mt_config **out, const char *text, size_t len, const char *label, mt_err *err) {
    *out = NULL;
    if (!label) label = "config.json";
    json_error_t je;
    const size_t flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY;
    json_t *root = json_loadb(text, len, flags, &je);
    char *nan_key = NULL;
    if (!root) {
        /* lenient retry for what Python's json writes: NaN/Infinity, integers beyond 64 bits */
        json_error_t je2;
        int had_nan = 0;
        char *fixed = rewrite_nonfinite(text, len, "null", &had_nan);
        const char *t2 = fixed ? fixed : text;
        size_t n2 = fixed ? strlen(fixed) : len;
        size_t used = flags;
        if (fixed || strstr(je.text, "too big")) {
            root = json_loadb(t2, n2, flags, &je2);
            if (!root && strstr(je2.text, "too big")) {
                used = flags | JSON_DECODE_INT_AS_REAL;
                root = json_loadb(t2, n2, used, &je2);
                if (root) reintegerize(root);
            }
        }
        free(fixed);
        if (!root) return mt_seterr(err, MT_EFORMAT, "%s: invalid JSON at line %d: %s", label, je.line, je.text);
        if (had_nan) {   /* where were the NaNs?  parse once more with NaN as a mark */
            char *marked = rewrite_nonfinite(text, len, "\"" NAN_MARK "\"", &had_nan);
            json_t *mroot = marked ? json_loadb(marked, strlen(marked), used, &je2) : NULL;
            char path[256] = "";
            if (!mroot || !find_nan(root, mroot, path, 0, sizeof path)) snprintf(path, sizeof path, "?");
            nan_key = strdup(path);
            json_decref(mroot);
            free(marked);
            if (!nan_key) {
                json_decref(root);
                return mt_seterr(err, MT_ENOMEM, "out of memory");
            }
        }
    }
    if (!json_is_object(root)) {
        json_decref(root);
        free(nan_key);
        return mt_seterr(err, MT_EFORMAT, "%s: not a JSON object", label);
    }
    char tpath[256] = "";
    untag_floats(root, tpath, 0, sizeof tpath, &nan_key);
    mt_config *c = calloc(1, sizeof *c);
    if (!c || !(c->label = strdup(label))) {
        free(c);
        free(nan_key);
        json_decref(root);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    c->root = root;
    c->nan_key = nan_key;
    *out = c;
    return MT_OK;
}

const char *mt_config_nan_key(const mt_config *c) { return c ? c->nan_key : NULL; }

int mt_config_load(mt_config **out, const char *dir_or_file, mt_err *err) {
    *out = NULL;
    char *path = mt_is_dir(dir_or_file) ? mt_path_join(dir_or_file, "config.json") : strdup(dir_or_file);
    if (!path) return mt_seterr(err, MT_ENOMEM, "out of memory");
    char *text = NULL;
    size_t len = 0;
    int rc = mt_read_file_max(path, MT_CONFIG_MAX, &text, &len, err);
    if (!rc) rc = mt_config_parse(out, text, len, path, err);
    free(text);
    free(path);
    return rc;
}

json_t *mt_config_json(const mt_config *c) { return c ? c->root : NULL; }

const char *mt_config_model_type(const mt_config *c) {
    return c ? json_string_value(json_object_get(c->root, "model_type")) : NULL;
}

json_t *mt_config_get(const mt_config *c, const char *key) {
    if (!c || !key) return NULL;
    json_t *v = json_object_get(c->root, key);
    if (v || !strchr(key, '.')) return v;
    v = c->root;
    const char *p = key;
    char part[256];
    while (v && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n == 0 || n >= sizeof part) return NULL;
        memcpy(part, p, n);
        part[n] = 0;
        if (json_is_object(v)) {
            v = json_object_get(v, part);
        } else if (json_is_array(v)) {
            char *end;
            errno = 0;
            unsigned long idx = strtoul(part, &end, 10);
            if (*end || errno || part[0] < '0' || part[0] > '9') return NULL;
            v = json_array_get(v, idx);
        } else {
            return NULL;
        }
        p = dot ? dot + 1 : p + n;
    }
    return v;
}

int mt_config_get_int(const mt_config *c, const char *key, long long def, long long *out, mt_err *err) {
    json_t *v = mt_config_get(c, key);
    if (!v || json_is_null(v)) { *out = def; return MT_OK; }
    if (json_is_integer(v)) { *out = (long long)json_integer_value(v); return MT_OK; }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 9.0e15) { *out = (long long)d; return MT_OK; }
    }
    return mt_seterr(err, MT_EFORMAT, "%s: '%s' must be an integer", c->label, key);
}

int mt_config_get_int_in(const mt_config *c, const char *key, long long def, long long lo, long long hi, int *out,
                         mt_err *err) {
    long long v = def;
    MT_TRY(mt_config_get_int(c, key, def, &v, err));
    if (v < lo || v > hi)
        return mt_seterr(err, MT_EFORMAT, "config.json: '%s' = %lld is out of range (%lld..%lld)", key, v, lo, hi);
    *out = (int)v;
    return MT_OK;
}

int mt_config_get_float(const mt_config *c, const char *key, double def, double *out, mt_err *err) {
    json_t *v = mt_config_get(c, key);
    if (!v || json_is_null(v)) { *out = def; return MT_OK; }
    if (json_is_number(v)) { *out = json_number_value(v); return MT_OK; }
    return mt_seterr(err, MT_EFORMAT, "%s: '%s' must be a number", c->label, key);
}

int mt_config_get_bool(const mt_config *c, const char *key, int def, int *out, mt_err *err) {
    json_t *v = mt_config_get(c, key);
    if (!v || json_is_null(v)) { *out = def; return MT_OK; }
    if (json_is_boolean(v)) { *out = json_is_true(v); return MT_OK; }
    if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
        *out = (int)json_integer_value(v);
        return MT_OK;
    }
    return mt_seterr(err, MT_EFORMAT, "%s: '%s' must be true or false", c->label, key);
}

const char *mt_config_get_str(const mt_config *c, const char *key, const char *def) {
    const char *s = json_string_value(mt_config_get(c, key));
    return s ? s : def;
}

/* ---- quantization ------------------------------------------------------- */

/* Find the block; *blk = NULL when there is none. */
static int quant_block(const mt_config *c, json_t **blk, mt_err *err) {
    *blk = NULL;
    json_t *q = json_object_get(c->root, "quantization");
    if (json_is_object(q)) { *blk = q; return MT_OK; }
    q = json_object_get(c->root, "quantization_config");
    if (!json_is_object(q)) q = json_object_get(json_object_get(c->root, "text_config"), "quantization_config");
    if (!json_is_object(q)) return MT_OK;
    json_t *qm = json_object_get(q, "quant_method");
    if (qm && !json_is_null(qm)) {
        const char *m = json_string_value(qm);
        if (m && strcmp(m, "mxfp4") == 0) { *blk = q; return MT_OK; }
        if (m && strcmp(m, "bitnet") == 0) return MT_OK;   /* ternary weights: the bitnet family binds them */
        return mt_seterr(err, MT_EUNSUPPORTED, "%s: quantization_config.quant_method '%.40s' is not an MLX format",
                         c->label, m ? m : "?");
    }
    *blk = q;
    return MT_OK;
}

/* Read group_size/bits/mode from an object; mode defaults to def_mode. */
static int quant_params_of(const mt_config *c, json_t *o, const char *where, int def_mode, mt_quant_params *qp,
                           mt_err *err) {
    int mode = def_mode;
    json_t *jm = json_object_get(o, "mode");
    if (!jm) {
        const char *m = json_string_value(json_object_get(o, "quant_method"));
        if (m && strcmp(m, "mxfp4") == 0) mode = MT_QMODE_MXFP4;
    } else if (!json_is_null(jm)) {
        if (mt_qmode_parse(json_string_value(jm), &mode) != MT_OK)
            return mt_seterr(err, MT_EUNSUPPORTED, "%s: %s: unknown quantization mode '%.40s'", c->label, where,
                             json_is_string(jm) ? json_string_value(jm) : "(not a string)");
    }
    int vals[2];
    static const char *const keys[2] = {"group_size", "bits"};
    for (int k = 0; k < 2; k++) {
        json_t *v = json_object_get(o, keys[k]);
        if (!v || json_is_null(v)) {
            vals[k] = k == 0 ? mt_qmode_default_group_size(mode) : mt_qmode_default_bits(mode);
        } else if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) <= 1024) {
            vals[k] = (int)json_integer_value(v);
        } else {
            return mt_seterr(err, MT_EFORMAT, "%s: %s: '%s' must be a positive integer", c->label, where, keys[k]);
        }
    }
    qp->group_size = vals[0];
    qp->bits = vals[1];
    qp->mode = mode;
    int rc = mt_quant_params_check(qp, err);
    if (rc) mt_preferr(err, "%s: %s", c->label, where);
    return rc;
}

int mt_config_quant_default(const mt_config *c, int *quantized, mt_quant_params *qp, mt_err *err) {
    *quantized = 0;
    json_t *blk;
    MT_TRY(quant_block(c, &blk, err));
    if (!blk) return MT_OK;
    mt_quant_params p;
    MT_TRY(quant_params_of(c, blk, "quantization", MT_QMODE_AFFINE, &p, err));
    *qp = p;
    *quantized = 1;
    return MT_OK;
}

int mt_config_quant_for(const mt_config *c, const mt_safetensors *st, const char *path, int *quantized,
                        mt_quant_params *qp, mt_err *err) {
    *quantized = 0;
    json_t *blk;
    MT_TRY(quant_block(c, &blk, err));
    if (!blk) return MT_OK;
    char ren[1024];   /* per-module keys name the checkpoint's modules (a family's renames) */
    const char *key = path && st ? mt_safetensors_renamed(st, path, ren, sizeof ren) : path;
    json_t *ov = key ? json_object_get(blk, key) : NULL;
    /* the reserved top-level keys are never module paths */
    if (path && (!strcmp(path, "group_size") || !strcmp(path, "bits") || !strcmp(path, "mode"))) ov = NULL;
    mt_quant_params p;
    if (ov && json_is_false(ov)) return MT_OK;
    if (ov && json_is_object(ov)) {
        char where[320];
        snprintf(where, sizeof where, "quantization['%.256s']", key);
        MT_TRY(quant_params_of(c, ov, where, MT_QMODE_AFFINE, &p, err));
    } else if (ov && !json_is_true(ov) && !json_is_null(ov)) {
        return mt_seterr(err, MT_EFORMAT, "%s: quantization['%.256s'] must be an object or false", c->label, key);
    } else {
        MT_TRY(quant_params_of(c, blk, "quantization", MT_QMODE_AFFINE, &p, err));
    }
    if (st) {
        char name[1024];
        int n = snprintf(name, sizeof name, "%s.scales", path ? path : "");
        if (n < 0 || (size_t)n >= sizeof name || !mt_safetensors_get(st, name)) return MT_OK;
    }
    *qp = p;
    *quantized = 1;
    return MT_OK;
}
