/* Causal attention over a KV cache (src/attention.h), AVX2+FMA: 16 lanes as two ymm. */
#include <immintrin.h>

#include "../src/attention.h"

typedef struct { __m256 lo, hi; } ek_v16;

static inline ek_v16 zero16(void) { return (ek_v16){_mm256_setzero_ps(), _mm256_setzero_ps()}; }
static inline ek_v16 set16(float a) { return (ek_v16){_mm256_set1_ps(a), _mm256_set1_ps(a)}; }
static inline ek_v16 load16(const float *p) { return (ek_v16){_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
static inline void store16(float *p, ek_v16 a) { _mm256_storeu_ps(p, a.lo); _mm256_storeu_ps(p + 8, a.hi); }
static inline ek_v16 fma16(ek_v16 acc, ek_v16 a, ek_v16 b) {
    return (ek_v16){_mm256_fmadd_ps(a.lo, b.lo, acc.lo), _mm256_fmadd_ps(a.hi, b.hi, acc.hi)};
}

EK_ATTENTION(avx2, ek_v16, zero16, set16, load16, store16, fma16)
