/* config.c - config.json access and MLX quantization rules. */
#include "io/config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"

#define MT_CONFIG_MAX (64u << 20)

struct mt_config {
    json_t *root;
    char *label;
};

void mt_config_free(mt_config *c) {
    if (!c) return;
    json_decref(c->root);
    free(c->label);
    free(c);
}

int mt_config_parse(mt_config **out, const char *text, size_t len, const char *label, mt_err *err) {
    *out = NULL;
    if (!label) label = "config.json";
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!root) return mt_seterr(err, MT_EFORMAT, "%s: invalid JSON at line %d: %s", label, je.line, je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return mt_seterr(err, MT_EFORMAT, "%s: not a JSON object", label);
    }
    mt_config *c = calloc(1, sizeof *c);
    if (!c || !(c->label = strdup(label))) {
        free(c);
        json_decref(root);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    c->root = root;
    *out = c;
    return MT_OK;
}

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
    json_t *ov = path ? json_object_get(blk, path) : NULL;
    /* the reserved top-level keys are never module paths */
    if (path && (!strcmp(path, "group_size") || !strcmp(path, "bits") || !strcmp(path, "mode"))) ov = NULL;
    mt_quant_params p;
    if (ov && json_is_false(ov)) return MT_OK;
    if (ov && json_is_object(ov)) {
        char where[320];
        snprintf(where, sizeof where, "quantization['%.256s']", path);
        MT_TRY(quant_params_of(c, ov, where, MT_QMODE_AFFINE, &p, err));
    } else if (ov && !json_is_true(ov) && !json_is_null(ov)) {
        return mt_seterr(err, MT_EFORMAT, "%s: quantization['%.256s'] must be an object or false", c->label, path);
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
