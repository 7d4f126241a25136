/* LUT product, AVX-512F: one zmm = the same column of the 16 rows of a block.
 * Per column: shift the block's index word down (vpsrld), look the 16 lanes up in the block's
 * 16-entry table (vpermps reads the low 4 bits of each lane), FMA with x[k] broadcast.
 * GEMV runs 8 blocks at once (8 independent accumulator chains); GEMM shares each decoded
 * weight vector across 8 rows of x. Blocks mixing two tables use the reference.
 * 2-bit weights add precomputed column-pair values instead (see the bits == 2 branch); 4-bit GEMV
 * reads half the nibbles by byte-offset loads (gemv4_tile); 3-bit weights come in 32-column units of
 * 3 words (src/matrix.h), and their GEMV runs 4 blocks at once. */
#include <immintrin.h>

#include "../src/driver.h"
#include "../src/lut3_words.h"

#define AI EK_AI
#define STORE_ZMM(dst, v) _mm512_storeu_ps(dst, v)

/* 3-bit GEMV: 4 blocks a tile (measured 2% faster than 8 with this layout; 2 is latency-bound) */
#define EK_LUT3_GV 4

/* fixed-size arrays (not VLAs) so the compiler keeps them in registers */
AI void tile(const ek_matrix *w, const float *x, int ldx, int b, const int G, const int MT, const int bits,
             const int shared, float *y, int ldy) {
    const int F = 32 / bits, words = w->words;
    __m512 acc[16], T[8];
    const uint32_t *p[8];
    EK_TILE_STREAMS(p, w, b, G);
    #pragma GCC unroll 32
    for (int g = 0; g < G; g++) T[g] = _mm512_loadu_ps(ek_block_tab(w, b + g));
    #pragma GCC unroll 32
    for (int a = 0; a < G * MT; a++) acc[a] = _mm512_setzero_ps();
    if (bits == 2) {
        /* 2 bits: a pair of columns is one 4-bit code; its 16 values P = T[hi] x1 + T[lo] x0 are
         * computed once per pair (and shared by the blocks of one table), then one lookup and one
         * add per 16 rows cover 2 columns: half the work of a lookup and an FMA per column. */
        __m512 TLO[8], THI[8];
        const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        #pragma GCC unroll 32
        for (int g = 0; g < G; g++) {
            TLO[g] = _mm512_permutexvar_ps(iota, T[g]);  /* T is stored 4-periodic: entry c = T[c & 3] */
            THI[g] = _mm512_permutexvar_ps(_mm512_srli_epi32(iota, 2), T[g]);
        }
        for (int wi = 0; wi < words; wi++) {
            __m512i v[8];
            /* no software prefetch here: 2-bit rows are read at half the rate of 4-bit ones, which
             * the hardware prefetcher keeps up with (measured: prefetching made it ~3% slower) */
            #pragma GCC unroll 32
            for (int g = 0; g < G; g++) v[g] = _mm512_loadu_si512((const void *)(p[g] + (size_t)wi * EK_LANES));
            const float *xk = x + (size_t)wi * F;
            /* the 8 pair tables of this word first, then each block's 8 lookups: few live registers */
            #pragma GCC unroll 32
            for (int mm = 0; mm < MT; mm++) {
                __m512 P[8];
                #pragma GCC unroll 8
                for (int j = 0; j < 8; j++)
                    P[j] = _mm512_fmadd_ps(THI[0], _mm512_set1_ps(xk[(size_t)mm * ldx + 2 * j + 1]),
                                           _mm512_mul_ps(TLO[0], _mm512_set1_ps(xk[(size_t)mm * ldx + 2 * j])));
                #pragma GCC unroll 32
                for (int g = 0; g < G; g++) {
                    __m512i vg = v[g];
                    #pragma GCC unroll 8
                    for (int j = 0; j < 8; j++) {
                        __m512 Pj = shared ? P[j] : _mm512_fmadd_ps(THI[g], _mm512_set1_ps(xk[(size_t)mm * ldx + 2 * j + 1]),
                                                                   _mm512_mul_ps(TLO[g], _mm512_set1_ps(xk[(size_t)mm * ldx + 2 * j])));
                        acc[g * MT + mm] = _mm512_add_ps(acc[g * MT + mm], _mm512_permutexvar_ps(vg, Pj));
                        vg = _mm512_srli_epi32(vg, 4);
                    }
                }
            }
        }
    } else if (bits == 3) {
        /* 32 columns in 3 words, read as 4 words of 8 columns (src/matrix.h): column 8i + 4h + b is
         * word i >> (8b + 3h) (vpermps reads the low 4 bits of a lane, the table repeats every 8);
         * word 3, the tail word, costs 3 shifts and 2 vpternlogd a unit. Columns in order, as the
         * reference. Measured alternatives (slower here): the 3 words in a rolled loop (-6%), byte-
         * offset loads for h = 0 as in gemv4_tile (-1.5%: 3 of 4 such loads split cache lines). */
        #pragma GCC unroll 2  /* 2 units a loop: measured ~2% faster than 1 */
        for (int u = 0; u < words / 3; u++) {
            __m512i wd[8][3], v[8];  /* wd: the unit's 3 word rows per block, kept for its tail word */
            #pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                ek_lut3_unit512(p, u, i, G, wd, v);
                const float *xi = x + (size_t)u * 32 + 8 * i;
                #pragma GCC unroll 8
                for (int r = 0; r < 8; r++) {
                    const int sh = 8 * (r % 4) + 3 * (r / 4);
                    #pragma GCC unroll 8
                    for (int g = 0; g < G; g++) {
                        const __m512 wv = _mm512_permutexvar_ps(sh ? _mm512_srli_epi32(v[g], sh) : v[g], T[g]);
                        #pragma GCC unroll 8
                        for (int mm = 0; mm < MT; mm++)
                            acc[g * MT + mm] = _mm512_fmadd_ps(wv, _mm512_set1_ps(xi[(size_t)mm * ldx + r]), acc[g * MT + mm]);
                    }
                }
            }
        }
    } else
    for (int wi = 0; wi < words; wi++) {
        __m512i v[8];
        #pragma GCC unroll 32
        for (int g = 0; g < G; g++) _mm_prefetch((const char *)(p[g] + (size_t)(wi + EK_PF) * EK_LANES), _MM_HINT_T0);
        #pragma GCC unroll 32
        for (int g = 0; g < G; g++) v[g] = _mm512_loadu_si512((const void *)(p[g] + (size_t)wi * EK_LANES));
        const float *xk = x + (size_t)wi * F;
#pragma GCC unroll 16
        for (int i = 0; i < F; i++) {
            #pragma GCC unroll 32
            for (int g = 0; g < G; g++) {
                __m512 wv = _mm512_permutexvar_ps(v[g], T[g]);
                v[g] = _mm512_srli_epi32(v[g], bits);
                #pragma GCC unroll 32
                for (int mm = 0; mm < MT; mm++)
                    acc[g * MT + mm] = _mm512_fmadd_ps(wv, _mm512_set1_ps(xk[(size_t)mm * ldx + i]), acc[g * MT + mm]);
            }
        }
    }
    EK_TILE_STORE(acc, G, MT, 1, STORE_ZMM, w, b, y, ldy);
}

/* 4-bit GEMV, 8 blocks: the nibble extraction is half free. vpermps reads the low 4 bits of each
 * lane, so loading a word row at byte offset o (0..3) puts column 2o of every row in those bits
 * (a load, not an ALU op); one shift by 4 of that load gives column 2o+1. Same FMA order. */
AI void gemv4_tile(const ek_matrix *w, const float *x, int b, const int G, const int shared, float *y) {
    const int words = w->words;
    __m512 acc[8], T[8];
    const uint32_t *p[8];
    EK_TILE_STREAMS(p, w, b, G);
    #pragma GCC unroll 8
    for (int g = 0; g < G; g++) {
        T[g] = _mm512_loadu_ps(ek_block_tab(w, shared ? b : b + g));
        acc[g] = _mm512_setzero_ps();
    }
    /* the offset loads of the last word row would read 3 bytes past it: the data's end for the
     * matrix's last block (borrowed arrays have no padding), so that row shifts instead */
    const int last = words - 1;
    for (int wi = 0; wi < last; wi++) {
        #pragma GCC unroll 8
        for (int g = 0; g < G; g++) _mm_prefetch((const char *)(p[g] + (size_t)(wi + EK_PF) * EK_LANES), _MM_HINT_T0);
        const float *xk = x + (size_t)wi * 8;
        #pragma GCC unroll 4
        for (int o = 0; o < 4; o++) {
            __m512 x0 = _mm512_set1_ps(xk[2 * o]), x1 = _mm512_set1_ps(xk[2 * o + 1]);
            #pragma GCC unroll 8
            for (int g = 0; g < G; g++) {
                __m512i v = _mm512_loadu_si512((const void *)((const char *)(p[g] + (size_t)wi * EK_LANES) + o));
                acc[g] = _mm512_fmadd_ps(_mm512_permutexvar_ps(v, T[shared ? 0 : g]), x0, acc[g]);
                acc[g] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), T[shared ? 0 : g]), x1, acc[g]);
            }
        }
    }
    {
        const float *xk = x + (size_t)last * 8;
        #pragma GCC unroll 8
        for (int g = 0; g < G; g++) {
            __m512i v = _mm512_loadu_si512((const void *)(p[g] + (size_t)last * EK_LANES));
            #pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                acc[g] = _mm512_fmadd_ps(_mm512_permutexvar_ps(v, T[shared ? 0 : g]), _mm512_set1_ps(xk[i]), acc[g]);
                v = _mm512_srli_epi32(v, 4);
            }
        }
    }
    EK_TILE_STORE(acc, G, 1, 1, STORE_ZMM, w, b, y, 0);
}

AI void gemv_tile(const ek_matrix *w, const float *x, int b, const int G, const int bits, const int shared,
                  float *y) {
    if (bits == 4) gemv4_tile(w, x, b, G, shared, y);
    else if (bits == 3 && EK_LUT3_GV < G) {  /* G = 8 from the driver: two 4-block tiles */
        #pragma GCC unroll 8
        for (int h = 0; h < G; h += EK_LUT3_GV) tile(w, x, 0, b + h, EK_LUT3_GV, 1, bits, shared, y, 0);
    } else tile(w, x, 0, b, G, 1, bits, shared, y, 0);
}

/* GEMV: 8 blocks a tile; GEMM: 2 blocks x 8 rows of x */
EK_ROWS_DRIVER(ek_lut_rows_avx512, gemv_tile, tile, ek_lut_rows_ref, 8, 2, 8)
