/* LUT (and SHIFT) product, scalar reference: the definition every fast path must reproduce.
 *
 * For each row: acc = +0; for each column k in order: acc = fma(table[idx], x[k], acc).
 * The fast paths hold 16 rows in the 16 lanes of a vector and run the same sequence per lane,
 * so their results are bit-identical to this one.
 * 2-bit weights sum column pairs: acc = acc + fma(table[i1], x[k+1], table[i0] * x[k]) (the fast
 * paths precompute the 16 pair values of a table and add one per pair). */
#include <math.h>

#include "../src/matrix.h"

static float lut_dot(const ek_matrix *w, const uint32_t *blk, int j, const float *t, const float *xr) {
    const int F = w->fields, bits = w->bits;
    const uint32_t mask = (1u << bits) - 1;
    float acc = 0.0f;
    if (ek_lut3(w)) {  /* 32 columns in 3 words, in column order */
        for (int u = 0; u < w->words / 3; u++) {
            const uint32_t *q = blk + (size_t)3 * u * EK_LANES + j;
            for (int c = 0; c < 32; c++)
                acc = fmaf(t[ek_lut3_index(q[0], q[EK_LANES], q[2 * EK_LANES], c)], xr[32 * u + c], acc);
        }
        return acc;
    }
    for (int wi = 0; wi < w->words; wi++) {
        uint32_t word = blk[(size_t)wi * EK_LANES + j];
        if (bits == 2) {  /* column pairs: acc += fma(T[hi], x1, T[lo] * x0) */
            for (int i = 0; i < F; i += 2) {
                float lo = t[(word >> (2 * i)) & 3] * xr[wi * F + i];
                acc = acc + fmaf(t[(word >> (2 * i + 2)) & 3], xr[wi * F + i + 1], lo);
            }
            continue;
        }
        for (int i = 0; i < F; i++)
            acc = fmaf(t[(word >> (bits * i)) & mask], xr[wi * F + i], acc);
    }
    return acc;
}

void ek_lut_rows_ref(const ek_matrix *w, const float *x, int m, int ldx, int b0, int b1, float *y, int ldy) {
    ek_rows_each(w, x, m, ldx, b0, b1, y, ldy, lut_dot);
}
