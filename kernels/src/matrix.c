/* Packing helpers shared by the formats: index streams, fp16 tables, errors, decode. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matrix.h"
#include "pack.h"
#include "q8.h"

static _Thread_local char last_error[256];

const char *ek_kernels_last_error(void) { return last_error; }

void *ek_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return NULL;
}

void ek_clear_error(void) { last_error[0] = 0; }

#define ek_fail_int(...) (ek_fail(__VA_ARGS__) != NULL)

uint8_t ek_index_at(const uint8_t *indices, int bits_in, size_t i) {
    if (bits_in == 8) return indices[i];
    size_t bit = i * (size_t)bits_in;
    unsigned v = indices[bit >> 3] | ((bit + bits_in > ((bit >> 3) + 1) * 8) ? indices[(bit >> 3) + 1] << 8 : 0);
    return (uint8_t)((v >> (bit & 7)) & ((1u << bits_in) - 1));
}

float ek_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {  /* subnormal: normalise */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int ek_check_common(int n, int k, int bits, int index_bits_in, int group_size) {
    if (n < 1 || k < 1) return ek_fail_int("shape %d x %d is invalid; rows and columns must be >= 1", n, k);
    if (bits < 2 || bits > 4) return ek_fail_int("bits = %d is invalid; valid: 2, 3 or 4", bits);
    if (index_bits_in != 8 && index_bits_in != bits)
        return ek_fail_int("index_bits_in = %d is invalid; valid: 8 (one index per byte) or %d (packed stream)",
                        index_bits_in, bits);
    if (group_size < 0) return ek_fail_int("group_size = %d is invalid; valid: 0 (one table) or >= 1", group_size);
    return 1;
}

/* Layout of a format: words per row, padded columns (src/matrix.h). */
static void ek_layout(ek_matrix *w) {
    const int F = ek_fields(w->bits);
    w->fields = F;
    w->nblocks = (w->n + EK_LANES - 1) / EK_LANES;
    w->ntables = w->format == EK_SHIFT ? 1 : w->group_size ? (w->n + w->group_size - 1) / w->group_size : 1;
    if (w->format == EK_SPARSE24_LUT) {
        int chunks = (w->k + 31) / 32;
        w->code_words = (16 + F - 1) / F;
        w->words = chunks / 4 * (3 + 4 * w->code_words) + chunks % 4 * (1 + w->code_words);
        w->kpad = chunks * 32;
    } else if (ek_lut3(w)) {
        const int units = (w->k + 31) / 32;
        w->words = 3 * units;
        w->kpad = 32 * units;
    } else {
        w->words = (w->k + F - 1) / F;
        w->kpad = w->words * F;
    }
}

/* The small per-row / per-block table maps (always ours). */
static int ek_maps(ek_matrix *w) {
    w->block_table = malloc(sizeof(int32_t) * w->nblocks);
    w->row_table = malloc(sizeof(int32_t) * w->n);
    if (!w->block_table || !w->row_table) return 0;
    for (int r = 0; r < w->n; r++) w->row_table[r] = w->group_size ? r / w->group_size : 0;
    for (int b = 0; b < w->nblocks; b++) {
        int first = w->row_table[b * EK_LANES];
        int last_row = (b + 1) * EK_LANES - 1 < w->n - 1 ? (b + 1) * EK_LANES - 1 : w->n - 1;
        w->block_table[b] = w->row_table[last_row] == first ? first : -1;
    }
    return 1;
}

ek_matrix *ek_alloc(int format, int n, int k, int bits, int group_size) {
    ek_matrix *w = calloc(1, sizeof *w);
    if (!w) return ek_fail("out of memory");
    w->format = format; w->n = n; w->k = k; w->bits = bits; w->group_size = format == EK_SHIFT ? 0 : group_size;
    w->owns = 1;
    ek_layout(w);
    size_t nwords = ek_data_words(w);
    /* 64-byte aligned: one block word row is one cache line */
    if (posix_memalign((void **)&w->data, 64, nwords * 4 + 64)) w->data = NULL;
    w->tables = calloc((size_t)w->ntables * 16, sizeof(float));
    if (!w->data || !w->tables || !ek_maps(w)) { ek_matrix_free(w); return ek_fail("out of memory"); }
    memset(w->data, 0, nwords * 4);
    if (format == EK_SPARSE24_LUT)
        for (int i = 0; i < EK_SPARSE_MARK_WORDS; i++) w->data[ek_block_words(w) + i] = EK_SPARSE_MARK;
    return w;
}

ek_matrix *ek_pack_begin(int format, int n, int k, int bits, const void *indices, int index_bits_in,
                         const void *tables, int group_size) {
    ek_clear_error();
    if (!ek_check_common(n, k, bits, index_bits_in, group_size)) return NULL;
    if (!indices || !tables) return ek_fail("indices and tables are required");
    return ek_alloc(format, n, k, bits, group_size);
}

ek_matrix *ek_matrix_wrap(int format, int n, int k, int bits, int group_size, const uint32_t *data,
                          const float *tables, const float *row_scale) {
    ek_clear_error();
    if (format < EK_LUT || format > EK_SPARSE24_LUT) return ek_fail("format %d is invalid; valid: 0 lut, 1 shift, 2 sparse24_lut", format);
    if (!ek_check_common(n, k, bits, 8, group_size)) return NULL;
    if (!data || !tables) return ek_fail("data and tables are required");
    ek_matrix *w = calloc(1, sizeof *w);
    if (!w) return ek_fail("out of memory");
    w->format = format; w->n = n; w->k = k; w->bits = bits; w->group_size = format == EK_SHIFT ? 0 : group_size;
    ek_layout(w);
    if (format == EK_SPARSE24_LUT) {
        const uint32_t *mark = data + ek_block_words(w);
        for (int i = 0; i < EK_SPARSE_MARK_WORDS; i++)
            if (mark[i] != EK_SPARSE_MARK) {
                free(w);
                return ek_fail("the packed 2:4 data has no layout mark: it was written by an edgekit with the former "
                               "2:4 layout (2-bit positions); re-export it with this edgekit");
            }
    }
    w->data = (uint32_t *)data; w->tables = (float *)tables; w->row_scale = (float *)row_scale;
    if (!ek_maps(w) || !ek_set_q8(w)) { ek_matrix_free(w); return ek_fail("out of memory"); }
    if (format == EK_SPARSE24_LUT)  /* stored at pack time (src/matrix.h) */
        w->q8_corr = (int32_t *)(data + ek_block_words(w) + EK_SPARSE_MARK_WORDS);
    return w;
}

int64_t ek_packed_words(int format, int n, int k, int bits) {
    if (format < EK_LUT || format > EK_SPARSE24_LUT || n < 1 || k < 1 || bits < 2 || bits > 4) return -1;
    ek_matrix w = {0};
    w.format = format; w.n = n; w.k = k; w.bits = bits;
    ek_layout(&w);
    return (int64_t)ek_data_words(&w);
}

void ek_matrix_info(const ek_matrix *w, int64_t info[8]) {
    info[0] = w->format; info[1] = w->n; info[2] = w->k; info[3] = w->bits; info[4] = w->group_size;
    info[5] = (int64_t)ek_data_words(w); info[6] = w->ntables; info[7] = w->row_scale != NULL;
}

void ek_matrix_copy(const ek_matrix *w, uint32_t *data, float *tables, float *row_scale) {
    if (data) memcpy(data, w->data, sizeof(uint32_t) * ek_data_words(w));
    if (tables) memcpy(tables, w->tables, sizeof(float) * (size_t)w->ntables * 16);
    if (row_scale && w->row_scale) memcpy(row_scale, w->row_scale, sizeof(float) * w->n);
}

int ek_set_tables(ek_matrix *w, const void *tables, int fp16, const float *row_scale) {
    const int entries = 1 << w->bits;
    for (int t = 0; t < w->ntables; t++)
        for (int c = 0; c < 16; c++) {
            size_t src = (size_t)t * entries + (c % entries);
            w->tables[t * 16 + c] = fp16 ? ek_half_to_float(((const uint16_t *)tables)[src])
                                         : ((const float *)tables)[src];
        }
    if (row_scale) {
        w->row_scale = malloc(sizeof(float) * w->n);
        if (!w->row_scale) return 0;
        memcpy(w->row_scale, row_scale, sizeof(float) * w->n);
    }
    return ek_set_q8(w);
}

void ek_matrix_free(ek_matrix *w) {
    if (!w) return;
    if (w->owns) { free(w->data); free(w->tables); free(w->row_scale); }
    free(w->block_table); free(w->row_table); free(w->q8_tables); free(w->q8_scale);
    free(w);
}

int ek_matrix_rows(const ek_matrix *w) { return w->n; }
int ek_matrix_cols(const ek_matrix *w) { return w->k; }

size_t ek_matrix_bytes(const ek_matrix *w) {
    return ek_block_words(w) * 4 + (size_t)w->ntables * (4u << w->bits)
           + (w->row_scale ? (size_t)w->n * 4 : 0);
}

int ek_decode(const ek_matrix *w, float *out) {
    /* one-hot products through the reference: exact, and independent of the layout details */
    float *x = calloc((size_t)w->kpad, sizeof(float)), *col = malloc(sizeof(float) * w->n);
    if (!x || !col) { free(x); free(col); ek_fail("out of memory"); return EK_ENOMEM; }
    ek_rows_fn ref = w->format == EK_SPARSE24_LUT ? ek_sparse_rows_ref : ek_lut_rows_ref;
    for (int k = 0; k < w->k; k++) {
        x[k] = 1.0f;
        ref(w, x, 1, w->kpad, 0, w->nblocks, col, w->n);
        for (int r = 0; r < w->n; r++) out[(size_t)r * w->k + k] = w->row_scale ? col[r] * w->row_scale[r] : col[r];
        x[k] = 0.0f;
    }
    free(x); free(col);
    return EK_OK;
}
