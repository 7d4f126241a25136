/* 2:4 sparse + LUT product with int8 activations (sparse/q8.c), AVX-512 VNNI + VBMI, 4-bit codes
 * (2- and 3-bit codes run the scalar reference). One zmm = the 16 rows of a block, one 32-bit lane
 * per row holding 4 kept weights. Per code word of a 32-column chunk (8 kept weights = 4 groups =
 * 16 columns of each row), two vpdpbusd:
 *   weights:     vpermb on the 64-byte int8 table (signed, repeats every 16) indexed by the code
 *                word (byte j's low nibble: kept 2j) and by the code word >> 4 (kept 2j + 1);
 *   positions:   vpmultishiftqb spreads the position word's nibbles of those 4 groups to bytes
 *                (bits 16 cw + 4j: the first kept's position, a 16-bit shift by 2: the second's),
 *                masked and offset by their group (4j + 16 cw) with one vpternlogd each: the
 *                index of the activation byte within the chunk;
 *   activations: vpermb gathers them from the chunk's 32 bytes of xq + 128 (broadcast to 64);
 *   products:    vpdpbusd(activations unsigned, weights signed): 64 multiply-adds.
 * sum (xq + 128) tq = S + 128 sum(kept tq): the per-row q8_corr is subtracted at the end.
 * GEMV runs 4 blocks at once; GEMM 2 blocks x 4 rows of x. Integer sums: equal to the reference.
 * A chunk is 3 words (1 position + 2 code words at 4 bits): a compile-time count, so the software
 * prefetch (3 lines per block a chunk, EK_PF word rows ahead) and the word addresses unroll into
 * straight code, not a loop over w->code_words per chunk (0-1% faster: within the noise).
 * Ports (measured on the development CPU): vpermb and vpmultishiftqb port 5 only, shifts port 0, vpdpbusd and
 * vpternlogd either: 11 cycles of 16 rows x 32 columns, ~40% of the time the weight stream takes.
 * The GEMV is bound by that stream (L3), not by the ports: with the arithmetic removed (the same
 * loads and prefetches) it ran 2-3% faster, with the index and gather steps removed 1.5%.
 * Measured, no better (interleaved A/B):
 * 2, 3 or 8 blocks a tile, 1 block with two accumulators, prefetch 8-96 word rows ahead, no
 * software prefetch, prefetcht1 / prefetcht2 (worse) or prefetchnta (3x slower), an extra
 * L2 prefetch 64-128 rows ahead, prefetches per block next to its loads, 2 chunks an iteration,
 * prefetching the next tile's streams (not this tile's next block) past the end of a block,
 * and 64-entry activation tables per code word (index 16 j + the group's position nibble: one
 * vpternlogd and no 16-bit shift per code word, 4 vpermb a chunk shared by the tile's blocks). */
#include <immintrin.h>

#include "../src/driver.h"
#include "../src/q8.h"
#include "../src/sparse_pos.h"

#define AI EK_AI

/* fixed-size arrays (not VLAs) so the compiler keeps them in registers */
AI void tile(const ek_matrix *w, const int8_t *xq, int ldx, int b, const int G, const int MT, const int bits,
             const int shared, int32_t *y, int ldy) {
    if (bits != 4) { ek_sparse_q8_rows_ref(w, xq, MT, ldx, b, b + G, y, ldy); return; }
    /* 4-bit codes: 1 position word + 2 code words a chunk (w->code_words == 2), as a constant so
     * that the prefetches and addresses unroll (measured ~1-2% faster than the loaded count) */
    const int chunk_words = 3, chunks = w->kpad / 32, TG = shared ? 1 : G;
    const size_t quad_words = 11;  /* 3 position words + 4 x 2 code words */
    __m512i acc[8], T[8];
    const uint32_t *p[8];
    EK_TILE_STREAMS(p, w, b, G);
    #pragma GCC unroll 8
    for (int g = 0; g < TG; g++) T[g] = _mm512_loadu_si512((const void *)(w->q8_tables + (size_t)w->block_table[b + g] * 64));
    /* per qword (rows r, r + 1): bytes 0-3 from row r's position word, 4-7 from row r + 1's (bit 32 on):
     * byte j from bit 16 cw + 4j, the positions of group 4 cw + j */
    const __m512i ctrl[2] = {_mm512_set1_epi64(0x2C2824200C080400LL), _mm512_set1_epi64(0x3C3834301C181410LL)};
    const __m512i off[2] = {_mm512_set1_epi32(0x0C080400), _mm512_set1_epi32(0x1C181410)};
    const __m512i three = _mm512_set1_epi8(3), bias = _mm512_set1_epi8((char)0x80);
    #pragma GCC unroll 32
    for (int a = 0; a < G * MT; a++) acc[a] = _mm512_setzero_si512();
    for (int c = 0; c < chunks; c++) {
        const size_t at = (size_t)(c / 4) * quad_words + (size_t)(c % 4) * 3, codes = at + (c % 4 < 3);
        EK_SPARSE_PREFETCH(p, G, at, chunk_words);
        __m512i xa[4];
        #pragma GCC unroll 4
        for (int mm = 0; mm < MT; mm++)
            xa[mm] = _mm512_xor_si512(bias, _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(xq + (size_t)mm * ldx + (size_t)c * 32))));
        #pragma GCC unroll 8
        for (int g = 0; g < G; g++) {
            const uint32_t *cp = p[g] + codes * EK_LANES;
            const __m512i pos = ek_sparse_pos512_vbmi(p[g], c, at, chunk_words);
            #pragma GCC unroll 2
            for (int cw = 0; cw < 2; cw++) {
                const __m512i code = _mm512_loadu_si512((const void *)(cp + (size_t)cw * EK_LANES));
                const __m512i tab = T[shared ? 0 : g];
                const __m512i w0 = _mm512_permutexvar_epi8(code, tab), w1 = _mm512_permutexvar_epi8(_mm512_srli_epi32(code, 4), tab);
                /* byte j: the group's nibble of the position word (first kept at bits 0-1, second at 2-3);
                 * the second's by a 16-bit shift (port 0, not 5 like vpmultishiftqb; the bits it
                 * brings in from the next byte are masked); (A & 3) | off: vpternlogd 0xEA */
                const __m512i nib = _mm512_multishift_epi64_epi8(ctrl[cw], pos);
                const __m512i i0 = _mm512_ternarylogic_epi32(nib, three, off[cw], 0xEA);
                const __m512i i1 = _mm512_ternarylogic_epi32(_mm512_srli_epi16(nib, 2), three, off[cw], 0xEA);
                #pragma GCC unroll 4
                for (int mm = 0; mm < MT; mm++) {
                    acc[g * MT + mm] = _mm512_dpbusd_epi32(acc[g * MT + mm], _mm512_permutexvar_epi8(i0, xa[mm]), w0);
                    acc[g * MT + mm] = _mm512_dpbusd_epi32(acc[g * MT + mm], _mm512_permutexvar_epi8(i1, xa[mm]), w1);
                }
            }
        }
    }
    /* the per-row 128 sum(kept tq) of block b + g */
#define ROW_CORR(g, mm) _mm512_loadu_si512((const void *)(w->q8_corr + (size_t)(b + (g)) * EK_LANES))
    EK_Q8_STORE_512(acc, G, MT, ROW_CORR, w, b, y, ldy);
}

EK_GEMV_OF_TILE(gemv_tile, tile, int8_t, int32_t)

/* GEMV: 8 blocks a tile; GEMM: 2 blocks x 4 rows of x */
EK_ROWS_DRIVER_T(ek_sparse_q8_rows_avx512, int8_t, int32_t, gemv_tile, tile, ek_sparse_q8_rows_ref, 4, 2, 4)
