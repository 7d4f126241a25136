/* 2:4 sparse + LUT product, scalar reference.
 *
 * Per row, per 32-column chunk, kept weight j = 0..15 in order (group j/2, its 2-bit position p,
 * its b-bit index c): acc = fma(table[c], x[chunk*32 + 4*(j/2) + p], acc), from acc = +0. */
#include <math.h>

#include "../src/matrix.h"

static float sparse_dot(const ek_matrix *w, const uint32_t *blk, int j, const float *t, const float *xr) {
    float acc = 0.0f;
    EK_SPARSE_EACH_KEPT(w, blk, j, acc = fmaf(t[code], xr[col], acc));
    return acc;
}

void ek_sparse_rows_ref(const ek_matrix *w, const float *x, int m, int ldx, int b0, int b1, float *y, int ldy) {
    ek_rows_each(w, x, m, ldx, b0, b1, y, ldy, sparse_dot);
}
