/* The AVX2 int8 product step of the q8 tiles (src/avx2_q8_tile.h, src/avx2_sparse_q8_tile.h):
 * acc (8 x int32) += the 4 byte products of each 32-bit lane of u and s. With AVX-VNNI (EK_Q8_VNNI 1)
 * vpdpbusd, u unsigned and s signed; else both signed with |u|, |s| <= 127, the llama.cpp way:
 * pmaddubsw(|s|, sign(u, s)) (no saturation: 2 x 127 x 127 < 2^15) then pmaddwd with ones. */
#if EK_Q8_VNNI
#define EK_Q8_DOT(acc, u, s) _mm256_dpbusd_avx_epi32(acc, u, s)
#else
#define EK_Q8_DOT(acc, u, s)                                                                         \
    _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(s), _mm256_sign_epi8(u, s)), \
                                            _mm256_set1_epi16(1)))
#endif
