/* LUT product, AVX2+FMA: a block's 16 rows are two ymm halves. Per column: shift the index words,
 * look up (src/avx2_lookup.h), FMA with x[k] broadcast. GEMV runs 4 blocks at once (8 chains);
 * GEMM shares the decoded weights across 4 rows of x. Mixed-table blocks use the reference. */
#include <immintrin.h>

#include "../src/avx2_lookup.h"
#include "../src/driver.h"
#include "../src/lut3_words.h"

#define AI EK_AI
#define STORE_YMM(dst, v) _mm256_storeu_ps(dst, v)
/* m ? a : b, bitwise */

/* fixed-size arrays (not VLAs) so the compiler keeps them in registers */
AI void tile(const ek_matrix *w, const float *x, int ldx, int b, const int G, const int MT, const int bits,
             const int shared, float *y, int ldy) {
    const int F = 32 / bits, words = w->words;
    __m256 acc[8], Tlo[4], Thi[4];
    const uint32_t *p[4];
    #pragma GCC unroll 32
    for (int g = 0; g < G; g++) {
        Tlo[g] = _mm256_loadu_ps(ek_block_tab(w, b + g));
        Thi[g] = _mm256_loadu_ps(ek_block_tab(w, b + g) + 8);
    }
    EK_TILE_STREAMS(p, w, b, G);
    #pragma GCC unroll 32
    for (int a = 0; a < 2 * G * MT; a++) acc[a] = _mm256_setzero_ps();
    if (bits == 3) {
        /* 32 columns in 3 words, read as 4 words of 8 columns (src/matrix.h): column 8i + 4h + b is
         * word i >> (8b + 3h) (the lookup reads 3 bits); word 3 is the tail word. Columns in order. */
        for (int u = 0; u < words / 3; u++) {
            #pragma GCC unroll 1
            for (int i = 0; i < 4; i++) {
                __m256i v[8];
                #pragma GCC unroll 8
                for (int h = 0; h < 2 * G; h++) {
                    v[h] = ek_lut3_word256(p[h / 2] + (size_t)3 * u * EK_LANES + 8 * (h % 2), i, h % 2 == 0);
                }
                const float *xi = x + (size_t)u * 32 + 8 * i;
                #pragma GCC unroll 8
                for (int r = 0; r < 8; r++) {
                    const int sh = 8 * (r % 4) + 3 * (r / 4);
                    #pragma GCC unroll 8
                    for (int h = 0; h < 2 * G; h++) {
                        __m256 wv = ek_lookup8(sh ? _mm256_srli_epi32(v[h], sh) : v[h], Tlo[h / 2], Thi[h / 2], 3);
                        #pragma GCC unroll 4
                        for (int mm = 0; mm < MT; mm++)
                            acc[h * MT + mm] = _mm256_fmadd_ps(wv, _mm256_set1_ps(xi[(size_t)mm * ldx + r]), acc[h * MT + mm]);
                    }
                }
            }
        }
        EK_TILE_STORE(acc, G, MT, 2, STORE_YMM, w, b, y, ldy);
        return;
    }
    for (int wi = 0; wi < words; wi++) {
        __m256i v[8];
        #pragma GCC unroll 32
        for (int g = 0; g < G; g++) _mm_prefetch((const char *)(p[g] + (size_t)(wi + EK_PF) * EK_LANES), _MM_HINT_T0);
        #pragma GCC unroll 32
        for (int g = 0; g < G; g++) {
            v[2 * g] = _mm256_loadu_si256((const __m256i *)(p[g] + (size_t)wi * EK_LANES));
            v[2 * g + 1] = _mm256_loadu_si256((const __m256i *)(p[g] + (size_t)wi * EK_LANES + 8));
        }
        const float *xk = x + (size_t)wi * F;
        if (bits == 2) {  /* column pairs, in the reference's order: acc += fma(T[hi], x1, T[lo] * x0) */
            #pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                #pragma GCC unroll 32
                for (int h = 0; h < 2 * G; h++) {
                    __m256 lo = ek_lookup8(v[h], Tlo[h / 2], Thi[h / 2], 2);
                    __m256 hi = ek_lookup8(_mm256_srli_epi32(v[h], 2), Tlo[h / 2], Thi[h / 2], 2);
                    v[h] = _mm256_srli_epi32(v[h], 4);
                    #pragma GCC unroll 32
                    for (int mm = 0; mm < MT; mm++) {
                        __m256 pv = _mm256_fmadd_ps(hi, _mm256_set1_ps(xk[(size_t)mm * ldx + 2 * j + 1]),
                                                    _mm256_mul_ps(lo, _mm256_set1_ps(xk[(size_t)mm * ldx + 2 * j])));
                        acc[h * MT + mm] = _mm256_add_ps(acc[h * MT + mm], pv);
                    }
                }
            }
            continue;
        }
#pragma GCC unroll 16
        for (int i = 0; i < F; i++) {
            #pragma GCC unroll 32
            for (int h = 0; h < 2 * G; h++) {
                __m256 wv = ek_lookup8(v[h], Tlo[h / 2], Thi[h / 2], bits);
                v[h] = _mm256_srli_epi32(v[h], bits);
                #pragma GCC unroll 32
                for (int mm = 0; mm < MT; mm++)
                    acc[h * MT + mm] = _mm256_fmadd_ps(wv, _mm256_set1_ps(xk[(size_t)mm * ldx + i]), acc[h * MT + mm]);
            }
        }
    }
    EK_TILE_STORE(acc, G, MT, 2, STORE_YMM, w, b, y, ldy);
}

AI void gemv_tile(const ek_matrix *w, const float *x, int b, const int G, const int bits, const int shared,
                  float *y) {
    tile(w, x, 0, b, G, 1, bits, shared, y, 0);
}

/* GEMV: 4 blocks a tile; GEMM: 1 block x 4 rows of x */
EK_ROWS_DRIVER(ek_lut_rows_avx2, gemv_tile, tile, ek_lut_rows_ref, 4, 1, 4)
