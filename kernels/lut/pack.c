/* LUT packing: N x K indices -> 16-row interleaved blocks of F-index words (src/matrix.h). */
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
