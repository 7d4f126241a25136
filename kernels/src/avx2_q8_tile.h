/* The int8-activation LUT tile for AVX2 (lut/avx2_q8.c, lut/avx2_q8_vnni.c): a block's 16 rows are two
 * ymm of 4 columns x 8 rows (one byte per weight). Index bytes as in avx512_q8.c, masked to the field
 * (pshufb reads 4 bits and zeroes on bit 7; 3 bits: each word and the word >> 3, for the 3 words
 * of a 32-column unit and its tail word, src/matrix.h); weights by pshufb on the 16-entry table. Products: with AVX-VNNI (EK_Q8_VNNI 1) vpdpbusd on
 * the table as tq + 128 (unsigned) and 128 sum(xq) subtracted at the end, as on AVX-512; else the
 * llama.cpp way, pmaddubsw(|x|, sign(w, x)) (no saturation: |x|, |w| <= 127) then pmaddwd with ones.
 * Exact int32 sums, equal to the reference. GEMV runs 4 blocks at once; GEMM 1 block x 4 rows of x.
 * Defines EK_Q8_NAME (an ek_rows_q8_fn). */
#include <immintrin.h>

#include "avx2_q8_dot.h"
#include "driver.h"
#include "lut3_words.h"
#include "q8.h"


/* m ? a : b, bitwise */

EK_AI __m256i index_bytes(__m256i v, const int s, const int bits) {  /* 2 and 4 bits (3: the tile's loop) */
    const __m256i mask = _mm256_set1_epi8(bits == 4 ? 0x0f : 0x03);
    return _mm256_and_si256(s ? _mm256_srli_epi32(v, bits == 4 ? 4 : 2 * s) : v, mask);
}

/* fixed-size arrays (not VLAs) so the compiler keeps them in registers */
EK_AI void tile(const ek_matrix *w, const int8_t *xq, int ldx, int b, const int G, const int MT, const int bits,
                const int shared, int32_t *y, int ldy) {
    const int words = w->words, NG = ek_q8_groups(bits);
    __m256i acc[8], T[4];
    const uint32_t *p[4];
    EK_TILE_STREAMS(p, w, b, G);
    #pragma GCC unroll 4
    for (int g = 0; g < G; g++)
        T[g] = _mm256_xor_si256(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(w->q8_tables + (size_t)w->block_table[b + g] * 64))),
                                _mm256_set1_epi8(EK_Q8_VNNI ? (char)0x80 : 0));
    #pragma GCC unroll 32
    for (int a = 0; a < 2 * G * MT; a++) acc[a] = _mm256_setzero_si256();
    if (bits == 3) {
        /* 32 columns in 3 words, read as 4 words of 8 columns (src/matrix.h): group 2i + h of a unit
         * is word i (>> 3 for h = 1) masked to 3 bits; word 3 is the tail word. */
        const __m256i m3 = _mm256_set1_epi8(7);
        for (int u = 0; u < words / 3; u++) {
            #pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                __m256i v[8];
                #pragma GCC unroll 8
                for (int h = 0; h < 2 * G; h++) {
                    v[h] = ek_lut3_word256(p[h / 2] + (size_t)3 * u * EK_LANES + 8 * (h % 2), i, h % 2 == 0);
                }
                #pragma GCC unroll 2
                for (int hh = 0; hh < 2; hh++) {
                    __m256i xb[4];
                    #pragma GCC unroll 4
                    for (int mm = 0; mm < MT; mm++) xb[mm] = _mm256_set1_epi32(ek_q8_load4(xq + (size_t)mm * ldx + (size_t)u * 32 + 8 * i + 4 * hh));
                    #pragma GCC unroll 8
                    for (int h = 0; h < 2 * G; h++) {
                        const __m256i ib = _mm256_and_si256(hh ? _mm256_srli_epi32(v[h], 3) : v[h], m3);
                        __m256i wq = _mm256_shuffle_epi8(T[h / 2], ib);
                        #pragma GCC unroll 4
                        for (int mm = 0; mm < MT; mm++) acc[h * MT + mm] = EK_Q8_DOT(acc[h * MT + mm], wq, xb[mm]);
                    }
                }
            }
        }
    } else
    for (int wi = 0; wi < words; wi++) {
        __m256i v[8];
        #pragma GCC unroll 4
        for (int g = 0; g < G; g++) _mm_prefetch((const char *)(p[g] + (size_t)(wi + EK_PF) * EK_LANES), _MM_HINT_T0);
        #pragma GCC unroll 8
        for (int h = 0; h < 2 * G; h++) v[h] = _mm256_loadu_si256((const __m256i *)(p[h / 2] + (size_t)wi * EK_LANES + 8 * (h % 2)));
        const int8_t *xw = xq + (size_t)wi * 4 * NG;
        #pragma GCC unroll 4
        for (int s = 0; s < NG; s++) {
            __m256i xb[4];
            #pragma GCC unroll 4
            for (int mm = 0; mm < MT; mm++) xb[mm] = _mm256_set1_epi32(ek_q8_load4(xw + (size_t)mm * ldx + 4 * s));
            #pragma GCC unroll 8
            for (int h = 0; h < 2 * G; h++) {
                __m256i wq = _mm256_shuffle_epi8(T[h / 2], index_bytes(v[h], s, bits));
                #pragma GCC unroll 4
                for (int mm = 0; mm < MT; mm++) {
                    acc[h * MT + mm] = EK_Q8_DOT(acc[h * MT + mm], wq, xb[mm]);  /* VNNI: wq = tq + 128 */
                }
            }
        }
    }
#if EK_Q8_VNNI
    #pragma GCC unroll 4
    for (int mm = 0; mm < MT; mm++) {
        const __m256i corr = _mm256_set1_epi32(128 * ek_q8_xsum(w, xq + (size_t)mm * ldx));
        #pragma GCC unroll 8
        for (int h = 0; h < 2 * G; h++) acc[h * MT + mm] = _mm256_sub_epi32(acc[h * MT + mm], corr);
    }
#endif
    EK_TILE_STORE(acc, G, MT, 2, _mm256_storeu_si256, w, b, y, ldy);
}

EK_AI void gemv_tile(const ek_matrix *w, const int8_t *xq, int b, const int G, const int bits, const int shared,
                     int32_t *y) {
    tile(w, xq, 0, b, G, 1, bits, shared, y, 0);
}

/* GEMV: 4 blocks a tile; GEMM: 1 block x 4 rows of x */
EK_ROWS_DRIVER_T(EK_Q8_NAME, int8_t, int32_t, gemv_tile, tile, ek_lut_q8_rows_ref, 4, 1, 4)
