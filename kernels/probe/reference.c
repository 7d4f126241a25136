/* Machine probes for the roofline (scalar): streaming sum, independent FMA chains. */
#include <math.h>

#include "../src/matrix.h"

float ek_sum_ref(const float *a, size_t n) {
    float s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += a[i + j];
    for (; i < n; i++) s[0] += a[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

double ek_peak_ref(long iters) {
    float acc[8] = {0};
    volatile float a = 0.999f, c = 1e-3f;
    float av = a, cv = c;
    for (long it = 0; it < iters; it++)
        for (int j = 0; j < 8; j++) acc[j] = fmaf(acc[j], av, cv);
    volatile float sink = acc[0] + acc[7];
    (void)sink;
    return 2.0 * 8 * (double)iters;
}
