/* Word i (0-3) of a 3-bit unit (src/matrix.h: 3 stored words, then the tail word built from their spare
 * bits), for the AVX2 and AVX-512 kernels, fp32 and int8-activation alike. pu: the unit's first word row
 * of one block (AVX2: 8 of its 16 lanes). Stored words are prefetched EK_PF word rows ahead. */
#ifndef EK_LUT3_WORDS_H
#define EK_LUT3_WORDS_H

#include <immintrin.h>

#include "matrix.h"

#define EK_LUT3_AI static inline __attribute__((always_inline))

#ifdef __AVX2__
#define EK_SEL256(m, a, b) _mm256_or_si256(_mm256_and_si256(m, a), _mm256_andnot_si256(m, b))
/* 8 lanes; prefetch: whether this call issues the unit's prefetch (one per 16-lane block) */
EK_LUT3_AI __m256i ek_lut3_word256(const uint32_t *pu, int i, int prefetch) {
    if (i < 3) {
        if (prefetch) _mm_prefetch((const char *)(pu + (size_t)(i + EK_PF) * EK_LANES), _MM_HINT_T0);
        return _mm256_loadu_si256((const __m256i *)(pu + (size_t)i * EK_LANES));
    }
    return EK_LUT3_TAIL(_mm256_loadu_si256((const __m256i *)pu), _mm256_loadu_si256((const __m256i *)(pu + EK_LANES)),
                        _mm256_loadu_si256((const __m256i *)(pu + 2 * EK_LANES)), _mm256_srli_epi32, EK_SEL256,
                        _mm256_set1_epi32);
}
#endif

#ifdef __AVX512F__
#define EK_SEL512(m, a, b) _mm512_ternarylogic_epi32(a, b, m, 0xE4)  /* m ? a : b, bitwise */
/* 16 lanes; the 3 stored words are kept in wd (call with i = 0, 1, 2, 3 in order) for the tail word */
EK_LUT3_AI __m512i ek_lut3_word512(const uint32_t *pu, int i, __m512i wd[3]) {
    if (i < 3) {
        _mm_prefetch((const char *)(pu + (size_t)(i + EK_PF) * EK_LANES), _MM_HINT_T0);
        return wd[i] = _mm512_loadu_si512((const void *)(pu + (size_t)i * EK_LANES));
    }
    return EK_LUT3_TAIL(wd[0], wd[1], wd[2], _mm512_srli_epi32, EK_SEL512, _mm512_set1_epi32);
}
/* word i of unit u of the G block streams p, into v[g] (wd[g]: block g's stored words) */
EK_LUT3_AI void ek_lut3_unit512(const uint32_t *const *p, int u, int i, int G, __m512i wd[][3], __m512i *v) {
    #pragma GCC unroll 8
    for (int g = 0; g < G; g++) v[g] = ek_lut3_word512(p[g] + (size_t)3 * u * EK_LANES, i, wd[g]);
}
#endif

#endif
