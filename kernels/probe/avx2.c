/* Roofline probes, AVX2+FMA: streaming sum (8 ymm accumulators), 12 independent ymm FMA chains. */
#include <immintrin.h>

#include "../src/probe.h"

static inline float hsum8(__m256 v) {
    float o[8];
    _mm256_storeu_ps(o, v);
    return ((o[0] + o[1]) + (o[2] + o[3])) + ((o[4] + o[5]) + (o[6] + o[7]));
}

EK_PROBES(avx2, __m256, 8, _mm256_setzero_ps, _mm256_set1_ps, _mm256_loadu_ps, _mm256_add_ps, _mm256_fmadd_ps,
          hsum8, 12, "x")
