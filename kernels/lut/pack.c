/* LUT packing: N x K indices -> 16-row interleaved blocks of F-index words, or for 3 bits of 32-column
 * units of 3 words (src/matrix.h). */
#include "../src/pack.h"

ek_matrix *ek_pack_lut_format(int format, int n, int k, int bits, const uint8_t *indices, int index_bits_in,
                              const void *tables, int tables_fp16, int group_size, const float *row_scale) {
    ek_matrix *w = ek_pack_begin(format, n, k, bits, indices, index_bits_in, tables, group_size);
    if (!w) return NULL;
    const int F = w->fields, words = w->words;
    const uint8_t limit = (uint8_t)(1u << bits);
    for (int r = 0; r < n; r++) {
        uint32_t *dst = w->data + (size_t)(r / EK_LANES) * words * EK_LANES + r % EK_LANES;
        for (int c = 0; c < k; c++) {
            uint8_t v = ek_index_at(indices, index_bits_in, (size_t)r * k + c);
            if (v >= limit) { ek_matrix_free(w); return ek_fail("index %u at row %d column %d exceeds %d bits", v, r, c, bits); }
            if (ek_lut3(w)) {  /* 32 columns in 3 words (src/matrix.h) */
                uint32_t *u = dst + (size_t)(c / 32) * 3 * EK_LANES;
                const int cc = c % 32;
                const int b = cc % 4, sh = 8 * b + 3 * ((cc % 8) / 4);
                if (cc < 24) {
                    u[(size_t)(cc / 8) * EK_LANES] |= (uint32_t)v << sh;
                } else {  /* the tail word (src/matrix.h): byte b = w0 bits 6-7, w2 bits 6-7, w1 bits 6-7 */
                    const uint32_t t = (uint32_t)v << sh;  /* its bits in the tail word */
                    u[0] |= ((t & 0x03030303u) << 6);
                    u[2 * EK_LANES] |= ((t & 0x0c0c0c0cu) << 4);
                    u[EK_LANES] |= ((t & 0x30303030u) << 2);
                }
                continue;
            }
            dst[(size_t)(c / F) * EK_LANES] |= (uint32_t)v << (bits * (c % F));
        }
    }
    if (!ek_set_tables(w, tables, tables_fp16, row_scale)) { ek_matrix_free(w); return ek_fail("out of memory"); }
    return w;
}

ek_matrix *ek_pack_lut(int n, int k, int bits, const uint8_t *indices, int index_bits_in,
                       const void *tables, int tables_fp16, int group_size, const float *row_scale) {
    return ek_pack_lut_format(EK_LUT, n, k, bits, indices, index_bits_in, tables, tables_fp16, group_size,
                              row_scale);
}
