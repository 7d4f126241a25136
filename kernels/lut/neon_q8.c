/* LUT product with int8 activations, plain NEON (AArch64 without the dot-product extension): the
 * products of a lane's 4 bytes by smull (int16, |w x| <= 127^2), pairwise adds into int32. Chooses
 * the sdot version (lut/neon_q8_dot.c) at run time where the CPU has it (HWCAP_ASIMDDP). */
#include <sys/auxv.h>

#include <arm_neon.h>

static inline int32x4_t dot_plain(int32x4_t acc, int8x16_t w, int8x16_t x) {
    int16x8_t lo = vmull_s8(vget_low_s8(w), vget_low_s8(x)), hi = vmull_high_s8(w, x);
    return vpadalq_s16(acc, vpaddq_s16(lo, hi));  /* lane i: the 4 products of bytes 4i .. 4i + 3 */
}

#define EK_Q8_NAME ek_lut_q8_rows_neon_plain
#define EK_Q8_DOT(acc, w, x) dot_plain(acc, w, x)
#include "../src/neon_q8_tile.h"

void ek_lut_q8_rows_neon_dot(const ek_matrix *, const int8_t *, int, int, int, int, int32_t *, int);

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif

void ek_lut_q8_rows_neon(const ek_matrix *w, const int8_t *xq, int m, int ldx, int b0, int b1, int32_t *y, int ldy) {
    static int dot = -1;
    if (dot < 0) dot = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
    if (dot) ek_lut_q8_rows_neon_dot(w, xq, m, ldx, b0, b1, y, ldy);
    else ek_lut_q8_rows_neon_plain(w, xq, m, ldx, b0, b1, y, ldy);
}
