/* safetensors.c - validated, memory-mapped safetensors reader (single files,
 * sharded model directories, in-memory images). */
#include "io/safetensors.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"

/* ---- header parsing ---------------------------------------------------- */

typedef struct { uint64_t begin, end; size_t idx; } span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Non-negative JSON integer -> *v; 0 if not one. */
static int get_u64(const json_t *j, uint64_t *v) {
    if (!json_is_integer(j) || json_integer_value(j) < 0) return 0;
    *v = (uint64_t)json_integer_value(j);
    return 1;
}

size_t mt_tensor_numel(const mt_tensor_view *t) {
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

int mt_safetensors_parse_header(const void *buf, size_t n, const char *label, mt_tensor_view **tensors,
                                size_t *count, json_t **metadata, mt_err *err) {
    const unsigned char *b = buf;
    *tensors = NULL;
    *count = 0;
    if (metadata) *metadata = NULL;
    if (!label) label = "safetensors";
    if (n < 8) return mt_seterr(err, MT_EFORMAT, "%s: file too short (%zu bytes) for a safetensors header", label, n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | b[i];
    if (hlen > n - 8)
        return mt_seterr(err, MT_EFORMAT, "%s: header length %llu exceeds the file size (%zu bytes)", label,
                         (unsigned long long)hlen, n);
    if (hlen > MT_ST_MAX_HEADER)
        return mt_seterr(err, MT_ELIMIT, "%s: header length %llu exceeds the limit of %u bytes", label,
                         (unsigned long long)hlen, MT_ST_MAX_HEADER);
    if (hlen < 2) return mt_seterr(err, MT_EFORMAT, "%s: empty safetensors header", label);
    const unsigned char *data = b + 8 + hlen;
    uint64_t dsize = n - 8 - hlen;

    json_error_t je;
    json_t *root = json_loadb((const char *)b + 8, (size_t)hlen, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!root) return mt_seterr(err, MT_EFORMAT, "%s: invalid JSON header: %s", label, je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return mt_seterr(err, MT_EFORMAT, "%s: header is not a JSON object", label);
    }

    int rc = MT_OK;
    size_t nt = 0, namebytes = 0;
    const char *key;
    json_t *val;
    json_t *meta = json_object_get(root, "__metadata__");
    if (meta && !json_is_null(meta)) {
        if (!json_is_object(meta)) {
            rc = mt_seterr(err, MT_EFORMAT, "%s: __metadata__ is not an object", label);
            goto done;
        }
        const char *mk;
        json_t *mv;
        json_object_foreach(meta, mk, mv) {
            if (!json_is_string(mv)) {
                rc = mt_seterr(err, MT_EFORMAT, "%s: __metadata__ value '%s' is not a string", label, mk);
                goto done;
            }
        }
    }
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) continue;
        nt++;
        namebytes += strlen(key) + 1;
    }
    size_t total = nt * sizeof(mt_tensor_view) + namebytes;
    mt_tensor_view *tv = malloc(total ? total : 1);
    span *sp = malloc((nt ? nt : 1) * sizeof(span));
    if (!tv || !sp) {
        free(tv); free(sp);
        rc = mt_seterr(err, MT_ENOMEM, "%s: out of memory", label);
        goto done;
    }
    char *names = (char *)(tv + nt);
    size_t i = 0;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) continue;
        mt_tensor_view *t = &tv[i];
        memset(t, 0, sizeof *t);
        size_t kl = strlen(key) + 1;
        memcpy(names, key, kl);
        t->name = names;
        names += kl;
        if (!json_is_object(val)) { rc = mt_seterr(err, MT_EFORMAT, "%s: tensor '%s': entry is not an object", label, key); break; }
        json_t *jd = json_object_get(val, "dtype"), *js = json_object_get(val, "shape"),
               *jo = json_object_get(val, "data_offsets");
        if (!json_is_string(jd)) { rc = mt_seterr(err, MT_EFORMAT, "%s: tensor '%s': missing or non-string dtype", label, key); break; }
        if (mt_dtype_parse(json_string_value(jd), &t->dtype) != MT_OK) {
            rc = mt_seterr(err, MT_EFORMAT, "%s: tensor '%s': unknown dtype '%.32s'", label, key, json_string_value(jd));
            break;
        }
        if (!json_is_array(js)) { rc = mt_seterr(err, MT_EFORMAT, "%s: tensor '%s': missing or non-array shape", label, key); break; }
        if (json_array_size(js) > MT_ST_MAX_NDIM) {
            rc = mt_seterr(err, MT_EFORMAT, "%s: tensor '%s': %zu dimensions (at most %d supported)", label, key,
                           json_array_size(js), MT_ST_MAX_NDIM);
            break;
        }
        t->ndim = (int)json_array_size(js);
        uint64_t numel = 1;
        int bad = 0;
        for (int d = 0; d < t->ndim; d++) {
            uint64_t v;
            if (!get_u64(json_array_get(js, (size_t)d), &v)) { bad = 1; break; }
            t->shape[d] = (int64_t)v;
            if (__builtin_mul_overflow(numel, v, &numel)) bad = 2;
        }
        if (bad == 1) { rc = mt_seterr(err, MT_EFORMAT, "%s: tensor '%s': shape must hold non-negative integers", label, key); break; }
        uint64_t nbytes, begin, end;
        if (bad == 2 || __builtin_mul_overflow(numel, (uint64_t)mt_dtype_size(t->dtype), &nbytes)) {
            rc = mt_seterr(err, MT_EFORMAT, "%s: tensor '%s': shape too large", label, key);
            break;
        }
        if (!json_is_array(jo) || json_array_size(jo) != 2 || !get_u64(json_array_get(jo, 0), &begin) ||
            !get_u64(json_array_get(jo, 1), &end)) {
            rc = mt_seterr(err, MT_EFORMAT, "%s: tensor '%s': data_offsets must be [begin, end] non-negative integers", label, key);
            break;
        }
        if (begin > end) { rc = mt_seterr(err, MT_EFORMAT, "%s: tensor '%s': data_offsets begin > end", label, key); break; }
        if (end > dsize) { rc = mt_seterr(err, MT_EFORMAT, "%s: tensor '%s': data_offsets beyond end of file", label, key); break; }
        if (end - begin != nbytes) {
            rc = mt_seterr(err, MT_EFORMAT, "%s: tensor '%s': %llu data bytes but shape and dtype %s need %llu", label, key,
                           (unsigned long long)(end - begin), mt_dtype_name(t->dtype), (unsigned long long)nbytes);
            break;
        }
        t->data = data + begin;
        t->nbytes = (size_t)nbytes;
        sp[i].begin = begin; sp[i].end = end; sp[i].idx = i;
        i++;
    }
    if (!rc && nt > 1) {
        qsort(sp, nt, sizeof *sp, span_cmp);
        for (size_t k = 1; k < nt; k++)
            if (sp[k - 1].end > sp[k].begin) {
                rc = mt_seterr(err, MT_EFORMAT, "%s: tensor '%s': data overlaps tensor '%s'", label, tv[sp[k].idx].name,
                               tv[sp[k - 1].idx].name);
                break;
            }
    }
    free(sp);
    if (rc) { free(tv); goto done; }
    *tensors = tv;
    *count = nt;
    if (metadata && meta && json_is_object(meta)) *metadata = json_incref(meta);
done:
    json_decref(root);
    return rc;
}

/* ---- container ---------------------------------------------------------- */

typedef struct st_file {
    char *path;
    mt_mmap map;            /* data == NULL for borrowed in-memory images */
    mt_tensor_view *views;
    size_t count;
    json_t *meta;
} st_file;

struct mt_safetensors {
    st_file *files;
    size_t nfiles;
    const mt_tensor_view **all;
    size_t *owner;          /* file index of all[i] */
    size_t count;
    uint32_t *hash;         /* index+1 into all, 0 = empty; hcap slots (power of 2) */
    size_t hcap;
    char strip[64], prefix[64];   /* names asked for: strip removed, prefix prepended (mt_safetensors_set_prefix) */
    const char *const *renames;   /* {from, to, ..., NULL} applied before (mt_safetensors_set_renames) */
};

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void mt_safetensors_free(mt_safetensors *st) {
    if (!st) return;
    for (size_t i = 0; i < st->nfiles; i++) {
        st_file *f = &st->files[i];
        free(f->path);
        free(f->views);
        json_decref(f->meta);
        mt_mmap_close(&f->map);
    }
    free(st->files);
    free(st->all);
    free(st->owner);
    free(st->hash);
    free(st);
}

static mt_safetensors *st_new(size_t nfiles) {
    mt_safetensors *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->files = calloc(nfiles ? nfiles : 1, sizeof *st->files);
    if (!st->files) { free(st); return NULL; }
    return st;
}

/* Parse file slot fi from buf (already mapped or borrowed). */
static int st_load_slot(mt_safetensors *st, size_t fi, const void *buf, size_t n, mt_err *err) {
    st_file *f = &st->files[fi];
    return mt_safetensors_parse_header(buf, n, f->path, &f->views, &f->count, &f->meta, err);
}

/* Build the merged list and hash; duplicate names across files are an error. */
static int st_index(mt_safetensors *st, mt_err *err) {
    size_t total = 0;
    for (size_t i = 0; i < st->nfiles; i++) total += st->files[i].count;
    if (total > UINT32_MAX - 1) return mt_seterr(err, MT_ELIMIT, "too many tensors (%zu)", total);
    size_t cap = 16;
    while (cap < total * 2) cap *= 2;
    st->all = malloc((total ? total : 1) * sizeof *st->all);
    st->owner = malloc((total ? total : 1) * sizeof *st->owner);
    st->hash = calloc(cap, sizeof *st->hash);
    if (!st->all || !st->owner || !st->hash) return mt_seterr(err, MT_ENOMEM, "out of memory");
    st->hcap = cap;
    for (size_t fi = 0; fi < st->nfiles; fi++) {
        for (size_t k = 0; k < st->files[fi].count; k++) {
            const mt_tensor_view *t = &st->files[fi].views[k];
            size_t h = (size_t)hash_str(t->name) & (cap - 1);
            while (st->hash[h]) {
                size_t o = st->hash[h] - 1;
                if (strcmp(st->all[o]->name, t->name) == 0)
                    return mt_seterr(err, MT_EFORMAT, "tensor '%s' appears in both %s and %s", t->name,
                                     st->files[st->owner[o]].path, st->files[fi].path);
                h = (h + 1) & (cap - 1);
            }
            st->all[st->count] = t;
            st->owner[st->count] = fi;
            st->count++;
            st->hash[h] = (uint32_t)st->count;
        }
    }
    return MT_OK;
}

static int st_open_files(mt_safetensors **out, char **paths, size_t np, mt_err *err) {
    mt_safetensors *st = st_new(np);
    if (!st) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int rc = MT_OK;
    for (size_t i = 0; i < np && !rc; i++) {
        st_file *f = &st->files[i];
        st->nfiles = i + 1;
        f->path = strdup(paths[i]);
        if (!f->path) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); break; }
        rc = mt_mmap_open(&f->map, f->path, err);
        if (!rc) rc = st_load_slot(st, i, f->map.data ? (const void *)f->map.data : (const void *)"", f->map.size, err);
    }
    if (!rc) rc = st_index(st, err);
    if (rc) { mt_safetensors_free(st); return rc; }
    *out = st;
    return MT_OK;
}

int mt_safetensors_open_mem(mt_safetensors **out, const void *buf, size_t n, const char *label, mt_err *err) {
    *out = NULL;
    mt_safetensors *st = st_new(1);
    if (!st) return mt_seterr(err, MT_ENOMEM, "out of memory");
    st->nfiles = 1;
    st->files[0].path = strdup(label ? label : "safetensors");
    int rc = st->files[0].path ? st_load_slot(st, 0, buf, n, err) : mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!rc) rc = st_index(st, err);
    if (rc) { mt_safetensors_free(st); return rc; }
    *out = st;
    return MT_OK;
}

int mt_safetensors_open(mt_safetensors **out, const char *path, mt_err *err) {
    *out = NULL;
    if (mt_is_dir(path)) return mt_safetensors_open_dir(out, path, err);
    char *p = (char *)path;
    return st_open_files(out, &p, 1, err);
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && memcmp(s + a - b, suf, b) == 0;
}

typedef struct { char **v; size_t n, cap; } strlist;

static int sl_push(strlist *l, const char *s) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        char **nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) return MT_ENOMEM;
        l->v = nv; l->cap = nc;
    }
    if (!(l->v[l->n] = strdup(s))) return MT_ENOMEM;
    l->n++;
    return MT_OK;
}

static void sl_free(strlist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
}

/* Names in dir with prefix (may be "") and suffix ".safetensors", sorted. */
static int list_weights(const char *dir, const char *prefix, strlist *out, mt_err *err) {
    DIR *d = opendir(dir);
    if (!d) return mt_seterr(err, MT_ENOTFOUND, "%s: cannot open directory", dir);
    struct dirent *e;
    int rc = MT_OK;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || !ends_with(e->d_name, ".safetensors")) continue;
        char *p = mt_path_join(dir, e->d_name);
        if (!p || sl_push(out, p)) { free(p); rc = mt_seterr(err, MT_ENOMEM, "out of memory"); break; }
        free(p);
    }
    closedir(d);
    if (!rc && out->n > 1) qsort(out->v, out->n, sizeof *out->v, str_cmp);
    return rc;
}

static int open_with_index(mt_safetensors **out, const char *dir, const char *ipath, mt_err *err) {
    char *text = NULL;
    size_t len = 0;
    MT_TRY(mt_read_file_max(ipath, 256u << 20, &text, &len, err));
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!root) return mt_seterr(err, MT_EFORMAT, "%s: invalid JSON: %s", ipath, je.text);
    json_t *wm = json_object_get(root, "weight_map");
    int rc = MT_OK;
    strlist files = {0};
    const char *key;
    json_t *val;
    if (!json_is_object(wm)) { rc = mt_seterr(err, MT_EFORMAT, "%s: missing \"weight_map\" object", ipath); goto done; }
    json_object_foreach(wm, key, val) {
        const char *fn = json_string_value(val);
        if (!fn) { rc = mt_seterr(err, MT_EFORMAT, "%s: weight_map['%s'] is not a string", ipath, key); goto done; }
        if (!*fn || strchr(fn, '/') || strcmp(fn, ".") == 0 || strcmp(fn, "..") == 0) {
            rc = mt_seterr(err, MT_EFORMAT, "%s: weight_map['%s']: unsafe file name '%.64s'", ipath, key, fn);
            goto done;
        }
        char *p = mt_path_join(dir, fn);
        if (!p) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto done; }
        int seen = 0;
        for (size_t i = 0; i < files.n && !seen; i++) seen = strcmp(files.v[i], p) == 0;
        if (!seen && sl_push(&files, p)) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        free(p);
        if (rc) goto done;
    }
    if (files.n == 0) { rc = mt_seterr(err, MT_ENOTFOUND, "%s: empty weight_map", ipath); goto done; }
    if (files.n > 1) qsort(files.v, files.n, sizeof *files.v, str_cmp);
    mt_safetensors *st = NULL;
    rc = st_open_files(&st, files.v, files.n, err);
    if (rc) goto done;
    json_object_foreach(wm, key, val) {
        const char *fn = json_string_value(val);
        const mt_tensor_view *t = mt_safetensors_get(st, key);
        size_t fi = 0;
        if (t) {
            size_t h = (size_t)hash_str(key) & (st->hcap - 1);
            while (st->all[st->hash[h] - 1] != t) h = (h + 1) & (st->hcap - 1);
            fi = st->owner[st->hash[h] - 1];
        }
        const char *base = t ? strrchr(st->files[fi].path, '/') : NULL;
        base = base ? base + 1 : (t ? st->files[fi].path : NULL);
        if (!t || strcmp(base, fn) != 0) {
            rc = mt_seterr(err, MT_EFORMAT, "%s: tensor '%s' is listed in %s but missing there", ipath, key, fn);
            mt_safetensors_free(st);
            goto done;
        }
    }
    *out = st;
done:
    sl_free(&files);
    json_decref(root);
    return rc;
}

int mt_safetensors_open_dir(mt_safetensors **out, const char *dir, mt_err *err) {
    *out = NULL;
    char *ipath = mt_path_join(dir, "model.safetensors.index.json");
    if (!ipath) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int rc;
    if (mt_file_exists(ipath)) {
        rc = open_with_index(out, dir, ipath, err);
        free(ipath);
        return rc;
    }
    free(ipath);
    strlist files = {0};
    rc = list_weights(dir, "model", &files, err);
    if (!rc && files.n == 0) rc = list_weights(dir, "", &files, err);
    if (!rc && files.n == 0) rc = mt_seterr(err, MT_ENOTFOUND, "%s: no *.safetensors weights found", dir);
    if (!rc) rc = st_open_files(out, files.v, files.n, err);
    sl_free(&files);
    return rc;
}

int mt_safetensors_set_prefix(mt_safetensors *st, const char *strip, const char *prefix, mt_err *err) {
    if (!strip) strip = "";
    if (strlen(prefix) >= sizeof st->prefix || strlen(strip) >= sizeof st->strip)
        return mt_seterr(err, MT_EINVAL, "tensor-name prefix '%.80s' is too long", prefix);
    snprintf(st->prefix, sizeof st->prefix, "%s", prefix);
    snprintf(st->strip, sizeof st->strip, "%s", strip);
    return MT_OK;
}

void mt_safetensors_set_renames(mt_safetensors *st, const char *const *pairs) {
    if (st) st->renames = pairs;
}

/* name with its first whole-segment occurrence of `from` replaced by `to`, into buf[n]
 * (name itself when from does not occur); NULL when it does not fit */
static const char *rename_seg(const char *name, const char *from, const char *to, char *buf, size_t n) {
    size_t fl = strlen(from);
    for (const char *p = strstr(name, from); p; p = strstr(p + 1, from)) {
        if ((p != name && p[-1] != '.') || (p[fl] && p[fl] != '.')) continue;
        int w = snprintf(buf, n, "%.*s%s%s", (int)(p - name), name, to, p + fl);
        return w < 0 || (size_t)w >= n ? NULL : buf;
    }
    return name;
}

const char *mt_safetensors_renamed(const mt_safetensors *st, const char *name, char *buf, size_t n) {
    char tmp[2][1024];
    int k = 0;
    for (const char *const *r = st->renames; r && r[0] && r[1]; r += 2) {
        const char *o = rename_seg(name, r[0], r[1], tmp[k], sizeof tmp[k]);
        if (!o) return NULL;
        if (o == tmp[k]) { name = o; k ^= 1; }
    }
    int w = snprintf(buf, n, "%s", name);
    return w < 0 || (size_t)w >= n ? NULL : buf;
}

const char *mt_safetensors_stored_name(const mt_safetensors *st, const char *name, char *buf, size_t n) {
    char tmp[1024];
    if (st->renames && !(name = mt_safetensors_renamed(st, name, tmp, sizeof tmp))) return NULL;
    size_t sl = strlen(st->strip);
    if (sl && !strncmp(name, st->strip, sl)) name += sl;
    int w = snprintf(buf, n, "%s%s", st->prefix, name);
    return w < 0 || (size_t)w >= n ? NULL : buf;
}

const mt_tensor_view *mt_safetensors_get(const mt_safetensors *st, const char *name) {
    if (!st || !name || !st->hcap) return NULL;
    char full[1024];
    if (st->prefix[0] || st->strip[0] || st->renames) {
        name = mt_safetensors_stored_name(st, name, full, sizeof full);
        if (!name) return NULL;
    }
    size_t h = (size_t)hash_str(name) & (st->hcap - 1);
    while (st->hash[h]) {
        const mt_tensor_view *t = st->all[st->hash[h] - 1];
        if (strcmp(t->name, name) == 0) return t;
        h = (h + 1) & (st->hcap - 1);
    }
    return NULL;
}

size_t mt_safetensors_count(const mt_safetensors *st) { return st ? st->count : 0; }

const mt_tensor_view *mt_safetensors_at(const mt_safetensors *st, size_t i) {
    return (st && i < st->count) ? st->all[i] : NULL;
}

size_t mt_safetensors_nfiles(const mt_safetensors *st) { return st ? st->nfiles : 0; }

const char *mt_safetensors_file(const mt_safetensors *st, size_t i) {
    return (st && i < st->nfiles) ? st->files[i].path : NULL;
}

json_t *mt_safetensors_metadata(const mt_safetensors *st) {
    return (st && st->nfiles) ? st->files[0].meta : NULL;
}

int mt_safetensors_read_f32(const mt_safetensors *st, const char *name, float *dst, size_t numel, int any_dtype,
                            mt_err *err) {
    const mt_tensor_view *t = mt_safetensors_get(st, name);
    if (!t) return mt_seterr(err, MT_ENOTFOUND, "tensor '%s' not found", name);
    if (!any_dtype && t->dtype != MT_F32 && t->dtype != MT_F16 && t->dtype != MT_BF16)
        return mt_seterr(err, MT_EFORMAT, "tensor '%s': dtype %s is not a float type", name, mt_dtype_name(t->dtype));
    size_t n = mt_tensor_numel(t);
    if (numel && n != numel)
        return mt_seterr(err, MT_EFORMAT, "tensor '%s': %zu elements, expected %zu", name, n, numel);
    mt_convert_to_f32(dst, t->data, t->dtype, n);
    return MT_OK;
}

/* "[2, 3]"; negative sizes print as "*" (wildcards in expectations). */
void mt_shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    if (!n) return;
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i <= ndim && o < n; i++) {
        const char *sep = i ? ", " : "[";
        int w = i == ndim       ? snprintf(buf + o, n - o, "%s]", ndim ? "" : "[")
                : shape[i] < 0 ? snprintf(buf + o, n - o, "%s*", sep)
                               : snprintf(buf + o, n - o, "%s%lld", sep, (long long)shape[i]);
        if (w < 0) break;
        o += (size_t)w;
    }
}

int mt_safetensors_expect(const mt_safetensors *st, const char *name, int dt, int ndim, const int64_t *shape,
                          const mt_tensor_view **out, mt_err *err) {
    const mt_tensor_view *t = mt_safetensors_get(st, name);
    if (out) *out = t;
    if (!t) return mt_seterr(err, MT_ENOTFOUND, "tensor '%s' not found", name);
    if (dt >= 0 && t->dtype != (mt_dtype)dt)
        return mt_seterr(err, MT_EFORMAT, "tensor '%s': dtype %s, expected %s", name, mt_dtype_name(t->dtype),
                         mt_dtype_name((mt_dtype)dt));
    int bad = ndim >= 0 && t->ndim != ndim;
    for (int i = 0; !bad && shape && ndim >= 0 && i < ndim; i++) bad = shape[i] >= 0 && t->shape[i] != shape[i];
    if (bad) {
        char have[160], want[160];
        mt_shape_str(have, sizeof have, t->ndim, t->shape);
        if (shape) mt_shape_str(want, sizeof want, ndim, shape);
        else snprintf(want, sizeof want, "%d dimensions", ndim);
        return mt_seterr(err, MT_EFORMAT, "tensor '%s': shape %s, expected %s", name, have, want);
    }
    return MT_OK;
}
