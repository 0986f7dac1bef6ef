/* cpu.c - runtime CPU feature detection (GCC/Clang __builtin_cpu_supports)
 * and the process-wide kernel path. */
#include "core/cpu.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The selected path: -1 = not computed yet.  Process-wide by design (a CPU
 * property plus an explicit override); atomics keep reads cheap and race-free. */
static _Atomic int g_level = -1;

int mt_cpu_best(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
        return MT_CPU_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return MT_CPU_AVX2;
#endif
    return MT_CPU_PORTABLE;
}

int mt_cpu_parse(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "portable") || !strcmp(s, "c") || !strcmp(s, "scalar")) return MT_CPU_PORTABLE;
    if (!strcmp(s, "avx2")) return MT_CPU_AVX2;
    if (!strcmp(s, "avx512")) return MT_CPU_AVX512;
    return -1;
}

const char *mt_cpu_name(int level) {
    switch (level) {
    case MT_CPU_PORTABLE: return "portable";
    case MT_CPU_AVX2: return "avx2";
    case MT_CPU_AVX512: return "avx512";
    default: return NULL;
    }
}

static int env_level(void) {
    int best = mt_cpu_best();
    int e = mt_cpu_parse(getenv("MT_CPU"));
    return e >= 0 && e < best ? e : best;
}

int mt_cpu_level(void) {
    int l = atomic_load_explicit(&g_level, memory_order_relaxed);
    if (l >= 0) return l;
    l = env_level();
    atomic_store(&g_level, l);
    return l;
}

int mt_cpu_force(int level) {
    int best = mt_cpu_best();
    int l = level < 0 ? env_level() : level < best ? level : best;
    atomic_store(&g_level, l);
    return l;
}

int mt_cpu_has_avx512vnni(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") ? 1 : 0;
#else
    return 0;
#endif
}

int mt_cpu_has_avx512bf16(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") ? 1 : 0;
#else
    return 0;
#endif
}

size_t mt_mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    fclose(f);
    return (size_t)kb * 1024;
}
