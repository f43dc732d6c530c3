/* argon2_simd.c: argon2's fill_segment, the reference library's optimised code chosen once
 * for the CPU it runs on.
 *
 * Why: argon2's `opt.c` picks its SIMD width at compile time (AVX-512F, AVX2, SSSE3 or
 * SSE2, from the compiler's -m flags), so a library built for baseline x86-64 runs the
 * SSE2 code everywhere (31-33 ms a hash at m=19456 t=3 where AVX-512F takes 11.6 ms and
 * AVX2 16 ms, measured on the build machine 2026-12-02), and one built with -march=native
 * dies with SIGILL on an older host (a VM moved to another machine). scripts/build_pwcheck.sh
 * compiles opt.c once per width, each under its own name (-Dfill_segment=...), and this
 * file calls the widest one the CPU and the kernel support, chosen by the loader before the
 * first hash (a constructor: no lock, no check on the hot path).
 *
 * MIMS_ARGON2_SIMD=sse2|ssse3|avx2|avx512f asks for a narrower width, so the tests can
 * check each compiled width against an independent argon2; a width the CPU lacks is never
 * used, whatever it says. On other architectures the portable ref.c provides fill_segment
 * and this file only names it.
 */

#include <stdlib.h>
#include <string.h>

#include "argon2.h"
#include "core.h"

const char *mims_argon2_simd(void);

#if defined(__x86_64__)

typedef void fill_fn(const argon2_instance_t *instance, argon2_position_t position);

fill_fn mims_fill_segment_sse2, mims_fill_segment_ssse3, mims_fill_segment_avx2,
    mims_fill_segment_avx512f;

static const struct {
    const char *name;
    fill_fn *fill;
} widths[] = {
    /* widest first */
    {"avx512f", mims_fill_segment_avx512f},
    {"avx2", mims_fill_segment_avx2},
    {"ssse3", mims_fill_segment_ssse3},
    {"sse2", mims_fill_segment_sse2},
};

static int chosen = 3; /* sse2: every x86-64 CPU has it */

static int supported(int i) {
    switch (i) {
    case 0: return __builtin_cpu_supports("avx512f");
    case 1: return __builtin_cpu_supports("avx2");
    case 2: return __builtin_cpu_supports("ssse3");
    default: return 1;
    }
}

__attribute__((constructor)) static void choose(void) {
    const char *asked = getenv("MIMS_ARGON2_SIMD");
    int i;
    __builtin_cpu_init();
    for (i = 0; i < 4; i++) {
        if (!supported(i)) continue;
        if (asked && strcmp(asked, widths[i].name) != 0) continue;
        chosen = i;
        return;
    }
    /* asked for an unknown width or one this CPU lacks: the widest it has */
    for (i = 0; i < 4 && !supported(i); i++) {
    }
    chosen = i;
}

void fill_segment(const argon2_instance_t *instance, argon2_position_t position) {
    widths[chosen].fill(instance, position);
}

const char *mims_argon2_simd(void) { return widths[chosen].name; }

#else

const char *mims_argon2_simd(void) { return "ref"; }

#endif
