/* LUT product with int8 activations (lut/q8.c), AVX-512 VNNI + VBMI: one zmm = 4 columns of the
 * 16 rows of a block, one byte per weight. Per word row of a block (16 rows x F columns):
 *   index bytes: 4 bits: the word itself (low nibbles: columns 0 2 4 6) and the word >> 4 (1 3 5 7);
 *                3 bits (32 columns in 3 words, src/matrix.h): each word and the word >> 3 as
 *                they are, for the 3 words and the unit's tail word (3 shifts, 2 vpternlogd);
 *                2 bits: the word >> 2s (byte j: column 4j + s);
 *   weights:     vpermb on the 64-byte table (64 entries, tq + 128 as unsigned bytes): it reads the
 *                low 6 bits of each byte, and the table repeats every 2^bits, so no masking;
 *   products:    vpdpbusd with the 4 activations of that group broadcast: 64 multiply-adds.
 * sum (tq + 128) xq = S + 128 sum(xq): the sum of the row's xq (stored after it) is subtracted.
 * GEMV runs 8 blocks at once (3 bits: 4); GEMM 2 blocks x 4 rows of x. Integer sums: equal to the reference. */
#include <immintrin.h>

#include "../src/driver.h"
#include "../src/lut3_words.h"
#include "../src/q8.h"

#define AI EK_AI


/* the index bytes of group s of a word row (see above; 3 bits: the tile's own loop) */
AI __m512i index_bytes(__m512i v, const int s, const int bits) {
    if (s == 0) return v;
    return _mm512_srli_epi32(v, bits == 4 ? 4 : 2 * s);
}

/* fixed-size arrays (not VLAs) so the compiler keeps them in registers */
AI void tile(const ek_matrix *w, const int8_t *xq, int ldx, int b, const int G, const int MT, const int bits,
             const int shared, int32_t *y, int ldy) {
    const int words = w->words, NG = ek_q8_groups(bits), TG = shared ? 1 : G;
    __m512i acc[8], T[8], TB[1];
    const uint32_t *p[8];
    EK_TILE_STREAMS(p, w, b, G);
    #pragma GCC unroll 8
    for (int g = 0; g < TG; g++)
        T[g] = _mm512_xor_si512(_mm512_loadu_si512((const void *)(w->q8_tables + (size_t)w->block_table[b + g] * 64)),
                                _mm512_set1_epi8((char)0x80));
    #pragma GCC unroll 32
    for (int a = 0; a < G * MT; a++) acc[a] = _mm512_setzero_si512();
    if (bits == 3) {
        const __m512i hi3 = _mm512_srli_epi16(_mm512_set_epi8(
            63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40,
            39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16,
            15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 3);  /* byte c: c >> 3 (c < 64: no carry) */
        TB[0] = _mm512_permutexvar_epi8(hi3, T[0]);
        /* 32 columns in 3 words, read as 4 words of 8 columns (src/matrix.h): group 2i + h of a unit
         * is word i (h = 0) or word i >> 3 (vpermb reads 6 bits, the table repeats every 8); word 3,
         * the tail word, costs 3 shifts and 2 vpternlogd. 8 vpermb and no vpmultishiftqb a unit. */
        for (int u = 0; u < words / 3; u++) {
            __m512i wd[8][3], v[8];  /* wd: the unit's 3 word rows per block, kept for its tail word */
            #pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                ek_lut3_unit512(p, u, i, G, wd, v);
                const int8_t *xi = xq + (size_t)u * 32 + 8 * i;
                #pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    #pragma GCC unroll 8
                    for (int g = 0; g < G; g++) {
                        /* h = 1: bits 3-5 of each byte; with one table looked up in TB (TB[c] = T[c >> 3]):
                         * no shift (G tables: shifted, to keep 8 more zmm free) */
                        const __m512i wb = h ? (shared ? _mm512_permutexvar_epi8(v[g], TB[0])
                                                       : _mm512_permutexvar_epi8(_mm512_srli_epi32(v[g], 3), T[g]))
                                             : _mm512_permutexvar_epi8(v[g], T[shared ? 0 : g]);
                        #pragma GCC unroll 4
                        for (int mm = 0; mm < MT; mm++)
                            acc[g * MT + mm] = _mm512_dpbusd_epi32(acc[g * MT + mm], wb, _mm512_set1_epi32(ek_q8_load4(xi + (size_t)mm * ldx + 4 * h)));
                    }
                }
            }
        }
    } else
    for (int wi = 0; wi < words; wi++) {
        __m512i v[8];
        if (bits > 2) {
            #pragma GCC unroll 8
            for (int g = 0; g < G; g++) _mm_prefetch((const char *)(p[g] + (size_t)(wi + EK_PF) * EK_LANES), _MM_HINT_T0);
        }
        #pragma GCC unroll 8
        for (int g = 0; g < G; g++) v[g] = _mm512_loadu_si512((const void *)(p[g] + (size_t)wi * EK_LANES));
        const int8_t *xw = xq + (size_t)wi * 4 * NG;
        #pragma GCC unroll 4
        for (int s = 0; s < NG; s++) {
            #pragma GCC unroll 8
            for (int g = 0; g < G; g++) {
                __m512i wb = _mm512_permutexvar_epi8(index_bytes(v[g], s, bits), T[shared ? 0 : g]);
                #pragma GCC unroll 4
                for (int mm = 0; mm < MT; mm++)
                    acc[g * MT + mm] = _mm512_dpbusd_epi32(acc[g * MT + mm], wb, _mm512_set1_epi32(ek_q8_load4(xw + (size_t)mm * ldx + 4 * s)));
            }
        }
    }
    /* 128 sum(xq) of x row mm */
#define XSUM_CORR(g, mm) _mm512_set1_epi32(128 * ek_q8_xsum(w, xq + (size_t)(mm) * ldx))
    EK_Q8_STORE_512(acc, G, MT, XSUM_CORR, w, b, y, ldy);
}

/* 3-bit GEMV: 4 blocks a tile, whose 12 word rows a unit stay in registers for the tail word
 * (measured 1-4% faster than 8 blocks) */
#define EK_LUT3Q8_GV 4
AI void gemv_tile(const ek_matrix *w, const int8_t *x, int b, const int G, const int bits, const int shared, int32_t *y) {
    if (bits == 3 && EK_LUT3Q8_GV < G) {
        #pragma GCC unroll 8
        for (int h = 0; h < G; h += EK_LUT3Q8_GV) tile(w, x, 0, b + h, EK_LUT3Q8_GV, 1, bits, shared, y, 0);
    } else tile(w, x, 0, b, G, 1, bits, shared, y, 0);
}

/* GEMV: 8 blocks a tile; GEMM: 2 blocks x 4 rows of x */
EK_ROWS_DRIVER_T(ek_lut_q8_rows_avx512, int8_t, int32_t, gemv_tile, tile, ek_lut_q8_rows_ref, 8, 2, 4)
