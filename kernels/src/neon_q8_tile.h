/* The int8-activation LUT tile for NEON (lut/neon_q8.c, lut/neon_q8_dot.c): a block's 16 rows are four
 * q registers of 4 columns x 4 rows (one byte per weight). Index bytes as in src/avx2_q8_tile.h, masked to
 * the field (tbl gives 0 past 16 entries); weights by tbl on the signed 16-entry table; products by
 * EK_Q8_DOT(acc, w, x) (src/neon_q8_dot.h): sdot where the dot-product extension exists, else smull
 * + pairwise adds.
 * Exact int32 sums: equal to the reference. GEMV runs 2 blocks at once; GEMM 1 block x 4 rows of x.
 * Defines EK_Q8_NAME (an ek_rows_q8_fn). */
#include <arm_neon.h>

#include "driver.h"
#include "neon_q8_dot.h"
#include "q8.h"

EK_AI int8x16_t q8_bcast4(const int8_t *p) { return vreinterpretq_s8_s32(vdupq_n_s32(ek_q8_load4(p))); }

EK_AI uint8x16_t q8_index_bytes(uint32x4_t v, const int s, const int bits) {  /* 2 and 4 bits */
    uint32x4_t u = v;
    if (bits == 4 && s == 1) u = vshrq_n_u32(v, 4);
    if (bits == 2 && s == 1) u = vshrq_n_u32(v, 2);
    if (bits == 2 && s == 2) u = vshrq_n_u32(v, 4);
    if (bits == 2 && s == 3) u = vshrq_n_u32(v, 6);
    return vandq_u8(vreinterpretq_u8_u32(u), vdupq_n_u8(bits == 4 ? 0x0f : 0x03));
}

/* fixed-size arrays (not VLAs) so the compiler keeps them in registers */
EK_AI void q8_tile(const ek_matrix *w, const int8_t *xq, int ldx, int b, const int G, const int MT, const int bits,
                   const int shared, int32_t *y, int ldy) {
    const int words = w->words, NG = ek_q8_groups(bits);
    int32x4_t acc[16];
    int8x16_t T[2];
    const uint32_t *p[2];
    EK_TILE_STREAMS(p, w, b, G);
    _Pragma("GCC unroll 2") for (int g = 0; g < G; g++) T[g] = vld1q_s8(w->q8_tables + (size_t)w->block_table[b + g] * 64);
    _Pragma("GCC unroll 32") for (int a = 0; a < 4 * G * MT; a++) acc[a] = vdupq_n_s32(0);
    if (bits == 3) {
        /* 32 columns in 3 words, read as 4 words of 8 columns (src/matrix.h): group 2i + h of a unit
         * is word i (>> 3 for h = 1) masked to 3 bits; word 3 is the tail word (vbsl). */
        for (int u = 0; u < words / 3; u++) {
            for (int i = 0; i < 4; i++) {
                uint32x4_t v[8];
                _Pragma("GCC unroll 8") for (int q = 0; q < 4 * G; q++) {
                    const uint32_t *pu = p[q / 4] + (size_t)3 * u * EK_LANES + 4 * (q % 4);
                    if (i < 3) v[q] = vld1q_u32(pu + (size_t)i * EK_LANES);
                    else v[q] = EK_LUT3_TAIL(vld1q_u32(pu), vld1q_u32(pu + EK_LANES), vld1q_u32(pu + 2 * EK_LANES),
                                             vshrq_n_u32, vbslq_u32, vdupq_n_u32);
                }
                if (i < 3) _Pragma("GCC unroll 2") for (int g = 0; g < G; g++) __builtin_prefetch(p[g] + (size_t)(3 * u + i + EK_PF) * EK_LANES);
                _Pragma("GCC unroll 2") for (int hh = 0; hh < 2; hh++) {
                    int8x16_t xb[4];
                    _Pragma("GCC unroll 4") for (int mm = 0; mm < MT; mm++) xb[mm] = q8_bcast4(xq + (size_t)mm * ldx + (size_t)u * 32 + 8 * i + 4 * hh);
                    _Pragma("GCC unroll 8") for (int q = 0; q < 4 * G; q++) {
                        const uint8x16_t ib = vandq_u8(vreinterpretq_u8_u32(hh ? vshrq_n_u32(v[q], 3) : v[q]), vdupq_n_u8(7));
                        int8x16_t wq = vqtbl1q_s8(T[q / 4], ib);
                        _Pragma("GCC unroll 4") for (int mm = 0; mm < MT; mm++) acc[q * MT + mm] = EK_Q8_DOT(acc[q * MT + mm], wq, xb[mm]);
                    }
                }
            }
        }
    } else
    for (int wi = 0; wi < words; wi++) {
        uint32x4_t v[8];
        _Pragma("GCC unroll 2") for (int g = 0; g < G; g++) __builtin_prefetch(p[g] + (size_t)(wi + EK_PF) * EK_LANES);
        _Pragma("GCC unroll 8") for (int q = 0; q < 4 * G; q++) v[q] = vld1q_u32(p[q / 4] + (size_t)wi * EK_LANES + 4 * (q % 4));
        const int8_t *xw = xq + (size_t)wi * 4 * NG;
        _Pragma("GCC unroll 4") for (int s = 0; s < NG; s++) {
            int8x16_t xb[4];
            _Pragma("GCC unroll 4") for (int mm = 0; mm < MT; mm++) xb[mm] = q8_bcast4(xw + (size_t)mm * ldx + 4 * s);
            _Pragma("GCC unroll 8") for (int q = 0; q < 4 * G; q++) {
                int8x16_t wq = vqtbl1q_s8(T[q / 4], q8_index_bytes(v[q], s, bits));
                _Pragma("GCC unroll 4") for (int mm = 0; mm < MT; mm++) acc[q * MT + mm] = EK_Q8_DOT(acc[q * MT + mm], wq, xb[mm]);
            }
        }
    }
    EK_TILE_STORE(acc, G, MT, 4, vst1q_s32, w, b, y, ldy);
}

EK_GEMV_OF_TILE(q8_gemv_tile, q8_tile, int8_t, int32_t)

EK_ROWS_DRIVER_T(EK_Q8_NAME, int8_t, int32_t, q8_gemv_tile, q8_tile, ek_lut_q8_rows_ref, 2, 1, 4)
