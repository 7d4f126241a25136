/* The NEON int8 product step of the q8 tiles (src/neon_q8_tile.h, src/neon_sparse_q8_tile.h):
 * acc (4 x int32) += the 4 signed byte products of each 32-bit lane of w and x. With the dot-product
 * extension (EK_Q8_SDOT 1, the file built for armv8.2-a+dotprod) sdot; else smull (int16,
 * |w x| <= 127^2) and pairwise adds. */
#include <arm_neon.h>

#if EK_Q8_SDOT
#define EK_Q8_DOT(acc, w, x) vdotq_s32(acc, w, x)
#else
static inline int32x4_t ek_q8_dot_plain(int32x4_t acc, int8x16_t w, int8x16_t x) {
    int16x8_t lo = vmull_s8(vget_low_s8(w), vget_low_s8(x)), hi = vmull_high_s8(w, x);
    return vpadalq_s16(acc, vpaddq_s16(lo, hi));  /* lane i: the 4 products of bytes 4i .. 4i + 3 */
}
#define EK_Q8_DOT(acc, w, x) ek_q8_dot_plain(acc, w, x)
#endif

/* 1 where the CPU has the dot-product extension (HWCAP_ASIMDDP; lut/neon_q8.c) */
int ek_q8_neon_sdot(void);
