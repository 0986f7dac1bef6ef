/* dtype.c - dtype table and float16/bfloat16 conversions (round to nearest even). */
#include "tensor/dtype.h"

#include <math.h>
#include <string.h>

#include "core/err.h"

#ifdef __F16C__
#include <immintrin.h>
#endif

static const struct { const char *name; } dtype_tab[MT_DTYPE_COUNT] = {
    [MT_F32] = {"F32"},   [MT_F16] = {"F16"},   [MT_BF16] = {"BF16"},
    [MT_U32] = {"U32"},   [MT_U8] = {"U8"},     [MT_I8] = {"I8"},
    [MT_I32] = {"I32"},   [MT_I64] = {"I64"},   [MT_BOOL] = {"BOOL"},
    [MT_U16] = {"U16"},   [MT_I16] = {"I16"},   [MT_U64] = {"U64"},
    [MT_F64] = {"F64"},   [MT_F8_E4M3] = {"F8_E4M3"}, [MT_F8_E8M0] = {"F8_E8M0"},
};

const char *mt_dtype_name(mt_dtype t) {
    return ((unsigned)t < MT_DTYPE_COUNT) ? dtype_tab[t].name : "?";
}

int mt_dtype_parse(const char *s, mt_dtype *out) {
    if (!s) return MT_EINVAL;
    for (int i = 0; i < MT_DTYPE_COUNT; i++)
        if (strcmp(s, dtype_tab[i].name) == 0) { *out = (mt_dtype)i; return MT_OK; }
    return MT_EINVAL;
}

int mt_dtype_is_float(mt_dtype t) {
    return t == MT_F32 || t == MT_F16 || t == MT_BF16 || t == MT_F64;
}

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float mt_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f) return u2f(sign | 0x7f800000u | (m << 13));     /* inf / NaN */
    if (e == 0) {                                                   /* zero / subnormal: m * 2^-24 */
        float v = (float)m * 0x1p-24f;                              /* exact */
        return sign ? -v : v;
    }
    return u2f(sign | ((e + 112) << 23) | (m << 13));
}

uint16_t mt_f32_to_f16(float f) {
    uint32_t x = f2u(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u) {                                         /* inf / NaN */
        if (x == 0x7f800000u) return sign | 0x7c00;
        return sign | 0x7e00 | (uint16_t)((x >> 13) & 0x3ff);        /* quiet NaN, keep payload top */
    }
    if (x >= 0x477ff000u) return sign | 0x7c00;                     /* >= 65520 rounds to inf */
    if (x < 0x38800000u) {                                          /* below 2^-14: half subnormal */
        if (x <= 0x33000000u) return sign;                          /* <= 2^-25 (tie) rounds to 0 */
        uint32_t e = x >> 23, m = (x & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e;                                   /* 14..24 */
        uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return sign | (uint16_t)h;
    }
    uint32_t h = (((x >> 23) - 112) << 10) | ((x >> 13) & 0x3ff);
    uint32_t rem = x & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;            /* carry may reach inf: fine */
    return sign | (uint16_t)h;
}

float mt_bf16_to_f32(uint16_t h) { return u2f((uint32_t)h << 16); }

uint16_t mt_f32_to_bf16(float f) {
    uint32_t x = f2u(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);   /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

float mt_round_f16(float f) { return mt_f16_to_f32(mt_f32_to_f16(f)); }
float mt_round_bf16(float f) { return mt_bf16_to_f32(mt_f32_to_bf16(f)); }

static float e4m3_to_f32(uint8_t b) {
    int s = b >> 7, e = (b >> 3) & 0xf, m = b & 7;
    float v;
    if (e == 0xf && m == 7) v = NAN;
    else if (e == 0) v = (float)m * 0x1p-9f;
    else v = ldexpf(1.0f + (float)m / 8.0f, e - 7);
    return s ? -v : v;
}

static float e8m0_to_f32(uint8_t b) {
    if (b == 0xff) return NAN;
    if (b == 0) return u2f(0x00400000u);                            /* 2^-127 */
    return u2f((uint32_t)b << 23);
}

#define LOAD(T, p, i) ({ T v_; memcpy(&v_, (const char *)(p) + (i) * sizeof(T), sizeof(T)); v_; })

void mt_convert_to_f32(float *dst, const void *src, mt_dtype t, size_t n) {
    const unsigned char *s = src;
    size_t i = 0;
    switch (t) {
    case MT_F32: memcpy(dst, src, n * 4); break;
    case MT_F16:
#ifdef __F16C__
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + 2 * i))));
#endif
        for (; i < n; i++) dst[i] = mt_f16_to_f32(LOAD(uint16_t, s, i));
        break;
    case MT_BF16: for (; i < n; i++) dst[i] = mt_bf16_to_f32(LOAD(uint16_t, s, i)); break;
    case MT_U32: for (; i < n; i++) dst[i] = (float)LOAD(uint32_t, s, i); break;
    case MT_U8: for (; i < n; i++) dst[i] = (float)s[i]; break;
    case MT_I8: for (; i < n; i++) dst[i] = (float)(int8_t)s[i]; break;
    case MT_I32: for (; i < n; i++) dst[i] = (float)LOAD(int32_t, s, i); break;
    case MT_I64: for (; i < n; i++) dst[i] = (float)LOAD(int64_t, s, i); break;
    case MT_BOOL: for (; i < n; i++) dst[i] = s[i] ? 1.0f : 0.0f; break;
    case MT_U16: for (; i < n; i++) dst[i] = (float)LOAD(uint16_t, s, i); break;
    case MT_I16: for (; i < n; i++) dst[i] = (float)LOAD(int16_t, s, i); break;
    case MT_U64: for (; i < n; i++) dst[i] = (float)LOAD(uint64_t, s, i); break;
    case MT_F64: for (; i < n; i++) dst[i] = (float)LOAD(double, s, i); break;
    case MT_F8_E4M3: for (; i < n; i++) dst[i] = e4m3_to_f32(s[i]); break;
    case MT_F8_E8M0: for (; i < n; i++) dst[i] = e8m0_to_f32(s[i]); break;
    default: for (; i < n; i++) dst[i] = NAN; break;
    }
}

int mt_convert_from_f32(void *dst, const float *src, mt_dtype t, size_t n) {
    unsigned char *d = dst;
    switch (t) {
    case MT_F32: memcpy(dst, src, n * 4); return MT_OK;
    case MT_F16: {
        size_t i = 0;
#ifdef __F16C__
        /* F16C rounds to nearest even and maps inf/NaN/subnormals as mt_f32_to_f16 does */
        for (; i + 8 <= n; i += 8)
            _mm_storeu_si128((__m128i *)(void *)(d + 2 * i),
                             _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
        for (; i < n; i++) { uint16_t h = mt_f32_to_f16(src[i]); memcpy(d + 2 * i, &h, 2); }
        return MT_OK;
    }
    case MT_BF16:
        for (size_t i = 0; i < n; i++) { uint16_t h = mt_f32_to_bf16(src[i]); memcpy(d + 2 * i, &h, 2); }
        return MT_OK;
    default: return MT_EINVAL;
    }
}
