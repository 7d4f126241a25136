/* SHIFT packing. A shift weight is +-2^e times its row's scale: a LUT whose table is fixed
 * (+-2^e, in the order the exporter records) and whose row scale is the layer scale. So it runs
 * on the LUT kernels (lut/ directory): a table lookup costs the same as decoding sign and exponent and
 * keeps one code path per ISA; the scale is applied once per row after the sum. */
#include <math.h>

#include "../src/pack.h"

ek_matrix *ek_pack_lut_format(int format, int n, int k, int bits, const uint8_t *indices, int index_bits_in,
                              const void *tables, int tables_fp16, int group_size, const float *row_scale);

ek_matrix *ek_pack_shift(int n, int k, int bits, const uint8_t *codes, int index_bits_in, const float *row_scale) {
    ek_clear_error();
    if (!row_scale) return ek_fail("row_scale is required for shift weights (the layer scale, once per row)");
    float table[16];
    const int E = 1 << (bits - 1);
    for (int c = 0; c < 2 * E; c++) table[c] = c >= E ? ldexpf(1.0f, c - E) : -ldexpf(1.0f, E - 1 - c);
    return ek_pack_lut_format(EK_SHIFT, n, k, bits, codes, index_bits_in, table, 0, 0, row_scale);
}
