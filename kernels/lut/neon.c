/* LUT product, NEON (AArch64): a block's 16 rows are four q registers. Per column: shift the index
 * words, look up (src/neon_lookup.h), fused multiply-add with x[k]. GEMV runs 2 blocks at once
 * (8 chains); GEMM shares decoded weights across 4 rows of x. The dot-product extension works on
 * int8 and would need quantized activations; fp32 activations keep fp32 FMAs. */
#include <arm_neon.h>

#include "../src/matrix.h"
#include "../src/neon_lookup.h"

#define AI static inline __attribute__((always_inline))

/* fixed-size arrays (not VLAs) so the compiler keeps them in registers */
AI void tile(const ek_matrix *w, const float *x, int ldx, int b, const int G, const int MT, const int bits,
             float *y, int ldy) {
    const int F = 32 / bits, words = w->words;
    float32x4_t acc[16];
    uint8x16x4_t T[2];
    const uint32_t *p[2];
    #pragma GCC unroll 32
    for (int g = 0; g < G; g++) {
        T[g] = ek_table16(w->tables + (size_t)w->block_table[b + g] * 16);
        p[g] = ek_block(w, b + g);
    }
    #pragma GCC unroll 32
    for (int a = 0; a < 4 * G * MT; a++) acc[a] = vdupq_n_f32(0.0f);
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
    float out[EK_LANES];
    #pragma GCC unroll 32
    for (int g = 0; g < G; g++)
        #pragma GCC unroll 32
        for (int mm = 0; mm < MT; mm++) {
            #pragma GCC unroll 32
            for (int q = 0; q < 4; q++) vst1q_f32(out + 4 * q, acc[(4 * g + q) * MT + mm]);
            ek_store_lanes(out, (b + g) * EK_LANES, w->n, y + (size_t)mm * ldy);
        }
}

#define EK_TILES(bits)                                                                                   \
    static void rows_##bits(const ek_matrix *w, const float *x, int m, int ldx, int b0, int b1, float *y, int ldy) { \
        for (int b = b0; b < b1;) {                                                                     \
            if (w->block_table[b] < 0) { ek_lut_rows_ref(w, x, m, ldx, b, b + 1, y, ldy); b++; continue; } \
            if (m == 1) {                                                                               \
                if (b + 1 < b1 && w->block_table[b + 1] >= 0) { tile(w, x, ldx, b, 2, 1, bits, y, ldy); b += 2; } \
                else { tile(w, x, ldx, b, 1, 1, bits, y, ldy); b++; }                                    \
                continue;                                                                               \
            }                                                                                           \
            int mi = 0;                                                                                 \
            for (; mi + 4 <= m; mi += 4) tile(w, x + (size_t)mi * ldx, ldx, b, 1, 4, bits, y + (size_t)mi * ldy, ldy); \
            for (; mi < m; mi++) tile(w, x + (size_t)mi * ldx, ldx, b, 1, 1, bits, y + (size_t)mi * ldy, ldy); \
            b++;                                                                                        \
        }                                                                                               \
    }

EK_TILES(2)
EK_TILES(3)
EK_TILES(4)

void ek_lut_rows_neon(const ek_matrix *w, const float *x, int m, int ldx, int b0, int b1, float *y, int ldy) {
    if (w->bits == 2) rows_2(w, x, m, ldx, b0, b1, y, ldy);
    else if (w->bits == 3) rows_3(w, x, m, ldx, b0, b1, y, ldy);
    else rows_4(w, x, m, ldx, b0, b1, y, ldy);
}
