/* LUT product, NEON (AArch64): a block's 16 rows are four q registers. Per column: shift the index
 * words, look up (src/neon_lookup.h), fused multiply-add with x[k]. GEMV runs 2 blocks at once
 * (8 chains); GEMM shares decoded weights across 4 rows of x. The dot-product extension works on
 * int8 and would need quantized activations; fp32 activations keep fp32 FMAs. */
#include <arm_neon.h>

#include "../src/driver.h"
#include "../src/neon_lookup.h"

#define AI EK_AI
#define STORE_Q(dst, v) vst1q_f32(dst, v)

/* fixed-size arrays (not VLAs) so the compiler keeps them in registers */
AI void tile(const ek_matrix *w, const float *x, int ldx, int b, const int G, const int MT, const int bits,
             const int shared, float *y, int ldy) {
    const int F = 32 / bits, words = w->words;
    float32x4_t acc[16];
    uint8x16x4_t T[2];
    const uint32_t *p[2];
    #pragma GCC unroll 32
    for (int g = 0; g < G; g++) T[g] = ek_table16(ek_block_tab(w, b + g));
    EK_TILE_STREAMS(p, w, b, G);
    #pragma GCC unroll 32
    for (int a = 0; a < 4 * G * MT; a++) acc[a] = vdupq_n_f32(0.0f);
    if (bits == 3) {
        /* 32 columns in 3 words, read as 4 words of 8 columns (src/matrix.h): column 8i + 4h + b is
         * word i >> (8b + 3h); word 3 is the tail word (vbsl). Columns in order, as the reference. */
        for (int u = 0; u < words / 3; u++) {
            for (int i = 0; i < 4; i++) {
                uint32x4_t v[8];
                #pragma GCC unroll 8
                for (int q = 0; q < 4 * G; q++) {
                    const uint32_t *pu = p[q / 4] + (size_t)3 * u * EK_LANES + 4 * (q % 4);
                    if (i < 3) v[q] = vld1q_u32(pu + (size_t)i * EK_LANES);
                    else v[q] = EK_LUT3_TAIL(vld1q_u32(pu), vld1q_u32(pu + EK_LANES), vld1q_u32(pu + 2 * EK_LANES),
                                             vshrq_n_u32, vbslq_u32, vdupq_n_u32);
                }
                if (i < 3) {
                    #pragma GCC unroll 2
                    for (int g = 0; g < G; g++) __builtin_prefetch(p[g] + (size_t)(3 * u + i + EK_PF) * EK_LANES);
                }
                const float *xi = x + (size_t)u * 32 + 8 * i;
                #pragma GCC unroll 8
                for (int r = 0; r < 8; r++) {
                    const int sh = 8 * (r % 4) + 3 * (r / 4);
                    #pragma GCC unroll 8
                    for (int q = 0; q < 4 * G; q++) {
                        float32x4_t wv = ek_lookup(T[q / 4], vshlq_u32(v[q], vdupq_n_s32(-sh)), 3);
                        #pragma GCC unroll 4
                        for (int mm = 0; mm < MT; mm++)
                            acc[q * MT + mm] = vfmaq_n_f32(acc[q * MT + mm], wv, xi[(size_t)mm * ldx + r]);
                    }
                }
            }
        }
        EK_TILE_STORE(acc, G, MT, 4, STORE_Q, w, b, y, ldy);
        return;
    }
    for (int wi = 0; wi < words; wi++) {
        uint32x4_t v[8];
        #pragma GCC unroll 32
        for (int g = 0; g < G; g++) __builtin_prefetch(p[g] + (size_t)(wi + EK_PF) * EK_LANES);
        #pragma GCC unroll 32
        for (int q = 0; q < 4 * G; q++) v[q] = vld1q_u32(p[q / 4] + (size_t)wi * EK_LANES + 4 * (q % 4));
        const float *xk = x + (size_t)wi * F;
        if (bits == 2) {  /* column pairs, in the reference's order: acc += fma(T[hi], x1, T[lo] * x0) */
            for (int j = 0; j < 8; j++) {
                #pragma GCC unroll 32
                for (int q = 0; q < 4 * G; q++) {
                    float32x4_t lo = ek_lookup(T[q / 4], v[q], 2), hi = ek_lookup(T[q / 4], vshrq_n_u32(v[q], 2), 2);
                    v[q] = vshrq_n_u32(v[q], 4);
                    #pragma GCC unroll 32
                    for (int mm = 0; mm < MT; mm++) {
                        float32x4_t pv = vfmaq_n_f32(vmulq_n_f32(lo, xk[(size_t)mm * ldx + 2 * j]), hi,
                                                     xk[(size_t)mm * ldx + 2 * j + 1]);
                        acc[q * MT + mm] = vaddq_f32(acc[q * MT + mm], pv);
                    }
                }
            }
            continue;
        }
        for (int i = 0; i < F; i++) {
            #pragma GCC unroll 32
            for (int q = 0; q < 4 * G; q++) {
                float32x4_t wv = ek_lookup(T[q / 4], v[q], bits);
                v[q] = vshrq_n_u32(v[q], bits);
                #pragma GCC unroll 32
                for (int mm = 0; mm < MT; mm++)
                    acc[q * MT + mm] = vfmaq_n_f32(acc[q * MT + mm], wv, xk[(size_t)mm * ldx + i]);
            }
        }
    }
    EK_TILE_STORE(acc, G, MT, 4, STORE_Q, w, b, y, ldy);
}

AI void gemv_tile(const ek_matrix *w, const float *x, int b, const int G, const int bits, const int shared,
                  float *y) {
    tile(w, x, 0, b, G, 1, bits, shared, y, 0);
}

/* GEMV: 2 blocks a tile; GEMM: 1 block x 4 rows of x */
EK_ROWS_DRIVER(ek_lut_rows_neon, gemv_tile, tile, ek_lut_rows_ref, 2, 1, 4)
