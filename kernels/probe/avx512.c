/* Roofline probes, AVX-512: streaming sum (8 zmm accumulators), 16 independent zmm FMA chains. */
#include <immintrin.h>

#include "../src/probe.h"

EK_PROBES(avx512, __m512, 16, _mm512_setzero_ps, _mm512_set1_ps, _mm512_loadu_ps, _mm512_add_ps, _mm512_fmadd_ps,
          _mm512_reduce_add_ps, 16, "v")
