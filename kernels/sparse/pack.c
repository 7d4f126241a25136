/* 2:4 sparse + LUT packing: per row and group of 4 columns, the (at most) 2 kept weights as their
 * b-bit indices and the pair of their positions as a 3-bit combination code, in 32-column chunks
 * and 128-column quads (src/matrix.h). */
#include <stdlib.h>

#include "../src/pack.h"
#include "../src/q8.h"

ek_matrix *ek_pack_sparse24_lut(int n, int k, int bits, const uint8_t *indices, int index_bits_in,
                                const void *tables, int tables_fp16, int group_size,
                                const float *row_scale, const uint8_t *keep) {
    ek_matrix *w = ek_pack_begin(EK_SPARSE24_LUT, n, k, bits, indices, index_bits_in, tables, group_size);
    if (!w) return NULL;
    const int F = w->fields;
    if (!ek_set_tables(w, tables, tables_fp16, row_scale)) { ek_matrix_free(w); return ek_fail("out of memory"); }
    const uint8_t limit = (uint8_t)(1u << bits);
    const int chunks = w->kpad / 32;
    for (int r = 0; r < n; r++) {
        const float *t = w->tables + (size_t)w->row_table[r] * 16;
        int zero = -1;  /* an index of value 0 in this row's table, for padding */
        for (int c = (1 << bits) - 1; c >= 0; c--) if (t[c] == 0.0f) zero = c;
        uint32_t *dst = w->data + (size_t)(r / EK_LANES) * w->words * EK_LANES + r % EK_LANES;
        for (int c = 0; c < chunks; c++) {
            uint32_t field = 0;  /* the chunk's 8 combination codes */
            uint32_t *codes = dst + ek_sparse_codes_at(w, c) * EK_LANES;
            for (int gi = 0; gi < 8; gi++) {
                const int g = c * 8 + gi;
                int pos[2], code[2], kept = 0, is_kept[4] = {0};
                for (int p = 0; p < 4; p++) {
                    int col = g * 4 + p;
                    if (col >= k) continue;
                    uint8_t v = ek_index_at(indices, index_bits_in, (size_t)r * k + col);
                    if (v >= limit) { ek_matrix_free(w); return ek_fail("index %u at row %d column %d exceeds %d bits", v, r, col, bits); }
                    is_kept[p] = keep ? keep[(size_t)r * k + col] != 0 : t[v] != 0.0f;
                    if (!is_kept[p]) {
                        if (t[v] != 0.0f && keep) { ek_matrix_free(w); return ek_fail("row %d column %d is not kept but its table value is %g, not 0", r, col, t[v]); }
                        continue;
                    }
                    if (kept == 2) { ek_matrix_free(w); return ek_fail("row %d columns %d..%d keep more than 2 of 4 weights; not 2:4 sparse", r, g * 4, g * 4 + 3); }
                    pos[kept] = p; code[kept++] = v;
                }
                /* pad with positions not kept (their x is multiplied by the table's 0): the pair must
                 * be 2 distinct positions, the combination code's only form */
                for (int p = 0; p < 4 && kept < 2; p++) {
                    if (is_kept[p]) continue;
                    if (zero < 0) { ek_matrix_free(w); return ek_fail("row %d columns %d..%d keep fewer than 2 weights and the row's table has no 0 entry to pad with", r, g * 4, g * 4 + 3); }
                    is_kept[p] = 1; pos[kept] = p; code[kept++] = zero;
                }
                if (pos[0] > pos[1]) { int tp = pos[0], tc = code[0]; pos[0] = pos[1]; code[0] = code[1]; pos[1] = tp; code[1] = tc; }
                field |= ek_sparse_combo(pos[0], pos[1]) << (3 * gi);
                for (int s = 0; s < 2; s++) {
                    int j = gi * 2 + s;
                    codes[(size_t)(j / F) * EK_LANES] |= (uint32_t)code[s] << (bits * (j % F));
                }
            }
            /* bits [24 i, 24 i + 24) of the quad's 3 position words, the first words of its chunks 0-2 */
            const int i = c % 4, lo = 24 * i;
            dst[ek_sparse_chunk_at(w, c - i + lo / 32) * EK_LANES] |= field << (lo % 32);
            if (lo % 32 + 24 > 32) dst[ek_sparse_chunk_at(w, c - i + lo / 32 + 1) * EK_LANES] |= field >> (32 - lo % 32);
        }
    }
    /* the int8-activation corrections, stored in the data: a wrapped copy (a .pte's) reads them */
    w->q8_corr = (int32_t *)(w->data + ek_block_words(w) + EK_SPARSE_MARK_WORDS);
    ek_sparse_q8_corr(w, w->q8_corr);
    return w;
}
