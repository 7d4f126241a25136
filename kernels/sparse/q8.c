/* 2:4 sparse + LUT product with int8 activations (the q8 family of lut/q8.c), scalar reference.
 *
 * Same packed weight and same int8 tables as the LUT q8 products (ek_set_q8: tq = round(T / st)); the
 * activation row is quantized the same way (one scale per row) and kept in column order
 * (ek_q8_quantize). The sum is the exact int32 S = sum over kept weights of tq[code] * xq[col]; the
 * epilogue is lut/q8.c's. Integer sums: every ISA path gives these bits.
 *
 * The SIMD paths multiply xq + 128 (unsigned bytes, what vpdpbusd takes) by tq (signed): their sum is
 * S + 128 * sum of the row's kept tq, a per-row constant of the weight (q8_corr, set at pack or wrap
 * time from the packed codes; padding weights have table value 0 and add nothing). */
#include <stdlib.h>

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

int ek_sparse_q8_corr(ek_matrix *w) {
    if (!w->q8_corr) w->q8_corr = calloc((size_t)w->nblocks * EK_LANES, sizeof(int32_t));
    if (!w->q8_corr || !w->q8_tables) return 0;
    /* x of all ones: the same dot product gives the sum of the kept tq */
    int8_t *ones = malloc((size_t)w->kpad);
    if (!ones) return 0;
    for (int i = 0; i < w->kpad; i++) ones[i] = 1;
    for (int r = 0; r < w->n; r++) {
        w->q8_corr[r] = 128 * sparse_q8_dot(w, ek_block(w, r / EK_LANES), r % EK_LANES, ek_row_tab_q8(w, r), ones);
    }
    free(ones);
    return 1;
}
