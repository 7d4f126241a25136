/* 2:4 sparse + LUT product with int8 activations, plain NEON (src/neon_sparse_q8_tile.h, smull
 * products), or the sdot version (sparse/neon_q8_dot.c) where lut/neon_q8.c's check says. */
#define EK_Q8_SDOT 0
#define EK_Q8_NAME ek_sparse_q8_rows_neon_plain
#include "../src/neon_sparse_q8_tile.h"

void ek_sparse_q8_rows_neon_dot(const ek_matrix *, const int8_t *, int, int, int, int, int32_t *, int);

void ek_sparse_q8_rows_neon(const ek_matrix *w, const int8_t *xq, int m, int ldx, int b0, int b1, int32_t *y, int ldy) {
    (ek_q8_neon_sdot() ? ek_sparse_q8_rows_neon_dot : ek_sparse_q8_rows_neon_plain)(w, xq, m, ldx, b0, b1, y, ldy);
}
