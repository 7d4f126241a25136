/* Causal attention over a KV cache (src/attention.h), AVX-512: 16 lanes, one zmm. */
#include <immintrin.h>

#include "../src/attention.h"

static inline __m512 fma16(__m512 acc, __m512 a, __m512 b) { return _mm512_fmadd_ps(a, b, acc); }

EK_ATTENTION(avx512, __m512, _mm512_setzero_ps, _mm512_set1_ps, _mm512_loadu_ps, _mm512_storeu_ps, fma16)
