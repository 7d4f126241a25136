/* 2:4 sparse + LUT product, AVX-512F. Per kept weight j of a 32-column chunk, for the 16 rows:
 * x of its group (4 floats broadcast to the 4 lanes of each 128-bit quarter) permuted by the
 * 2-bit position (vpermilps reads the low 2 bits), table value by the code (vpermps, low 4 bits),
 * one FMA. GEMV runs 8 blocks at once; GEMM shares the decoded weights across 8 rows of x.
 * 4-bit GEMV extracts most codes by byte-offset loads (gemv4_tile). Positions: src/sparse_pos.h. */
#include <immintrin.h>

#define EK_V __m512
#define EK_VI __m512i
#define EK_VX __m512
#define EK_VPB 1
#define EK_TDECL __m512 T[8]
#define EK_TSET(g, t) (T[g] = _mm512_loadu_ps(t))
#define EK_LOOKUP(code, g, bits) _mm512_permutexvar_ps(code, T[g])
#define EK_SPARSE_POSV ek_sparse_pos512
#define EK_LOADI(p) _mm512_loadu_si512((const void *)(p))
#define EK_SHR(v, n) _mm512_srli_epi32(v, n)
#define EK_XGROUP(p) _mm512_broadcast_f32x4(_mm_loadu_ps(p))
#define EK_XPERM(xg, pos) _mm512_permutevar_ps(xg, pos)
#define EK_FMA(acc, a, b) _mm512_fmadd_ps(a, b, acc)
#define EK_ZERO() _mm512_setzero_ps()
#define EK_STORE(dst, v) _mm512_storeu_ps(dst, v)
#include "../src/sparse_tile.h"
#include "../src/sparse_pos.h"

#define AI EK_AI

/* 4-bit codes, GEMV, G blocks: codes partly extracted by loads. Loading a chunk's code word at byte
 * offset b puts code 2b in the low 4 bits (vpermps' index); the position word >> 8q puts kept weight
 * 4q's position in the low 2 bits (vpermilps' index): per 4 kept weights 2 loads and 4 shifts
 * instead of 8 shifts. Same FMA order as the reference. */
AI void gemv4_tile(const ek_matrix *w, const float *x, int b, const int G, float *y) {
    const int chunk_words = 1 + w->code_words, chunks = w->kpad / 32;
    __m512 acc[8], T[8];
    const uint32_t *p[8];
    EK_TILE_STREAMS(p, w, b, G);
    #pragma GCC unroll 8
    for (int g = 0; g < G; g++) {
        T[g] = _mm512_loadu_ps(ek_block_tab(w, b + g));
        acc[g] = _mm512_setzero_ps();
    }
    const __m512i div4 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    /* the last chunk's offset loads would read past the data's end (borrowed arrays: no padding) */
    for (int c = 0; c < chunks - 1; c++) {
        const float *xc = x + (size_t)c * 32;
        const size_t at = ek_sparse_chunk_at(w, c), codes = ek_sparse_codes_at(w, c);
        EK_SPARSE_PREFETCH(p, G, at, chunk_words);
        __m512i posw[8];
        #pragma GCC unroll 8
        for (int g = 0; g < G; g++) posw[g] = ek_sparse_pos512(p[g], c, at, chunk_words);
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
                const __m512i pos = _mm512_srli_epi32(posw[g], 8 * q), pos2 = _mm512_srli_epi32(pos, 4);
                const char *code = (const char *)(p[g] + (codes + (size_t)(q / 2)) * EK_LANES) + 2 * (q % 2);
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
            const uint32_t *cp = p[g] + ek_sparse_codes_at(w, c) * EK_LANES;
            __m512i pos = ek_sparse_pos512(p[g], c, ek_sparse_chunk_at(w, c), chunk_words), code = _mm512_setzero_si512();
            for (int s = 0; s < 16; s++) {
                if (s % 8 == 0) code = _mm512_loadu_si512((const void *)(cp + (size_t)(s / 8) * EK_LANES));
                __m512 xg = _mm512_broadcast_f32x4(_mm_loadu_ps(xc + 4 * (s / 2)));
                acc[g] = _mm512_fmadd_ps(_mm512_permutexvar_ps(code, T[g]), _mm512_permutevar_ps(xg, pos), acc[g]);
                code = _mm512_srli_epi32(code, 4);
                pos = _mm512_srli_epi32(pos, 2);
            }
        }
    }
    EK_TILE_STORE(acc, G, 1, 1, EK_STORE, w, b, y, 0);
}

AI void gemv_tile(const ek_matrix *w, const float *x, int b, const int G, const int bits, const int shared,
                  float *y) {
    if (bits == 4) gemv4_tile(w, x, b, G, y);
    else gemv_tile1(w, x, b, G, bits, shared, y);
}

/* GEMV: 8 blocks a tile; GEMM: 1 block x 8 rows of x */
EK_ROWS_DRIVER(ek_sparse_rows_avx512, gemv_tile, tile, ek_sparse_rows_ref, 8, 1, 8)
