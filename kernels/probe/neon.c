/* Roofline probes, NEON: streaming sum (8 q accumulators), 16 independent FMA chains. */
#include <arm_neon.h>

#include "../src/matrix.h"

float ek_sum_neon(const float *a, size_t n) {
    float32x4_t s[8];
    for (int j = 0; j < 8; j++) s[j] = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int j = 0; j < 8; j++) s[j] = vaddq_f32(s[j], vld1q_f32(a + i + 4 * j));
    float tail = 0.0f;
    for (; i < n; i++) tail += a[i];
    for (int j = 1; j < 8; j++) s[0] = vaddq_f32(s[0], s[j]);
    return vaddvq_f32(s[0]) + tail;
}

double ek_peak_neon(long iters) {
    float32x4_t acc[16], a = vdupq_n_f32(0.999f), c = vdupq_n_f32(1e-3f);
    for (int j = 0; j < 16; j++) acc[j] = vdupq_n_f32((float)j);
    for (long it = 0; it < iters; it++) {
        __asm__ volatile("" : "+w"(a));
        for (int j = 0; j < 16; j++) acc[j] = vfmaq_f32(c, acc[j], a);
    }
    for (int j = 1; j < 16; j++) acc[0] = vaddq_f32(acc[0], acc[j]);
    volatile float sink = vaddvq_f32(acc[0]);
    (void)sink;
    return 2.0 * 16 * 4 * (double)iters;
}
