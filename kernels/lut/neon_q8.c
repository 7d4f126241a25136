/* LUT product with int8 activations, plain NEON (AArch64 without the dot-product extension): the
 * products of a lane's 4 bytes by smull (int16, |w x| <= 127^2), pairwise adds into int32. Chooses
 * the sdot version (lut/neon_q8_dot.c) at run time where the CPU has it (HWCAP_ASIMDDP). */
#include <sys/auxv.h>

#define EK_Q8_SDOT 0
#define EK_Q8_NAME ek_lut_q8_rows_neon_plain
#include "../src/neon_q8_tile.h"

void ek_lut_q8_rows_neon_dot(const ek_matrix *, const int8_t *, int, int, int, int, int32_t *, int);

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif

int ek_q8_neon_sdot(void) {
    static int dot = -1;
    if (dot < 0) dot = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
    return dot;
}

void ek_lut_q8_rows_neon(const ek_matrix *w, const int8_t *xq, int m, int ldx, int b0, int b1, int32_t *y, int ldy) {
    (ek_q8_neon_sdot() ? ek_lut_q8_rows_neon_dot : ek_lut_q8_rows_neon_plain)(w, xq, m, ldx, b0, b1, y, ldy);
}
