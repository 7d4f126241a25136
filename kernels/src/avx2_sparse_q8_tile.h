/* The int8-activation 2:4 tile for AVX2 (sparse/avx2_q8.c, sparse/avx2_q8_vnni.c), 4-bit codes (2- and
 * 3-bit codes run the scalar reference): a block's 16 rows are two ymm of 8 rows, one 32-bit lane
 * per row holding 4 kept weights, as in sparse/avx512_q8.c but on 16-byte pshufb tables. Per code word
 * cw of a chunk (groups 4 cw .. 4 cw + 3 = columns 16 cw .. 16 cw + 15):
 *   weights:     pshufb on the 16-entry int8 table by the code word's low nibbles (the first kept
 *                weight of each group) and high nibbles (the second);
 *   positions:   pshufb copies position-word byte 2 cw + j / 2 to byte j, the nibble of group j is
 *                kept (even j: low, odd j: high, one 16-bit shift), then (nibble & 3) | 4j and
 *                ((nibble >> 2) & 3) | 4j: the indices of the activation bytes;
 *   activations: pshufb on the 16 bytes of xq of those columns (broadcast to both halves);
 *   products:    src/avx2_q8_dot.h (AVX-VNNI: the activations + 128 unsigned, q8_corr subtracted
 *                at the end, as on AVX-512; else pmaddubsw on the signed values).
 * Exact int32 sums, equal to the reference. GEMV runs 4 blocks at once; GEMM 1 block x 4 rows of x.
 * Defines EK_Q8_NAME (an ek_rows_q8_fn). */
#include <immintrin.h>

#include "avx2_q8_dot.h"
#include "driver.h"
#include "q8.h"
#include "sparse_pos.h"

/* byte j of each 32-bit lane: nibble 4 cw + j of the lane's position word p, in its low 4 bits */
EK_AI __m256i pos_nibbles(__m256i p, const int cw) {
    const __m256i dup = cw ? _mm256_setr_epi8(2, 2, 3, 3, 6, 6, 7, 7, 10, 10, 11, 11, 14, 14, 15, 15,
                                              2, 2, 3, 3, 6, 6, 7, 7, 10, 10, 11, 11, 14, 14, 15, 15)
                           : _mm256_setr_epi8(0, 0, 1, 1, 4, 4, 5, 5, 8, 8, 9, 9, 12, 12, 13, 13,
                                              0, 0, 1, 1, 4, 4, 5, 5, 8, 8, 9, 9, 12, 12, 13, 13);
    const __m256i d = _mm256_shuffle_epi8(p, dup);
    return _mm256_or_si256(_mm256_and_si256(d, _mm256_set1_epi16(0x000f)),
                           _mm256_and_si256(_mm256_srli_epi16(d, 4), _mm256_set1_epi16(0x0f00)));
}

/* fixed-size arrays (not VLAs) so the compiler keeps them in registers */
EK_AI void tile(const ek_matrix *w, const int8_t *xq, int ldx, int b, const int G, const int MT, const int bits,
                const int shared, int32_t *y, int ldy) {
    if (bits != 4) { ek_sparse_q8_rows_ref(w, xq, MT, ldx, b, b + G, y, ldy); return; }
    const int chunk_words = 1 + w->code_words, chunks = w->kpad / 32;
    __m256i acc[8], T[4];
    const uint32_t *p[4];
    EK_TILE_STREAMS(p, w, b, G);
    #pragma GCC unroll 4
    for (int g = 0; g < G; g++) T[g] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(w->q8_tables + (size_t)w->block_table[b + g] * 64)));
    const __m256i low4 = _mm256_set1_epi8(0x0f), three = _mm256_set1_epi8(3), off = _mm256_set1_epi32(0x0C080400);
    const __m256i bias = _mm256_set1_epi8(EK_Q8_VNNI ? (char)0x80 : 0);
    #pragma GCC unroll 32
    for (int a = 0; a < 2 * G * MT; a++) acc[a] = _mm256_setzero_si256();
    for (int c = 0; c < chunks; c++) {
        const size_t at = ek_sparse_chunk_at(w, c), codes = ek_sparse_codes_at(w, c);
        EK_SPARSE_PREFETCH(p, G, at, chunk_words);
        __m256i pos[8];
        #pragma GCC unroll 8
        for (int h = 0; h < 2 * G; h++) pos[h] = ek_sparse_pos256(p[h / 2] + 8 * (h % 2), c, at, chunk_words);
        #pragma GCC unroll 2
        for (int cw = 0; cw < 2; cw++) {
            __m256i xa[4];
            #pragma GCC unroll 4
            for (int mm = 0; mm < MT; mm++)
                xa[mm] = _mm256_xor_si256(bias, _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(xq + (size_t)mm * ldx + (size_t)c * 32 + 16 * cw))));
            #pragma GCC unroll 8
            for (int h = 0; h < 2 * G; h++) {
                const uint32_t *bp = p[h / 2] + 8 * (h % 2);
                const __m256i code = _mm256_loadu_si256((const __m256i *)(bp + (codes + (size_t)cw) * EK_LANES));
                const __m256i nib = pos_nibbles(pos[h], cw);
                const __m256i tab = T[shared ? 0 : h / 2];
                const __m256i w0 = _mm256_shuffle_epi8(tab, _mm256_and_si256(code, low4));
                const __m256i w1 = _mm256_shuffle_epi8(tab, _mm256_and_si256(_mm256_srli_epi16(code, 4), low4));
                const __m256i i0 = _mm256_or_si256(_mm256_and_si256(nib, three), off);
                const __m256i i1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(nib, 2), three), off);
                #pragma GCC unroll 4
                for (int mm = 0; mm < MT; mm++) {
                    acc[h * MT + mm] = EK_Q8_DOT(acc[h * MT + mm], _mm256_shuffle_epi8(xa[mm], i0), w0);
                    acc[h * MT + mm] = EK_Q8_DOT(acc[h * MT + mm], _mm256_shuffle_epi8(xa[mm], i1), w1);
                }
            }
        }
    }
#if EK_Q8_VNNI
    #pragma GCC unroll 8
    for (int h = 0; h < 2 * G; h++) {
        const __m256i corr = _mm256_loadu_si256((const __m256i *)(w->q8_corr + (size_t)(b + h / 2) * EK_LANES + 8 * (h % 2)));
        #pragma GCC unroll 4
        for (int mm = 0; mm < MT; mm++) acc[h * MT + mm] = _mm256_sub_epi32(acc[h * MT + mm], corr);
    }
#endif
    EK_TILE_STORE(acc, G, MT, 2, _mm256_storeu_si256, w, b, y, ldy);
}

EK_GEMV_OF_TILE(gemv_tile, tile, int8_t, int32_t)

/* GEMV: 4 blocks a tile; GEMM: 1 block x 4 rows of x */
EK_ROWS_DRIVER_T(EK_Q8_NAME, int8_t, int32_t, gemv_tile, tile, ek_sparse_q8_rows_ref, 4, 1, 4)
