/* 2:4 sparse + LUT product, AVX-512F. Per kept weight j of a 32-column chunk, for the 16 rows:
 * x of its group (4 floats broadcast to the 4 lanes of each 128-bit quarter) permuted by the
 * 2-bit position (vpermilps reads the low 2 bits), table value by the code (vpermps, low 4 bits),
 * one FMA. GEMV runs 8 blocks at once; GEMM shares the decoded weights across 8 rows of x.
 * 4-bit GEMV extracts most codes and positions by byte-offset loads (gemv4_tile). */
#include <immintrin.h>

#include "../src/matrix.h"

#define AI static inline __attribute__((always_inline))

/* fixed-size arrays (not VLAs) so the compiler keeps them in registers */
AI void tile(const ek_matrix *w, const float *x, int ldx, int b, const int G, const int MT, const int bits,
             float *y, int ldy) {
    const int F = 32 / bits, cw = w->code_words, chunk_words = 1 + cw, chunks = w->kpad / 32;
    __m512 acc[16], T[8];
    const uint32_t *p[8];
    #pragma GCC unroll 32
    for (int g = 0; g < G; g++) {
        T[g] = _mm512_loadu_ps(w->tables + (size_t)w->block_table[b + g] * 16);
        p[g] = ek_block(w, b + g);
    }
    #pragma GCC unroll 32
    for (int a = 0; a < G * MT; a++) acc[a] = _mm512_setzero_ps();
    for (int c = 0; c < chunks; c++) {
        __m512i pos[8], code[8];
        #pragma GCC unroll 32
        for (int g = 0; g < G; g++) {
            const uint32_t *cp = p[g] + (size_t)c * chunk_words * EK_LANES;
            for (int j = 0; j < chunk_words; j++)
                _mm_prefetch((const char *)(cp + (size_t)(EK_PF + j) * EK_LANES), _MM_HINT_T0);
            pos[g] = _mm512_loadu_si512((const void *)cp);
            code[g] = _mm512_loadu_si512((const void *)(cp + EK_LANES));
        }
        const float *xc = x + (size_t)c * 32;
#pragma GCC unroll 16
        for (int s = 0; s < 16; s++) {
            __m512 xg[8];
            #pragma GCC unroll 32
            for (int mm = 0; mm < MT; mm++)
                xg[mm] = _mm512_broadcast_f32x4(_mm_loadu_ps(xc + (size_t)mm * ldx + 4 * (s / 2)));
            #pragma GCC unroll 32
            for (int g = 0; g < G; g++) {
                if (s > 0 && s % F == 0) {
                    const uint32_t *cp = p[g] + (size_t)c * chunk_words * EK_LANES;
                    code[g] = _mm512_loadu_si512((const void *)(cp + (size_t)(1 + s / F) * EK_LANES));
                }
                __m512 wv = _mm512_permutexvar_ps(code[g], T[g]);
                code[g] = _mm512_srli_epi32(code[g], bits);
                #pragma GCC unroll 32
                for (int mm = 0; mm < MT; mm++) {
                    __m512 xv = _mm512_permutevar_ps(xg[mm], pos[g]);
                    acc[g * MT + mm] = _mm512_fmadd_ps(wv, xv, acc[g * MT + mm]);
                }
                pos[g] = _mm512_srli_epi32(pos[g], 2);
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

/* 4-bit codes, GEMV, G blocks: codes and positions partly extracted by loads. Loading a chunk's
 * position word at byte offset q puts kept weight 4q's position in the low 2 bits (vpermilps'
 * index) and its code word at byte offset b puts code 2b in the low 4 bits (vpermps' index):
 * per 4 kept weights 3 loads and 3 shifts instead of 8 shifts. Same FMA order as the reference. */
AI void gemv4_tile(const ek_matrix *w, const float *x, int b, const int G, float *y) {
    const int chunk_words = 1 + w->code_words, chunks = w->kpad / 32;
    __m512 acc[8], T[8];
    const uint32_t *p[8];
    #pragma GCC unroll 8
    for (int g = 0; g < G; g++) {
        T[g] = _mm512_loadu_ps(w->tables + (size_t)w->block_table[b + g] * 16);
        p[g] = ek_block(w, b + g);
        acc[g] = _mm512_setzero_ps();
    }
    const __m512i div4 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    /* the last chunk's offset loads would read past the data's end (borrowed arrays: no padding) */
    for (int c = 0; c < chunks - 1; c++) {
        const float *xc = x + (size_t)c * 32;
        #pragma GCC unroll 8
        for (int g = 0; g < G; g++)
            #pragma GCC unroll 3
            for (int j = 0; j < 3; j++)
                _mm_prefetch((const char *)(p[g] + ((size_t)c * chunk_words + EK_PF + j) * EK_LANES), _MM_HINT_T0);
        #pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            /* kept 4q .. 4q+3: groups 2q, 2q+1 */
            /* xa: x of group 2q in each 128-bit quarter (vpermilps reads 2 bits: kept 4q's position);
             * xa4[i] = x[8q + i / 4]: vpermps reads 4 bits, the positions of kept 4q and 4q+1, and
             * picks by the second: kept 4q+1 needs no shift. Same for group 2q+1 after one shift. */
            __m512 xa = _mm512_broadcast_f32x4(_mm_loadu_ps(xc + 8 * q));
            __m512 xb = _mm512_broadcast_f32x4(_mm_loadu_ps(xc + 8 * q + 4));
            __m512 xa4 = _mm512_permutexvar_ps(div4, xa), xb4 = _mm512_permutexvar_ps(div4, xb);
            #pragma GCC unroll 8
            for (int g = 0; g < G; g++) {
                const char *cp = (const char *)(p[g] + (size_t)c * chunk_words * EK_LANES);
                __m512i pos = _mm512_loadu_si512((const void *)(cp + q)), pos2 = _mm512_srli_epi32(pos, 4);
                const char *code = cp + (size_t)(1 + q / 2) * EK_LANES * 4 + 2 * (q % 2);
                __m512i ca = _mm512_loadu_si512((const void *)code), cb = _mm512_loadu_si512((const void *)(code + 1));
                acc[g] = _mm512_fmadd_ps(_mm512_permutexvar_ps(ca, T[g]), _mm512_permutevar_ps(xa, pos), acc[g]);
                acc[g] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(ca, 4), T[g]),
                                         _mm512_permutexvar_ps(pos, xa4), acc[g]);
                acc[g] = _mm512_fmadd_ps(_mm512_permutexvar_ps(cb, T[g]), _mm512_permutevar_ps(xb, pos2), acc[g]);
                acc[g] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(cb, 4), T[g]),
                                         _mm512_permutexvar_ps(pos2, xb4), acc[g]);
            }
        }
    }
    {
        const int c = chunks - 1;
        const float *xc = x + (size_t)c * 32;
        #pragma GCC unroll 8
        for (int g = 0; g < G; g++) {
            const uint32_t *cp = p[g] + (size_t)c * chunk_words * EK_LANES;
            __m512i pos = _mm512_loadu_si512((const void *)cp), code = _mm512_setzero_si512();
            for (int s = 0; s < 16; s++) {
                if (s % 8 == 0) code = _mm512_loadu_si512((const void *)(cp + (size_t)(1 + s / 8) * EK_LANES));
                __m512 xg = _mm512_broadcast_f32x4(_mm_loadu_ps(xc + 4 * (s / 2)));
                acc[g] = _mm512_fmadd_ps(_mm512_permutexvar_ps(code, T[g]), _mm512_permutevar_ps(xg, pos), acc[g]);
                code = _mm512_srli_epi32(code, 4);
                pos = _mm512_srli_epi32(pos, 2);
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

#define EK_TILES(bits)                                                                                   \
    static void rows_##bits(const ek_matrix *w, const float *x, int m, int ldx, int b0, int b1, float *y, int ldy) { \
        for (int b = b0; b < b1;) {                                                                     \
            if (w->block_table[b] < 0) { ek_sparse_rows_ref(w, x, m, ldx, b, b + 1, y, ldy); b++; continue; } \
            if (m == 1) {                                                                               \
                int uniform = 0;                                                                        \
                while (b + uniform < b1 && uniform < 8 && w->block_table[b + uniform] >= 0) uniform++;  \
                if (uniform == 8 && bits == 4) { gemv4_tile(w, x, b, 8, y); b += 8; }                     \
                else if (uniform == 8) { tile(w, x, ldx, b, 8, 1, bits, y, ldy); b += 8; }               \
                else if (bits == 4) { gemv4_tile(w, x, b, 1, y); b++; }                                  \
                else { tile(w, x, ldx, b, 1, 1, bits, y, ldy); b++; }                                    \
                continue;                                                                               \
            }                                                                                           \
            int mi = 0;                                                                                 \
            for (; mi + 8 <= m; mi += 8) tile(w, x + (size_t)mi * ldx, ldx, b, 1, 8, bits, y + (size_t)mi * ldy, ldy); \
            for (; mi < m; mi++) tile(w, x + (size_t)mi * ldx, ldx, b, 1, 1, bits, y + (size_t)mi * ldy, ldy); \
            b++;                                                                                        \
        }                                                                                               \
    }

EK_TILES(2)
EK_TILES(3)
EK_TILES(4)

void ek_sparse_rows_avx512(const ek_matrix *w, const float *x, int m, int ldx, int b0, int b1, float *y, int ldy) {
    if (w->bits == 2) rows_2(w, x, m, ldx, b0, b1, y, ldy);
    else if (w->bits == 3) rows_3(w, x, m, ldx, b0, b1, y, ldy);
    else rows_4(w, x, m, ldx, b0, b1, y, ldy);
}
