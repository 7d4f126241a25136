/* 2:4 sparse + LUT product, AVX2+FMA: as sparse/avx512.c on two ymm halves per block; x of a
 * group is broadcast to both 128-bit halves and permuted in-lane by the 2-bit position. */
#include <immintrin.h>

#include "../src/avx2_lookup.h"
#include "../src/matrix.h"

#define AI static inline __attribute__((always_inline))

/* fixed-size arrays (not VLAs) so the compiler keeps them in registers */
AI void tile(const ek_matrix *w, const float *x, int ldx, int b, const int G, const int MT, const int bits,
             float *y, int ldy) {
    const int F = 32 / bits, cw = w->code_words, chunk_words = 1 + cw, chunks = w->kpad / 32;
    __m256 acc[8], Tlo[4], Thi[4];
    const uint32_t *p[4];
    #pragma GCC unroll 32
    for (int g = 0; g < G; g++) {
        const float *t = w->tables + (size_t)w->block_table[b + g] * 16;
        Tlo[g] = _mm256_loadu_ps(t);
        Thi[g] = _mm256_loadu_ps(t + 8);
        p[g] = ek_block(w, b + g);
    }
    #pragma GCC unroll 32
    for (int a = 0; a < 2 * G * MT; a++) acc[a] = _mm256_setzero_ps();
    for (int c = 0; c < chunks; c++) {
        __m256i pos[8], code[8];
        #pragma GCC unroll 32
        for (int g = 0; g < G; g++)
            for (int j = 0; j < chunk_words; j++)
                _mm_prefetch((const char *)(p[g] + ((size_t)c * chunk_words + EK_PF + j) * EK_LANES), _MM_HINT_T0);
        #pragma GCC unroll 32
        for (int h = 0; h < 2 * G; h++) {
            const uint32_t *cp = p[h / 2] + (size_t)c * chunk_words * EK_LANES + 8 * (h % 2);
            pos[h] = _mm256_loadu_si256((const __m256i *)cp);
            code[h] = _mm256_loadu_si256((const __m256i *)(cp + EK_LANES));
        }
        const float *xc = x + (size_t)c * 32;
#pragma GCC unroll 16
        for (int s = 0; s < 16; s++) {
            __m256 xg[4];
            #pragma GCC unroll 32
            for (int mm = 0; mm < MT; mm++)
                xg[mm] = _mm256_broadcast_ps((const __m128 *)(xc + (size_t)mm * ldx + 4 * (s / 2)));
            #pragma GCC unroll 32
            for (int h = 0; h < 2 * G; h++) {
                if (s > 0 && s % F == 0) {
                    const uint32_t *cp = p[h / 2] + (size_t)c * chunk_words * EK_LANES + 8 * (h % 2);
                    code[h] = _mm256_loadu_si256((const __m256i *)(cp + (size_t)(1 + s / F) * EK_LANES));
                }
                __m256 wv = ek_lookup8(code[h], Tlo[h / 2], Thi[h / 2], bits);
                code[h] = _mm256_srli_epi32(code[h], bits);
                #pragma GCC unroll 32
                for (int mm = 0; mm < MT; mm++) {
                    __m256 xv = _mm256_permutevar_ps(xg[mm], pos[h]);
                    acc[h * MT + mm] = _mm256_fmadd_ps(wv, xv, acc[h * MT + mm]);
                }
                pos[h] = _mm256_srli_epi32(pos[h], 2);
            }
        }
    }
    float out[EK_LANES];
    #pragma GCC unroll 32
    for (int g = 0; g < G; g++)
        #pragma GCC unroll 32
        for (int mm = 0; mm < MT; mm++) {
            _mm256_storeu_ps(out, acc[(2 * g) * MT + mm]);
            _mm256_storeu_ps(out + 8, acc[(2 * g + 1) * MT + mm]);
            ek_store_lanes(out, (b + g) * EK_LANES, w->n, y + (size_t)mm * ldy);
        }
}

#define EK_TILES(bits)                                                                                   \
    static void rows_##bits(const ek_matrix *w, const float *x, int m, int ldx, int b0, int b1, float *y, int ldy) { \
        for (int b = b0; b < b1;) {                                                                     \
            if (w->block_table[b] < 0) { ek_sparse_rows_ref(w, x, m, ldx, b, b + 1, y, ldy); b++; continue; } \
            if (m == 1) {                                                                               \
                int uniform = 0;                                                                        \
                while (b + uniform < b1 && uniform < 4 && w->block_table[b + uniform] >= 0) uniform++;  \
                if (uniform == 4) { tile(w, x, ldx, b, 4, 1, bits, y, ldy); b += 4; }                    \
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

void ek_sparse_rows_avx2(const ek_matrix *w, const float *x, int m, int ldx, int b0, int b1, float *y, int ldy) {
    if (w->bits == 2) rows_2(w, x, m, ldx, b0, b1, y, ldy);
    else if (w->bits == 3) rows_3(w, x, m, ldx, b0, b1, y, ldy);
    else rows_4(w, x, m, ldx, b0, b1, y, ldy);
}
