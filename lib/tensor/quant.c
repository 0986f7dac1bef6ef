/* quant.c - MLX affine quantize/dequantize (bit-exact with mlx.core on CPU)
 * and fp-mode (mxfp4/mxfp8/nvfp4) dequantize.
 * ref: ml-explore/mlx mlx/ops.cpp, mlx/backend/cpu/quantized.cpp. */
#include "tensor/quant.h"

#include <math.h>
#include <string.h>

#ifdef __F16C__
#include <immintrin.h>
#endif

/* Every product and sum below must be rounded separately, as MLX does. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

static const char *const qmode_names[] = {"affine", "mxfp4", "mxfp8", "nvfp4"};

const char *mt_qmode_name(int mode) {
    return (mode >= 0 && mode <= MT_QMODE_NVFP4) ? qmode_names[mode] : "?";
}

int mt_qmode_parse(const char *s, int *mode) {
    if (!s) return MT_EINVAL;
    for (int i = 0; i <= MT_QMODE_NVFP4; i++)
        if (strcmp(s, qmode_names[i]) == 0) { *mode = i; return MT_OK; }
    return MT_EINVAL;
}

int mt_qmode_default_group_size(int mode) {
    switch (mode) {
    case MT_QMODE_AFFINE: return 64;
    case MT_QMODE_MXFP4: case MT_QMODE_MXFP8: return 32;
    case MT_QMODE_NVFP4: return 16;
    default: return 0;
    }
}

int mt_qmode_default_bits(int mode) {
    switch (mode) {
    case MT_QMODE_AFFINE: case MT_QMODE_MXFP4: case MT_QMODE_NVFP4: return 4;
    case MT_QMODE_MXFP8: return 8;
    default: return 0;
    }
}

static int affine_ok(int bits, int g) {
    return (bits == 2 || bits == 3 || bits == 4 || bits == 5 || bits == 6 || bits == 8) &&
           (g == 32 || g == 64 || g == 128);
}

int mt_quant_params_check(const mt_quant_params *qp, mt_err *err) {
    int ok;
    switch (qp->mode) {
    case MT_QMODE_AFFINE: ok = affine_ok(qp->bits, qp->group_size); break;
    case MT_QMODE_MXFP4: ok = qp->bits == 4 && qp->group_size == 32; break;
    case MT_QMODE_MXFP8: ok = qp->bits == 8 && qp->group_size == 32; break;
    case MT_QMODE_NVFP4: ok = qp->bits == 4 && qp->group_size == 16; break;
    default:
        return mt_seterr(err, MT_EUNSUPPORTED, "unknown quantization mode %d", qp->mode);
    }
    if (!ok)
        return mt_seterr(err, MT_EUNSUPPORTED, "unsupported %s quantization: bits %d, group size %d",
                         mt_qmode_name(qp->mode), qp->bits, qp->group_size);
    return MT_OK;
}

void mt_quant_set_code(uint32_t *row, size_t i, int bits, uint32_t q) {
    unsigned char *b = (unsigned char *)row;
    size_t bit = i * (size_t)bits, byte = bit >> 3;
    unsigned off = (unsigned)(bit & 7);
    uint32_t mask = ((1u << bits) - 1) << off, v = (q << off) & mask;
    b[byte] = (unsigned char)((b[byte] & ~mask) | v);
    if (off + (unsigned)bits > 8)
        b[byte + 1] = (unsigned char)((b[byte + 1] & ~(mask >> 8)) | (v >> 8));
}

void mt_quant_unpack_row(uint8_t *codes, const uint32_t *row, size_t K, int bits) {
    const unsigned char *b = (const unsigned char *)row;
    size_t i;
    switch (bits) {
    case 8: memcpy(codes, b, K); break;
    case 4:
        for (i = 0; i < K / 2; i++) { codes[2 * i] = b[i] & 15; codes[2 * i + 1] = b[i] >> 4; }
        break;
    case 2:
        for (i = 0; i < K / 4; i++) {
            unsigned v = b[i];
            codes[4 * i] = v & 3; codes[4 * i + 1] = (v >> 2) & 3;
            codes[4 * i + 2] = (v >> 4) & 3; codes[4 * i + 3] = v >> 6;
        }
        break;
    default:
        /* 8 codes always fill exactly `bits` bytes: read them as one little-endian word */
        for (i = 0; i + 8 <= K; i += 8) {
            uint64_t v = 0;
            const unsigned char *p = b + i / 8 * (size_t)bits;
            for (int k = bits - 1; k >= 0; k--) v = (v << 8) | p[k];
            for (int k = 0; k < 8; k++) codes[i + (size_t)k] = (uint8_t)((v >> (k * bits)) & ((1u << bits) - 1));
        }
        for (; i < K; i++) codes[i] = (uint8_t)mt_quant_code(row, i, bits);
    }
}

static int check_affine(mt_dtype sdt, size_t K, int bits, int g, mt_err *err) {
    if (sdt != MT_F32 && sdt != MT_F16 && sdt != MT_BF16)
        return mt_seterr(err, MT_EINVAL, "affine scales must be F32, F16 or BF16, not %s", mt_dtype_name(sdt));
    if (!affine_ok(bits, g))
        return mt_seterr(err, MT_EINVAL, "unsupported affine quantization: bits %d, group size %d", bits, g);
    if (K % (size_t)g != 0)
        return mt_seterr(err, MT_EINVAL, "row length %zu is not a multiple of the group size %d", K, g);
    return MT_OK;
}

static inline float load_scalar(const void *p, mt_dtype t, size_t i) {
    const unsigned char *b = p;
    if (t == MT_F32) { float f; memcpy(&f, b + 4 * i, 4); return f; }
    uint16_t h; memcpy(&h, b + 2 * i, 2);
    return t == MT_F16 ? mt_f16_to_f32(h) : mt_bf16_to_f32(h);
}

static inline float rbf16(float f) {
    uint32_t x; memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) x |= 0x00400000u;
    else x += 0x7fffu + ((x >> 16) & 1);
    x &= 0xffff0000u;
    memcpy(&f, &x, 4);
    return f;
}

/* One group: out[j] = round_T(round_T(q[j]*s) + b). */
static void dq_group(float *out, const uint8_t *q, size_t g, float s, float b, mt_dtype sdt) {
    size_t j = 0;
    if (sdt == MT_F32) {
        for (; j < g; j++) { float t = (float)q[j] * s; out[j] = t + b; }
    } else if (sdt == MT_BF16) {
        for (; j < g; j++) { float t = rbf16((float)q[j] * s); out[j] = rbf16(t + b); }
    } else {
#ifdef __F16C__
        __m256 vs = _mm256_set1_ps(s), vb = _mm256_set1_ps(b);
        for (; j + 8 <= g; j += 8) {
            __m128i q8 = _mm_loadl_epi64((const __m128i *)(q + j));
            __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q8)), vs);
            t = _mm256_cvtph_ps(_mm256_cvtps_ph(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            t = _mm256_add_ps(t, vb);
            t = _mm256_cvtph_ps(_mm256_cvtps_ph(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            _mm256_storeu_ps(out + j, t);
        }
#endif
        for (; j < g; j++) { float t = mt_round_f16((float)q[j] * s); out[j] = mt_round_f16(t + b); }
    }
}

int mt_dequantize_affine_row(float *out, const uint32_t *w, const void *scales, const void *biases,
                             mt_dtype sdt, size_t K, int bits, int group_size, mt_err *err) {
    MT_TRY(check_affine(sdt, K, bits, group_size, err));
    uint8_t codes[128];
    size_t g = (size_t)group_size, gw = g * (size_t)bits / 32;  /* words per group */
    const unsigned char *wb = (const unsigned char *)w;
    for (size_t gi = 0; gi < K / g; gi++) {
        mt_quant_unpack_row(codes, (const uint32_t *)(wb + gi * gw * 4), g, bits);
        dq_group(out + gi * g, codes, g, load_scalar(scales, sdt, gi), load_scalar(biases, sdt, gi), sdt);
    }
    return MT_OK;
}

int mt_dequantize_affine_row_f32(float *out, const uint32_t *w, const void *scales, const void *biases,
                                 mt_dtype sdt, size_t K, int bits, int group_size, mt_err *err) {
    MT_TRY(check_affine(sdt, K, bits, group_size, err));
    uint8_t codes[128];
    size_t g = (size_t)group_size, gw = g * (size_t)bits / 32;
    const unsigned char *wb = (const unsigned char *)w;
    for (size_t gi = 0; gi < K / g; gi++) {
        mt_quant_unpack_row(codes, (const uint32_t *)(wb + gi * gw * 4), g, bits);
        dq_group(out + gi * g, codes, g, load_scalar(scales, sdt, gi), load_scalar(biases, sdt, gi), MT_F32);
    }
    return MT_OK;
}

int mt_dequantize_affine(float *out, const uint32_t *w, const void *scales, const void *biases,
                         mt_dtype sdt, size_t rows, size_t K, int bits, int group_size, mt_err *err) {
    MT_TRY(check_affine(sdt, K, bits, group_size, err));
    size_t rw = mt_quant_row_words(K, bits), ng = K / (size_t)group_size, ss = mt_dtype_size(sdt);
    for (size_t r = 0; r < rows; r++)
        mt_dequantize_affine_row(out + r * K, (const uint32_t *)((const unsigned char *)w + r * rw * 4),
                                 (const unsigned char *)scales + r * ng * ss,
                                 (const unsigned char *)biases + r * ng * ss, sdt, K, bits, group_size, NULL);
    return MT_OK;
}

static inline float round_to(float f, mt_dtype t) {
    return t == MT_F16 ? mt_round_f16(f) : t == MT_BF16 ? mt_round_bf16(f) : f;
}

static inline void store_scalar(void *p, mt_dtype t, size_t i, float f) {
    unsigned char *b = p;
    if (t == MT_F32) { memcpy(b + 4 * i, &f, 4); return; }
    uint16_t h = t == MT_F16 ? mt_f32_to_f16(f) : mt_f32_to_bf16(f);
    memcpy(b + 2 * i, &h, 2);
}

/* The affine quantizer; lo/hi (per group, may be NULL) replace the group's
 * own min/max (calibrated quantization). */
static int quantize_core(uint32_t *w, void *scales, void *biases, mt_dtype sdt, const float *x, const float *lo,
                         const float *hi, size_t rows, size_t K, int bits, int group_size, int metal_rules,
                         mt_err *err) {
    MT_TRY(check_affine(sdt, K, bits, group_size, err));
    const float n_bins = (float)((1 << bits) - 1), eps = 1e-7f;
    size_t g = (size_t)group_size, ng = K / g, rw = mt_quant_row_words(K, bits);
    float v[128];
    for (size_t r = 0; r < rows; r++) {
        uint32_t *row = (uint32_t *)((unsigned char *)w + r * rw * 4);
        memset(row, 0, rw * 4);
        for (size_t gi = 0; gi < ng; gi++) {
            const float *xs = x + r * K + gi * g;
            float wmin = INFINITY, wmax = metal_rules ? 0.0f : -INFINITY;
            for (size_t j = 0; j < g; j++) {
                v[j] = round_to(xs[j], sdt);
                if (wmax < v[j]) wmax = v[j];
                if (v[j] < wmin) wmin = v[j];
            }
            if (lo) wmin = lo[r * ng + gi];
            if (hi) wmax = hi[r * ng + gi];
            int mask = fabsf(wmin) > fabsf(wmax);
            float scale = (wmax - wmin) / n_bins;
            if (scale < eps) scale = eps;
            if (!mask) scale = -scale;
            float edge = mask ? wmin : wmax;
            float q0 = metal_rules ? roundf(edge / scale) : rintf(edge / scale);
            float bias = 0.0f;
            if (q0 != 0.0f) { scale = edge / q0; bias = edge; }
            for (size_t j = 0; j < g; j++) {
                float t = (v[j] - bias) / scale;
                t = metal_rules ? roundf(t) : rintf(t);
                if (t < 0.0f) t = 0.0f;
                if (t > n_bins) t = n_bins;
                uint32_t q = (t == t) ? (uint32_t)t : 0u;
                mt_quant_set_code(row, gi * g + j, bits, q);
            }
            store_scalar(scales, sdt, r * ng + gi, scale);
            store_scalar(biases, sdt, r * ng + gi, bias);
        }
    }
    return MT_OK;
}

int mt_quantize_affine(uint32_t *w, void *scales, void *biases, mt_dtype sdt, const float *x,
                       size_t rows, size_t K, int bits, int group_size, int metal_rules, mt_err *err) {
    return quantize_core(w, scales, biases, sdt, x, NULL, NULL, rows, K, bits, group_size, metal_rules, err);
}

/* ---- fp modes ---------------------------------------------------------- */

float mt_fp4_e2m1_to_f32(uint8_t code) {
    static const float lut[16] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                                  -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
    return lut[code & 15];
}

float mt_fp8_e4m3_to_f32(uint8_t b) {
    float f;
    mt_convert_to_f32(&f, &b, MT_F8_E4M3, 1);   /* 0x7f / 0xff: NaN, as mlx decodes them */
    return f;
}

float mt_fp8_e8m0_to_f32(uint8_t b) {
    /* mlx's dequantize_scale: the byte as a bfloat16 exponent, so 0xff is +inf
     * (not NaN); 0 is 2^-127 */
    uint32_t x = b ? (uint32_t)b << 23 : 0x00400000u;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

float mt_qfp_scale(uint8_t b, int mode) {
    return mode == MT_QMODE_NVFP4 ? mt_fp8_e4m3_to_f32(b) : mt_fp8_e8m0_to_f32(b);
}

int mt_qfp_row_f32(float *out, const uint8_t *w, const uint8_t *scales, int mode, size_t K, int round_bf16) {
    size_t g = (size_t)mt_qmode_default_group_size(mode);
    int bits = mt_qmode_default_bits(mode);
    if (mode == MT_QMODE_AFFINE || !g || K % g) return MT_EINVAL;
    for (size_t i = 0; i < K; i += g) {
        float s = mt_qfp_scale(scales[i / g], mode);
        for (size_t j = i; j < i + g; j++) {
            float e = bits == 8 ? mt_fp8_e4m3_to_f32(w[j]) : mt_fp4_e2m1_to_f32((uint8_t)(w[j >> 1] >> ((j & 1) * 4)));
            out[j] = round_bf16 ? mt_round_bf16(e * s) : e * s;
        }
    }
    return MT_OK;
}

int mt_dequantize_fp(float *out, const uint32_t *w, const uint8_t *scales, int mode,
                     size_t rows, size_t K, float global_scale, mt_err *err) {
    size_t g;
    int bits;
    switch (mode) {
    case MT_QMODE_MXFP4: g = 32; bits = 4; break;
    case MT_QMODE_MXFP8: g = 32; bits = 8; break;
    case MT_QMODE_NVFP4: g = 16; bits = 4; break;
    default: return mt_seterr(err, MT_EINVAL, "not an fp quantization mode: %d", mode);
    }
    if (K % g != 0)
        return mt_seterr(err, MT_EINVAL, "row length %zu is not a multiple of the group size %zu", K, g);
    const unsigned char *wb = (const unsigned char *)w;
    int use_gs = mode == MT_QMODE_NVFP4 && global_scale != 0.0f;
    float gs = use_gs ? global_scale / 2688.0f : 1.0f;   /* 2688 = 448 * 6 */
    size_t n = rows * K;
    for (size_t i = 0; i < n; i += g) {
        uint8_t sb = scales[i / g];
        float s = mode == MT_QMODE_NVFP4 ? mt_fp8_e4m3_to_f32(sb) : mt_fp8_e8m0_to_f32(sb);
        if (use_gs) s = s * gs;                           /* MLX scales the group scale first */
        for (size_t j = i; j < i + g; j++) {
            float e = bits == 8 ? mt_fp8_e4m3_to_f32(wb[j])
                                : mt_fp4_e2m1_to_f32((uint8_t)(wb[j >> 1] >> ((j & 1) * 4)));
            out[j] = e * s;
        }
    }
    return MT_OK;
}

/* ---- affine with a chosen range (calibrated quantization) -------------- */

int mt_quantize_affine_range(uint32_t *w, void *scales, void *biases, mt_dtype sdt, const float *x,
                             const float *lo, const float *hi, size_t rows, size_t K, int bits, int group_size,
                             mt_err *err) {
    return quantize_core(w, scales, biases, sdt, x, lo, hi, rows, K, bits, group_size, 0, err);
}

/* ---- fp quantize (mx.quantize's op graph, which mlx runs on the CPU) ---- */

static inline uint32_t f2u_(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f_(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

uint8_t mt_fp8_e4m3_from_f32(float f) {
    uint32_t b = f2u_(f), sign = b & 0x80000000u;
    b ^= sign;
    uint32_t low = f2u_(u2f_(b) + 16384.0f) - (141u << 23);   /* subnormal range: the float adder rounds */
    uint32_t high = (b + ((uint32_t)(7 - 127) << 23) + 0x7FFFFu + ((b >> 20) & 1)) >> 20;
    uint8_t r = (uint8_t)(b < (121u << 23) ? low : high);
    if (b >= (543u << 21)) r = 0x7E;                          /* >= 480 (and NaN): 448 */
    return (uint8_t)(r | (sign >> 24));
}

/* The nearest E2M1 code of v; exact ties (and NaN) go to the lower code, as argmin. */
static uint8_t e2m1_nearest(float v, mt_dtype t) {
    uint8_t best = 0;
    float bd = 0.0f;
    for (uint8_t i = 0; i < 16; i++) {
        float d = fabsf(round_to(v - mt_fp4_e2m1_to_f32(i), t));
        if (i == 0 || d < bd) { best = i; bd = d; }
    }
    return best;
}

int mt_quantize_fp(uint8_t *w, uint8_t *scales, mt_dtype t, const float *x, size_t rows, size_t K, int mode,
                   mt_err *err) {
    if (t != MT_F32 && t != MT_F16 && t != MT_BF16)
        return mt_seterr(err, MT_EINVAL, "fp quantization of %s values", mt_dtype_name(t));
    if (mode != MT_QMODE_MXFP4 && mode != MT_QMODE_NVFP4 && mode != MT_QMODE_MXFP8)
        return mt_seterr(err, MT_EINVAL, "not an fp quantization mode: %d", mode);
    size_t g = (size_t)mt_qmode_default_group_size(mode);
    int bits = mt_qmode_default_bits(mode);
    if (K % g) return mt_seterr(err, MT_EINVAL, "row length %zu is not a multiple of the group size %zu", K, g);
    float maxval = bits == 4 ? 6.0f : 448.0f, v[32];
    size_t rb = K * (size_t)bits / 8;
    for (size_t r = 0; r < rows; r++) {
        uint8_t *wr = w + r * rb;
        if (bits == 4) memset(wr, 0, rb);
        for (size_t gi = 0; gi < K / g; gi++) {
            float amax = 0.0f;
            for (size_t j = 0; j < g; j++) {
                v[j] = round_to(x[r * K + gi * g + j], t);
                float a = fabsf(v[j]);
                amax = a > amax || a != a ? a : amax;   /* max propagates NaN */
            }
            float sc = round_to(amax / maxval, t);
            uint8_t sb;
            if (mode == MT_QMODE_NVFP4) {
                sb = mt_fp8_e4m3_from_f32(sc);
                float dec = round_to(mt_fp8_e4m3_to_f32(sb), t);
                for (size_t j = 0; j < g; j++) v[j] = round_to(v[j] / dec, t);   /* then * 1.0f: float32 */
                for (size_t j = 0; j < g; j++) {
                    size_t k = gi * g + j;
                    wr[k / 2] |= (uint8_t)(e2m1_nearest(v[j], MT_F32) << (k % 2 * 4));
                }
            } else {
                int e = sc == 0.0f ? 0 : (int)ceilf(log2f(sc));   /* mlx 0.32.4: ceil, not round; in float32 */
                sb = (uint8_t)(e + 127);
                float p = round_to(ldexpf(1.0f, e), t);
                for (size_t j = 0; j < g; j++) {
                    size_t k = gi * g + j;
                    float q = round_to(v[j] / p, t);
                    if (bits == 8) wr[k] = mt_fp8_e4m3_from_f32(q);
                    else wr[k / 2] |= (uint8_t)(e2m1_nearest(q, t) << (k % 2 * 4));
                }
            }
            scales[r * (K / g) + gi] = sb;
        }
    }
    return MT_OK;
}
