/* LUT product, AVX-512F: one zmm = the same column of the 16 rows of a block.
 * Per column: shift the block's index word down (vpsrld), look the 16 lanes up in the block's
 * 16-entry table (vpermps reads the low 4 bits of each lane), FMA with x[k] broadcast.
 * GEMV runs 8 blocks at once (8 independent accumulator chains); GEMM shares each decoded
 * weight vector across 8 rows of x. Blocks mixing two tables use the reference.
 * 2-bit weights add precomputed column-pair values instead (see the bits == 2 branch); 4-bit GEMV
 * reads half the nibbles by byte-offset loads (gemv4_tile). */
#include <immintrin.h>

#include "../src/matrix.h"

#define AI static inline __attribute__((always_inline))

/* fixed-size arrays (not VLAs) so the compiler keeps them in registers */
AI void tile(const ek_matrix *w, const float *x, int ldx, int b, const int G, const int MT, const int bits,
             const int shared, float *y, int ldy) {
    const int F = 32 / bits, words = w->words;
    __m512 acc[16], T[8];
    const uint32_t *p[8];
    #pragma GCC unroll 32
    for (int g = 0; g < G; g++) {
        T[g] = _mm512_loadu_ps(w->tables + (size_t)w->block_table[b + g] * 16);
        p[g] = ek_block(w, b + g);
    }
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
    float out[EK_LANES];
    #pragma GCC unroll 32
    for (int g = 0; g < G; g++)
        #pragma GCC unroll 32
        for (int mm = 0; mm < MT; mm++) {
            _mm512_storeu_ps(out, acc[g * MT + mm]);
            ek_store_lanes(out, (b + g) * EK_LANES, w->n, y + (size_t)mm * ldy);
        }
}

/* 4-bit GEMV, 8 blocks: the nibble extraction is half free. vpermps reads the low 4 bits of each
 * lane, so loading a word row at byte offset o (0..3) puts column 2o of every row in those bits
 * (a load, not an ALU op); one shift by 4 of that load gives column 2o+1. Same FMA order. */
AI void gemv4_tile(const ek_matrix *w, const float *x, int b, const int G, const int shared, float *y) {
    const int words = w->words;
    __m512 acc[8], T[8];
    const uint32_t *p[8];
    #pragma GCC unroll 8
    for (int g = 0; g < G; g++) {
        T[g] = _mm512_loadu_ps(w->tables + (size_t)w->block_table[shared ? b : b + g] * 16);
        p[g] = ek_block(w, b + g);
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
    float out[EK_LANES];
    #pragma GCC unroll 8
    for (int g = 0; g < G; g++) {
        _mm512_storeu_ps(out, acc[g]);
        ek_store_lanes(out, (b + g) * EK_LANES, w->n, y);
    }
}

static int same_table(const ek_matrix *w, int b, int count) {
    for (int i = 1; i < count; i++)
        if (w->block_table[b + i] != w->block_table[b]) return 0;
    return 1;
}

#define EK_TILES(bits)                                                                                   \
    static void gemv_##bits(const ek_matrix *w, const float *x, int b0, int b1, float *y) {              \
        for (int b = b0; b < b1;) {                                                                     \
            int uniform = 0;                                                                            \
            while (b + uniform < b1 && uniform < 8 && w->block_table[b + uniform] >= 0) uniform++;      \
            if (uniform == 8 && same_table(w, b, 8)) { tile(w, x, 0, b, 8, 1, bits, 1, y, 0); b += 8; }                  \
            else if (uniform == 8) { tile(w, x, 0, b, 8, 1, bits, 0, y, 0); b += 8; }                            \
            else if (uniform > 0) { for (int e = b + uniform; b < e; b++) tile(w, x, 0, b, 1, 1, bits, 1, y, 0); } \
            else { ek_lut_rows_ref(w, x, 1, w->kpad, b, b + 1, y, w->n); b++; }                          \
        }                                                                                               \
    }                                                                                                   \
    static void gemm_##bits(const ek_matrix *w, const float *x, int m, int ldx, int b0, int b1, float *y, int ldy) { \
        for (int b = b0; b < b1;) {                                                                     \
            int two = b + 1 < b1 && w->block_table[b] >= 0 && w->block_table[b + 1] >= 0;              \
            if (w->block_table[b] < 0) { ek_lut_rows_ref(w, x, m, ldx, b, b + 1, y, ldy); b++; continue; } \
            int mi = 0, st = two && same_table(w, b, 2);                                                \
            for (; mi + 8 <= m; mi += 8) {                                                              \
                if (two && st) tile(w, x + (size_t)mi * ldx, ldx, b, 2, 8, bits, 1, y + (size_t)mi * ldy, ldy);   \
                else if (two) tile(w, x + (size_t)mi * ldx, ldx, b, 2, 8, bits, 0, y + (size_t)mi * ldy, ldy);   \
                else tile(w, x + (size_t)mi * ldx, ldx, b, 1, 8, bits, 1, y + (size_t)mi * ldy, ldy);       \
            }                                                                                           \
            for (; mi < m; mi++) {                                                                      \
                if (two && st) tile(w, x + (size_t)mi * ldx, ldx, b, 2, 1, bits, 1, y + (size_t)mi * ldy, ldy);   \
                else if (two) tile(w, x + (size_t)mi * ldx, ldx, b, 2, 1, bits, 0, y + (size_t)mi * ldy, ldy);   \
                else tile(w, x + (size_t)mi * ldx, ldx, b, 1, 1, bits, 1, y + (size_t)mi * ldy, ldy);       \
            }                                                                                           \
            b += two ? 2 : 1;                                                                           \
        }                                                                                               \
    }

EK_TILES(2)
EK_TILES(3)
EK_TILES(4)

static void gemv4(const ek_matrix *w, const float *x, int b0, int b1, float *y) {
    for (int b = b0; b < b1;) {
        int uniform = 0;
        while (b + uniform < b1 && uniform < 8 && w->block_table[b + uniform] >= 0) uniform++;
        if (uniform == 8 && same_table(w, b, 8)) { gemv4_tile(w, x, b, 8, 1, y); b += 8; }
        else if (uniform == 8) { gemv4_tile(w, x, b, 8, 0, y); b += 8; }
        else if (uniform > 0) { for (int e = b + uniform; b < e; b++) gemv4_tile(w, x, b, 1, 1, y); }
        else { ek_lut_rows_ref(w, x, 1, w->kpad, b, b + 1, y, w->n); b++; }
    }
}

void ek_lut_rows_avx512(const ek_matrix *w, const float *x, int m, int ldx, int b0, int b1, float *y, int ldy) {
    if (m == 1) {
        if (w->bits == 2) gemv_2(w, x, b0, b1, y);
        else if (w->bits == 3) gemv_3(w, x, b0, b1, y);
        else gemv4(w, x, b0, b1, y);
    } else {
        if (w->bits == 2) gemm_2(w, x, m, ldx, b0, b1, y, ldy);
        else if (w->bits == 3) gemm_3(w, x, m, ldx, b0, b1, y, ldy);
        else gemm_4(w, x, m, ldx, b0, b1, y, ldy);
    }
}
