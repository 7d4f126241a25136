/* The int8 activation pass's loops (lut/q8.c), included once per ISA with EK_PASS(name) naming its
 * build (name_scalar, name_avx2, name_avx512) under that ISA's `#pragma GCC target`. Plain scalar C:
 * the compiler vectorizes it; no include guard, on purpose. */

/* the largest |x| of a row */
static float EK_PASS(abs_max)(const float *x, int k) {
    float mx[16] = {0};  /* 16 partial maxima: vectorizes (max is exact in any order) */
    int i = 0;
    for (; i + 16 <= k; i += 16)
        for (int j = 0; j < 16; j++) { float a = fabsf(x[i + j]); mx[j] = a > mx[j] ? a : mx[j]; }
    for (; i < k; i++) { float a = fabsf(x[i]); mx[0] = a > mx[0] ? a : mx[0]; }
    for (int j = 1; j < 16; j++) mx[0] = mx[j] > mx[0] ? mx[j] : mx[0];
    return mx[0];
}

/* round(x * inv) half to even into lin[0..k); returns the sum of lin */
static int32_t EK_PASS(round_row)(const float *x, int k, float inv, int8_t *lin) {
    int32_t sum = 0;
    /* + 1.5 * 2^23 - 1.5 * 2^23: round half to even, the same on every machine */
    for (int i = 0; i < k; i++) lin[i] = (int8_t)(int)((x[i] * inv + 12582912.0f) - 12582912.0f);
    for (int i = 0; i < k; i++) sum += lin[i];
    return sum;
}
