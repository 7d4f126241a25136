/* 2:4 sparse + LUT product with int8 activations (the q8 family of lut/q8.c), scalar reference.
 *
 * Same packed weight and same int8 tables as the LUT q8 products (ek_set_q8: tq = round(T / st)); the
 * activation row is quantized the same way (one scale per row) and kept in column order
 * (ek_q8_quantize). The sum is the exact int32 S = sum over kept weights of tq[code] * xq[col]; the
 * epilogue is lut/q8.c's. Integer sums: every ISA path gives these bits.
 *
 * The SIMD paths multiply xq + 128 (unsigned bytes, what vpdpbusd takes) by tq (signed): their sum is
 * S + 128 * sum of the row's kept tq, a per-row constant of the weight (q8_corr: computed from the
 * packed codes at pack time and stored in the packed data, src/matrix.h, so a wrapped weight reads it;
 * padding weights index the table's 0 and add nothing). */

#include "../src/matrix.h"
#include "../src/q8.h"

static int32_t sparse_q8_dot(const ek_matrix *w, const uint32_t *blk, int j, const int8_t *t, const int8_t *q) {
    int32_t acc = 0;
    EK_SPARSE_EACH_KEPT(w, blk, j, acc += t[code] * q[col]);
    return acc;
}

void ek_sparse_q8_rows_ref(const ek_matrix *w, const int8_t *xq, int m, int ldx, int b0, int b1, int32_t *y, int ldy) {
    ek_rows_each_q8(w, xq, m, ldx, b0, b1, y, ldy, sparse_q8_dot);
}

void ek_sparse_q8_corr(const ek_matrix *w, int32_t *corr) {
    for (int r = 0; r < w->nblocks * EK_LANES; r++) corr[r] = 0;  /* padding rows: 0 */
    for (int r = 0; r < w->n; r++) {
        const int8_t *t = ek_row_tab_q8(w, r);
        int32_t sum = 0;
        EK_SPARSE_EACH_KEPT(w, ek_block(w, r / EK_LANES), r % EK_LANES, ((void)col, sum += t[code]));
        corr[r] = 128 * sum;
    }
}
