/* AVX2 16-entry table lookup: vpermps reads 3 index bits, so 4-bit codes look up both 8-entry
 * halves and blend on bit 3; 2- and 3-bit codes need one lookup (tables repeat every 2^b). */
#ifndef EK_AVX2_LOOKUP_H
#define EK_AVX2_LOOKUP_H
#include <immintrin.h>

static inline __attribute__((always_inline)) __m256 ek_lookup8(__m256i s, __m256 lo, __m256 hi, const int bits) {
    __m256 a = _mm256_permutevar8x32_ps(lo, s);
    if (bits < 4) return a;
    __m256 b = _mm256_permutevar8x32_ps(hi, s);
    return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(s, 28)));
}
#endif
