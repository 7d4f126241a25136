/* 2:4 sparse + LUT product with int8 activations, AVX2 (src/avx2_sparse_q8_tile.h): pmaddubsw +
 * pmaddwd products, or the AVX-VNNI version (sparse/avx2_q8_vnni.c) where lut/avx2_q8.c's check says. */
#define EK_Q8_VNNI 0
#define EK_Q8_NAME ek_sparse_q8_rows_avx2_plain
#include "../src/avx2_sparse_q8_tile.h"

void ek_sparse_q8_rows_avx2_vnni(const ek_matrix *, const int8_t *, int, int, int, int, int32_t *, int);

void ek_sparse_q8_rows_avx2(const ek_matrix *w, const int8_t *xq, int m, int ldx, int b0, int b1, int32_t *y, int ldy) {
    (ek_q8_avx_vnni() ? ek_sparse_q8_rows_avx2_vnni : ek_sparse_q8_rows_avx2_plain)(w, xq, m, ldx, b0, b1, y, ldy);
}
