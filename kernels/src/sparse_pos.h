/* The position word of a 2:4 chunk for the rows of a vector, per ISA (src/matrix.h: a chunk stores
 * 8 combination codes of 3 bits; the kernels take the 16 2-bit positions of its kept weights, kept
 * j at bits [2j, 2j+2), as the scalar ek_sparse_pos gives them).
 *
 * p: the first word of the rows' block stream (already offset to the vector's first lane); c: the
 * chunk, at its first word row (ek_sparse_chunk_at), cwords = 1 + code words (the previous chunk of
 * a quad is cwords word rows before). Per chunk: its field from 1 or 2 words (EK_SPARSE_FIELD), the
 * field's 4 6-bit pairs of codes spread to 4 bytes (byte b: the field's bits [6b, 6b+6)), 2 lookups
 * of a byte's low 3 bits (EK_SPARSE_NIB_LO / _HI: its code's nibble, or nibble << 4), about 16
 * operations per 16 kept weights; on AVX-512 VBMI 2 (vpmultishiftqb spreads, vpermb looks up all 6
 * bits at once). */
#ifndef EK_SPARSE_POS_H
#define EK_SPARSE_POS_H

#include "matrix.h"

/* always inlined: a call per chunk and vector (the tiles unroll them) costs more than the expansion */
#define EK_SPI static inline __attribute__((always_inline))

#if defined(__AVX512BW__)
#include <immintrin.h>
EK_SPI __m512i ek_sparse_field512(const uint32_t *p, int c, size_t at, int cwords) {
    const __m512i own = c % 4 < 3 ? _mm512_loadu_si512((const void *)(p + at * EK_LANES)) : _mm512_setzero_si512();
    const __m512i prev = c % 4 > 0 ? _mm512_loadu_si512((const void *)(p + (at - (size_t)cwords) * EK_LANES))
                                   : _mm512_setzero_si512();
    return EK_SPARSE_FIELD(c % 4, prev, own, _mm512_srli_epi32, _mm512_slli_epi32, _mm512_or_si512);
}

/* AVX-512BW: byte b of each lane <- field << 2b (its bits [6b, 6b+6) at the byte's bits 0-5) */
EK_SPI __m512i ek_sparse_pos512(const uint32_t *p, int c, size_t at, int cwords) {
    const __m512i f = ek_sparse_field512(p, c, at, cwords);
    __m512i t = _mm512_mask_blend_epi8(0x2222222222222222ULL, f, _mm512_slli_epi32(f, 2));
    t = _mm512_mask_blend_epi8(0x4444444444444444ULL, t, _mm512_slli_epi32(f, 4));
    t = _mm512_mask_blend_epi8(0x8888888888888888ULL, t, _mm512_slli_epi32(f, 6));
    const __m512i lo = _mm512_broadcast_i32x4(_mm_setr_epi8(EK_SPARSE_NIB_LO));
    const __m512i hi = _mm512_broadcast_i32x4(_mm_setr_epi8(EK_SPARSE_NIB_HI));
    const __m512i seven = _mm512_set1_epi8(7);
    return _mm512_or_si512(_mm512_shuffle_epi8(lo, _mm512_and_si512(t, seven)),
                           _mm512_shuffle_epi8(hi, _mm512_and_si512(_mm512_srli_epi32(t, 3), seven)));
}

#if defined(__AVX512VBMI__)
/* VBMI: byte b of each lane <- the field's bits [6b, 6b+8) (vpmultishiftqb: offsets 0 6 12 18 in the
 * low lane of a qword, 32 38 44 50 in the high one); vpermb reads their 6 bits: both codes at once */
EK_SPI __m512i ek_sparse_pos512_vbmi(const uint32_t *p, int c, size_t at, int cwords) {
    static const uint8_t tab[64] = {
#define EK_ROW_(h) 4 | (h), 8 | (h), 12 | (h), 9 | (h), 13 | (h), 14 | (h), 4 | (h), 4 | (h)
        EK_ROW_(64), EK_ROW_(128), EK_ROW_(192), EK_ROW_(144), EK_ROW_(208), EK_ROW_(224), EK_ROW_(64), EK_ROW_(64)
#undef EK_ROW_
    };
    const __m512i f = ek_sparse_field512(p, c, at, cwords);
    const __m512i t = _mm512_multishift_epi64_epi8(_mm512_set1_epi64(0x322C2620120C0600LL), f);
    return _mm512_permutexvar_epi8(t, _mm512_loadu_si512((const void *)tab));
}
#endif
#endif

#if defined(__AVX2__)
#include <immintrin.h>
/* 8 rows (one ymm of a block) */
EK_SPI __m256i ek_sparse_pos256(const uint32_t *p, int c, size_t at, int cwords) {
    const __m256i own = c % 4 < 3 ? _mm256_loadu_si256((const __m256i *)(p + at * EK_LANES)) : _mm256_setzero_si256();
    const __m256i prev = c % 4 > 0 ? _mm256_loadu_si256((const __m256i *)(p + (at - (size_t)cwords) * EK_LANES))
                                   : _mm256_setzero_si256();
    const __m256i f = EK_SPARSE_FIELD(c % 4, prev, own, _mm256_srli_epi32, _mm256_slli_epi32, _mm256_or_si256);
    const __m256i b0 = _mm256_set1_epi32(0x000000FF), b1 = _mm256_set1_epi32(0x0000FF00);
    const __m256i b2 = _mm256_set1_epi32(0x00FF0000), b3 = _mm256_set1_epi32((int)0xFF000000u);
    const __m256i t = _mm256_or_si256(_mm256_or_si256(_mm256_and_si256(f, b0), _mm256_and_si256(_mm256_slli_epi32(f, 2), b1)),
                                      _mm256_or_si256(_mm256_and_si256(_mm256_slli_epi32(f, 4), b2),
                                                      _mm256_and_si256(_mm256_slli_epi32(f, 6), b3)));
    const __m256i lo = _mm256_setr_epi8(EK_SPARSE_NIB_LO, EK_SPARSE_NIB_LO);
    const __m256i hi = _mm256_setr_epi8(EK_SPARSE_NIB_HI, EK_SPARSE_NIB_HI);
    const __m256i seven = _mm256_set1_epi8(7);
    return _mm256_or_si256(_mm256_shuffle_epi8(lo, _mm256_and_si256(t, seven)),
                           _mm256_shuffle_epi8(hi, _mm256_and_si256(_mm256_srli_epi32(t, 3), seven)));
}
#endif

#if defined(__aarch64__)
#include <arm_neon.h>
/* 4 rows (one q register of a block) */
EK_SPI uint32x4_t ek_sparse_pos128(const uint32_t *p, int c, size_t at, int cwords) {
    const uint32x4_t own = c % 4 < 3 ? vld1q_u32(p + at * EK_LANES) : vdupq_n_u32(0);
    const uint32x4_t prev = c % 4 > 0 ? vld1q_u32(p + (at - (size_t)cwords) * EK_LANES) : vdupq_n_u32(0);
    const uint32x4_t f = EK_SPARSE_FIELD(c % 4, prev, own, vshrq_n_u32, vshlq_n_u32, vorrq_u32);
    /* vbsl: bits of the mask from the first, the rest from the second */
    uint32x4_t t = vbslq_u32(vdupq_n_u32(0x0000FF00), vshlq_n_u32(f, 2), f);
    t = vbslq_u32(vdupq_n_u32(0x00FF0000), vshlq_n_u32(f, 4), t);
    t = vbslq_u32(vdupq_n_u32(0xFF000000u), vshlq_n_u32(f, 6), t);
    static const uint8_t lo_tab[16] = {EK_SPARSE_NIB_LO}, hi_tab[16] = {EK_SPARSE_NIB_HI};
    const uint8x16_t lo = vld1q_u8(lo_tab), hi = vld1q_u8(hi_tab), seven = vdupq_n_u8(7);
    const uint8x16_t tb = vreinterpretq_u8_u32(t);
    return vreinterpretq_u32_u8(vorrq_u8(vqtbl1q_u8(lo, vandq_u8(tb, seven)),
                                         vqtbl1q_u8(hi, vandq_u8(vshrq_n_u8(tb, 3), seven))));
}
#endif

#endif
