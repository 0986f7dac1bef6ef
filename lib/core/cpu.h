/* cpu.h - CPU feature detection and the kernel path the library dispatches to.
 *
 * Paths: MT_CPU_PORTABLE (plain C, always available), MT_CPU_AVX2 (AVX2+FMA+F16C),
 * MT_CPU_AVX512 (AVX-512 F/BW/VL, used only where the CPU reports it).
 * The environment variable MT_CPU=portable|avx2|avx512 caps the path (a path
 * the CPU lacks is never selected).  mt_cpu_force() does the same from code
 * (tests run every path in one process). */
#ifndef MT_CPU_H
#define MT_CPU_H

#include <stddef.h>

enum { MT_CPU_PORTABLE = 0, MT_CPU_AVX2 = 1, MT_CPU_AVX512 = 2 };

/* The best path this CPU supports (ignores MT_CPU and mt_cpu_force). */
int mt_cpu_best(void);
/* The path kernels use now: min(best, $MT_CPU, forced).  Cheap (cached). */
int mt_cpu_level(void);
/* Force a path for the whole process: level < 0 clears the force.  Returns the
 * level now in effect (a level above mt_cpu_best() is capped to it).  Not meant
 * to be called while kernels run on other threads. */
int mt_cpu_force(int level);
/* "portable", "avx2", "avx512" (NULL for an unknown level). */
const char *mt_cpu_name(int level);
/* Parse a path name; returns the level or -1. */
int mt_cpu_parse(const char *s);
/* Feature flags of the CPU (for reports): 1 when present. */
int mt_cpu_has_avx512vnni(void);
int mt_cpu_has_avx512bf16(void);

/* MemAvailable of /proc/meminfo in bytes (memory that can be had without swapping); 0 when
 * unknown. */
size_t mt_mem_available(void);

#endif
