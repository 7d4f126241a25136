/* 2:4 sparse + LUT product, NEON (AArch64): as sparse/avx512.c on four q registers per block;
 * x of a group (16 bytes) is permuted per lane by the 2-bit position with vqtbl1q_u8. */
#include <arm_neon.h>

#include "../src/matrix.h"
#include "../src/neon_lookup.h"

#define AI static inline __attribute__((always_inline))

/* fixed-size arrays (not VLAs) so the compiler keeps them in registers */
AI void tile(const ek_matrix *w, const float *x, int ldx, int b, const int G, const int MT, const int bits,
             float *y, int ldy) {
    const int F = 32 / bits, cw = w->code_words, chunk_words = 1 + cw, chunks = w->kpad / 32;
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
    for (int c = 0; c < chunks; c++) {
        uint32x4_t pos[8], code[8];
        #pragma GCC unroll 32
        for (int g = 0; g < G; g++)
            for (int j = 0; j < chunk_words; j++)
                __builtin_prefetch(p[g] + ((size_t)c * chunk_words + EK_PF + j) * EK_LANES);
        #pragma GCC unroll 32
        for (int q = 0; q < 4 * G; q++) {
            const uint32_t *cp = p[q / 4] + (size_t)c * chunk_words * EK_LANES + 4 * (q % 4);
            pos[q] = vld1q_u32(cp);
            code[q] = vld1q_u32(cp + EK_LANES);
        }
        const float *xc = x + (size_t)c * 32;
        for (int s = 0; s < 16; s++) {
            uint8x16_t xg[4];
            #pragma GCC unroll 32
            for (int mm = 0; mm < MT; mm++) xg[mm] = vld1q_u8((const uint8_t *)(xc + (size_t)mm * ldx + 4 * (s / 2)));
            #pragma GCC unroll 32
            for (int q = 0; q < 4 * G; q++) {
                if (s > 0 && s % F == 0) {
                    const uint32_t *cp = p[q / 4] + (size_t)c * chunk_words * EK_LANES + 4 * (q % 4);
                    code[q] = vld1q_u32(cp + (size_t)(1 + s / F) * EK_LANES);
                }
                float32x4_t wv = ek_lookup(T[q / 4], code[q], bits);
                code[q] = vshrq_n_u32(code[q], bits);
                uint8x16_t bi = ek_bytes_of(pos[q], 3);
                #pragma GCC unroll 32
                for (int mm = 0; mm < MT; mm++) {
                    float32x4_t xv = vreinterpretq_f32_u8(vqtbl1q_u8(xg[mm], bi));
                    acc[q * MT + mm] = vfmaq_f32(acc[q * MT + mm], wv, xv);
                }
                pos[q] = vshrq_n_u32(pos[q], 2);
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
            if (w->block_table[b] < 0) { ek_sparse_rows_ref(w, x, m, ldx, b, b + 1, y, ldy); b++; continue; } \
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

void ek_sparse_rows_neon(const ek_matrix *w, const float *x, int m, int ldx, int b0, int b1, float *y, int ldy) {
    if (w->bits == 2) rows_2(w, x, m, ldx, b0, b1, y, ldy);
    else if (w->bits == 3) rows_3(w, x, m, ldx, b0, b1, y, ldy);
    else rows_4(w, x, m, ldx, b0, b1, y, ldy);
}
