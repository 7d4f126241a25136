/* 2:4 sparse + LUT product with int8 activations (the q8 family of lut/q8.c), scalar reference.
 *
 * Same packed weight and same int8 tables as the LUT q8 products (ek_set_q8: tq = round(T / st)); the
 * activation row is quantized the same way (one scale per row) and kept in column order
 * (ek_q8_quantize). The sum is the exact int32 S = sum over kept weights of tq[code] * xq[col]; the
 * epilogue is lut/q8.c's. Integer sums: every ISA path gives these bits.
 *
 * The SIMD paths multiply xq + 128 (unsigned bytes, what vpdpbusd takes) by tq (signed): their sum is
 * S + 128 * sum of the row's kept tq, a per-row constant of the weight (q8_corr, from the packed codes:
 * at pack time, or at the first int8-activation product of a wrapped weight, so that the fp32 path,
 * which wraps per call in the ExecuTorch ops, never pays for it; padding weights add nothing). */
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

const int32_t *ek_sparse_q8_corr(const ek_matrix *w) {
    int32_t *have = __atomic_load_n(&((ek_matrix *)w)->q8_corr, __ATOMIC_ACQUIRE);
    if (have || !w->q8_tables) return have;
    int32_t *corr = calloc((size_t)w->nblocks * EK_LANES, sizeof(int32_t));
    int8_t *ones = malloc((size_t)w->kpad);
    if (!corr || !ones) { free(corr); free(ones); return NULL; }
    /* x of all ones: the same dot product gives the sum of the row's kept tq */
    for (int i = 0; i < w->kpad; i++) ones[i] = 1;
    for (int r = 0; r < w->n; r++)
        corr[r] = 128 * sparse_q8_dot(w, ek_block(w, r / EK_LANES), r % EK_LANES, ek_row_tab_q8(w, r), ones);
    free(ones);
    /* concurrent first calls on one weight: one result is kept, the others freed */
    if (!__atomic_compare_exchange_n(&((ek_matrix *)w)->q8_corr, &have, corr, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        free(corr);
        return have;
    }
    return corr;
}
