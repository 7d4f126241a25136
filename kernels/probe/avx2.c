/* Roofline probes, AVX2+FMA: streaming sum (8 ymm accumulators), 12 independent ymm FMA chains. */
#include <immintrin.h>

#include "../src/matrix.h"

float ek_sum_avx2(const float *a, size_t n) {
    __m256 s[8];
    for (int j = 0; j < 8; j++) s[j] = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int j = 0; j < 8; j++) s[j] = _mm256_add_ps(s[j], _mm256_loadu_ps(a + i + 8 * j));
    float tail = 0.0f;
    for (; i < n; i++) tail += a[i];
    for (int j = 1; j < 8; j++) s[0] = _mm256_add_ps(s[0], s[j]);
    float o[8];
    _mm256_storeu_ps(o, s[0]);
    return ((o[0] + o[1]) + (o[2] + o[3])) + ((o[4] + o[5]) + (o[6] + o[7])) + tail;
}

double ek_peak_avx2(long iters) {
    __m256 acc[12], a = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-3f);
    for (int j = 0; j < 12; j++) acc[j] = _mm256_set1_ps((float)j);
    for (long it = 0; it < iters; it++) {
        __asm__ volatile("" : "+x"(a));
        for (int j = 0; j < 12; j++) acc[j] = _mm256_fmadd_ps(acc[j], a, c);
    }
    for (int j = 1; j < 12; j++) acc[0] = _mm256_add_ps(acc[0], acc[j]);
    float o[8];
    _mm256_storeu_ps(o, acc[0]);
    volatile float sink = o[0];
    (void)sink;
    return 2.0 * 12 * 8 * (double)iters;
}
