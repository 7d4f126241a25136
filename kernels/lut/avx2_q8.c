/* LUT product with int8 activations, AVX2 (src/avx2_q8_tile.h): pmaddubsw + pmaddwd products, or
 * the AVX-VNNI version (lut/avx2_q8_vnni.c, vpdpbusd on ymm) where the CPU has it (cpuid 7.1 EAX
 * bit 4); EDGEKIT_KERNELS_NO_AVXVNNI=1 (read once) keeps this one, for tests. */
#include <cpuid.h>
#include <stdlib.h>

#define EK_Q8_VNNI 0
#define EK_Q8_NAME ek_lut_q8_rows_avx2_plain
#include "../src/avx2_q8_tile.h"

void ek_lut_q8_rows_avx2_vnni(const ek_matrix *, const int8_t *, int, int, int, int, int32_t *, int);

int ek_q8_avx_vnni(void) {
    static int vnni = -1;
    if (vnni < 0) {
        unsigned a = 0, b = 0, c = 0, d = 0;
        const char *off = getenv("EDGEKIT_KERNELS_NO_AVXVNNI");
        vnni = __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4)) && !(off && *off && *off != '0');
    }
    return vnni;
}

void ek_lut_q8_rows_avx2(const ek_matrix *w, const int8_t *xq, int m, int ldx, int b0, int b1, int32_t *y, int ldy) {
    if (ek_q8_avx_vnni()) ek_lut_q8_rows_avx2_vnni(w, xq, m, ldx, b0, b1, y, ldy);
    else ek_lut_q8_rows_avx2_plain(w, xq, m, ldx, b0, b1, y, ldy);
}
