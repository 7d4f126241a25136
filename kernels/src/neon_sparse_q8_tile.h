/* The int8-activation 2:4 tile for NEON (sparse/neon_q8.c, sparse/neon_q8_dot.c), 4-bit codes (2- and
 * 3-bit codes run the scalar reference): a block's 16 rows are four q registers of 4 rows, one 32-bit
 * lane per row holding 4 kept weights, as in src/avx2_sparse_q8_tile.h with tbl for pshufb: per code
 * word cw of a chunk, weights by tbl on the signed 16-entry table (low nibbles: the first kept weight
 * of each group, high: the second); the position nibble of group j to byte j (tbl + a 16-bit shift);
 * activations by tbl on the 16 bytes of xq of those columns; both operands signed, so no correction:
 * EK_Q8_DOT (src/neon_q8_dot.h). Exact int32 sums, equal to the reference. GEMV runs 2 blocks at
 * once; GEMM 1 block x 4 rows of x. Defines EK_Q8_NAME (an ek_rows_q8_fn). */
#include <arm_neon.h>

#include "driver.h"
#include "neon_q8_dot.h"
#include "q8.h"
#include "sparse_pos.h"

/* byte j of each 32-bit lane: nibble 4 cw + j of the lane's position word p, in its low 4 bits */
EK_AI uint8x16_t sq8_nibbles(uint32x4_t p, const int cw) {
    static const uint8_t dup[2][16] = {{0, 0, 1, 1, 4, 4, 5, 5, 8, 8, 9, 9, 12, 12, 13, 13},
                                       {2, 2, 3, 3, 6, 6, 7, 7, 10, 10, 11, 11, 14, 14, 15, 15}};
    const uint16x8_t d = vreinterpretq_u16_u8(vqtbl1q_u8(vreinterpretq_u8_u32(p), vld1q_u8(dup[cw])));
    return vreinterpretq_u8_u16(vorrq_u16(vandq_u16(d, vdupq_n_u16(0x000f)), vandq_u16(vshrq_n_u16(d, 4), vdupq_n_u16(0x0f00))));
}

/* fixed-size arrays (not VLAs) so the compiler keeps them in registers */
EK_AI void sq8_tile(const ek_matrix *w, const int8_t *xq, int ldx, int b, const int G, const int MT, const int bits,
                    const int shared, int32_t *y, int ldy) {
    if (bits != 4) { ek_sparse_q8_rows_ref(w, xq, MT, ldx, b, b + G, y, ldy); return; }
    const int chunk_words = 1 + w->code_words, chunks = w->kpad / 32;
    int32x4_t acc[16];
    int8x16_t T[2];
    const uint32_t *p[2];
    EK_TILE_STREAMS(p, w, b, G);
    _Pragma("GCC unroll 2") for (int g = 0; g < G; g++) T[g] = vld1q_s8(w->q8_tables + (size_t)w->block_table[b + g] * 64);
    const uint8x16_t low4 = vdupq_n_u8(0x0f), three = vdupq_n_u8(3), off = vreinterpretq_u8_u32(vdupq_n_u32(0x0C080400));
    _Pragma("GCC unroll 32") for (int a = 0; a < 4 * G * MT; a++) acc[a] = vdupq_n_s32(0);
    for (int c = 0; c < chunks; c++) {
        const size_t at = ek_sparse_chunk_at(w, c), codes = ek_sparse_codes_at(w, c);
        EK_SPARSE_PREFETCH(p, G, at, chunk_words);
        uint32x4_t pos[8];
        _Pragma("GCC unroll 8") for (int q = 0; q < 4 * G; q++) pos[q] = ek_sparse_pos128(p[q / 4] + 4 * (q % 4), c, at, chunk_words);
        _Pragma("GCC unroll 2") for (int cw = 0; cw < 2; cw++) {
            int8x16_t xa[4];
            _Pragma("GCC unroll 4") for (int mm = 0; mm < MT; mm++) xa[mm] = vld1q_s8(xq + (size_t)mm * ldx + (size_t)c * 32 + 16 * cw);
            _Pragma("GCC unroll 8") for (int q = 0; q < 4 * G; q++) {
                const uint32_t *bp = p[q / 4] + 4 * (q % 4);
                const uint8x16_t code = vreinterpretq_u8_u32(vld1q_u32(bp + (codes + (size_t)cw) * EK_LANES));
                const uint8x16_t nib = sq8_nibbles(pos[q], cw);
                const int8x16_t tab = T[shared ? 0 : q / 4];
                const int8x16_t w0 = vqtbl1q_s8(tab, vandq_u8(code, low4)), w1 = vqtbl1q_s8(tab, vshrq_n_u8(code, 4));
                const uint8x16_t i0 = vorrq_u8(vandq_u8(nib, three), off);
                const uint8x16_t i1 = vorrq_u8(vandq_u8(vshrq_n_u8(nib, 2), three), off);
                _Pragma("GCC unroll 4") for (int mm = 0; mm < MT; mm++) {
                    acc[q * MT + mm] = EK_Q8_DOT(acc[q * MT + mm], w0, vqtbl1q_s8(xa[mm], i0));
                    acc[q * MT + mm] = EK_Q8_DOT(acc[q * MT + mm], w1, vqtbl1q_s8(xa[mm], i1));
                }
            }
        }
    }
    EK_TILE_STORE(acc, G, MT, 4, vst1q_s32, w, b, y, ldy);
}

EK_GEMV_OF_TILE(sq8_gemv_tile, sq8_tile, int8_t, int32_t)

EK_ROWS_DRIVER_T(EK_Q8_NAME, int8_t, int32_t, sq8_gemv_tile, sq8_tile, ek_sparse_q8_rows_ref, 2, 1, 4)
