/* Packing helpers shared by the formats: index streams, fp16 tables, errors, decode. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matrix.h"
#include "pack.h"

static _Thread_local char last_error[256];

const char *ek_last_error(void) { return last_error; }

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

ek_matrix *ek_alloc(int format, int n, int k, int bits, int words, int group_size) {
    ek_matrix *w = calloc(1, sizeof *w);
    if (!w) return ek_fail("out of memory");
    w->format = format; w->n = n; w->k = k; w->bits = bits;
    w->fields = ek_fields(bits);
    w->nblocks = (n + EK_LANES - 1) / EK_LANES;
    w->words = words;
    w->ntables = group_size ? (n + group_size - 1) / group_size : 1;
    size_t nwords = (size_t)w->nblocks * words * EK_LANES;
    /* 64-byte aligned: one block word row is one cache line */
    if (posix_memalign((void **)&w->data, 64, nwords * 4 + 64)) w->data = NULL;
    w->tables = calloc((size_t)w->ntables * 16, sizeof(float));
    w->block_table = malloc(sizeof(int32_t) * w->nblocks);
    w->row_table = malloc(sizeof(int32_t) * n);
    if (!w->data || !w->tables || !w->block_table || !w->row_table) { ek_free(w); return ek_fail("out of memory"); }
    memset(w->data, 0, nwords * 4);
    for (int r = 0; r < n; r++) w->row_table[r] = group_size ? r / group_size : 0;
    for (int b = 0; b < w->nblocks; b++) {
        int first = w->row_table[b * EK_LANES];
        int last_row = (b + 1) * EK_LANES - 1 < n - 1 ? (b + 1) * EK_LANES - 1 : n - 1;
        w->block_table[b] = w->row_table[last_row] == first ? first : -1;
    }
    return w;
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
    return 1;
}

void ek_free(ek_matrix *w) {
    if (!w) return;
    free(w->data); free(w->tables); free(w->block_table); free(w->row_table); free(w->row_scale);
    free(w);
}

int ek_matrix_rows(const ek_matrix *w) { return w->n; }
int ek_matrix_cols(const ek_matrix *w) { return w->k; }

size_t ek_matrix_bytes(const ek_matrix *w) {
    return (size_t)w->nblocks * w->words * EK_LANES * 4 + (size_t)w->ntables * (4u << w->bits)
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
