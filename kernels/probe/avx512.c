/* Roofline probes, AVX-512: streaming sum (8 zmm accumulators), 16 independent zmm FMA chains. */
#include <immintrin.h>

#include "../src/matrix.h"

float ek_sum_avx512(const float *a, size_t n) {
    __m512 s[8];
    for (int j = 0; j < 8; j++) s[j] = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 128 <= n; i += 128)
        for (int j = 0; j < 8; j++) s[j] = _mm512_add_ps(s[j], _mm512_loadu_ps(a + i + 16 * j));
    float tail = 0.0f;
    for (; i < n; i++) tail += a[i];
    for (int j = 1; j < 8; j++) s[0] = _mm512_add_ps(s[0], s[j]);
    return _mm512_reduce_add_ps(s[0]) + tail;
}

double ek_peak_avx512(long iters) {
    __m512 acc[16], a = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-3f);
    for (int j = 0; j < 16; j++) acc[j] = _mm512_set1_ps((float)j);
    for (long it = 0; it < iters; it++) {
        __asm__ volatile("" : "+v"(a));  /* keep the loop: a is opaque */
        for (int j = 0; j < 16; j++) acc[j] = _mm512_fmadd_ps(acc[j], a, c);
    }
    for (int j = 1; j < 16; j++) acc[0] = _mm512_add_ps(acc[0], acc[j]);
    volatile float sink = _mm512_reduce_add_ps(acc[0]);
    (void)sink;
    return 2.0 * 16 * 16 * (double)iters;
}
