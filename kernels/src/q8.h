/* Internal helpers of the int8-activation (q8) LUT products (lut/q8.c). */
#ifndef EK_Q8_H
#define EK_Q8_H
#include "matrix.h"

#define EK_Q8_MAX_K 66000  /* |S| <= K * 127 * 255 < 2^31 */

/* quantize the tables of w (pack / wrap time); 0 when out of memory */
int ek_set_q8(ek_matrix *w);
/* bytes of one quantized x row, and the quantization of m rows of x (k floats each) into xq
 * (m x ek_q8_ldx) with one scale per row in sx. A row is the ek_q8_xbytes activation bytes, then
 * sum(xq) as an int32 (what the kernels that look up table + 128 as unsigned bytes subtract x 128),
 * padded to 64 bytes. */
int ek_q8_xbytes(const ek_matrix *w);
static inline int32_t ek_q8_xsum(const ek_matrix *w, const int8_t *xrow) {
    int32_t s;
    __builtin_memcpy(&s, xrow + ek_q8_xbytes(w), 4);
    return s;
}
int ek_q8_ldx(const ek_matrix *w);
void ek_q8_quantize(const ek_matrix *w, const float *x, int m, int8_t *xq, float *sx);
/* in place: y[r] (the int32 sum S, stored in y's bytes) = (float)S * (sx * table scale of row r), rows [r0, r1) */
void ek_q8_finish(const ek_matrix *w, float sx, int r0, int r1, float *y);

/* 1 where the AVX2 q8 paths use AVX-VNNI: the CPU has it (cpuid 7.1 EAX bit 4) and
 * EDGEKIT_KERNELS_NO_AVXVNNI (read once) is unset (lut/avx2_q8.c) */
int ek_q8_avx_vnni(void);

/* 2:4 sparse (sparse/q8.c): the per-row corrections (nblocks * 16, padding rows 0) from the packed
 * codes and the int8 tables; the pack stores them in the data (q8_corr points there) */
void ek_sparse_q8_corr(const ek_matrix *w, int32_t *corr);

/* The q8 references' loop over the rows of blocks [b0, b1) and the rows of xq (int32 sums), where
 * dot(w, blk, lane, tq, xrow) is the format's exact int32 sum for row `lane` of block blk. */
typedef int32_t (*ek_row_dot_q8)(const ek_matrix *w, const uint32_t *blk, int lane, const int8_t *tq, const int8_t *xq);
static inline const int8_t *ek_row_tab_q8(const ek_matrix *w, int r) { return w->q8_tables + (size_t)w->row_table[r] * 64; }
static inline void ek_rows_each_q8(const ek_matrix *w, const int8_t *xq, int m, int ldx, int b0, int b1, int32_t *y,
                                   int ldy, ek_row_dot_q8 dot) {
    EK_ROWS_EACH(w, xq, m, ldx, b0, b1, y, ldy, dot, ek_row_tab_q8);
}

/* The AVX-512 q8 tiles' epilogue: the int32 sums acc[g * MT + mm] - CORR(g, mm) (the unsigned operand's
 * + 128 taken back; CORR gives a zmm) stored for G blocks x MT rows of x. */
#define EK_Q8_STORE_512(acc, G, MT, CORR, w, b, y, ldy)                                               \
    do {                                                                                            \
        _Pragma("GCC unroll 8") for (int g_ = 0; g_ < (G); g_++)                                    \
        _Pragma("GCC unroll 4") for (int mm_ = 0; mm_ < (MT); mm_++)                                \
            (acc)[g_ * (MT) + mm_] = _mm512_sub_epi32((acc)[g_ * (MT) + mm_], CORR(g_, mm_));       \
        EK_TILE_STORE(acc, G, MT, 1, _mm512_storeu_si512, w, b, y, ldy);                            \
    } while (0)

/* 4 activation bytes as one int32 (to broadcast to every 32-bit lane) */
static inline int32_t ek_q8_load4(const int8_t *p) {
    int32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

#endif
