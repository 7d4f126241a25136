/* LUT (and SHIFT) products with int8 activations: the opt-in, approximate "q8" family.
 *
 * At pack time each table is quantized symmetrically to int8 (ek_set_q8): st = max|T| / 127,
 * tq[c] = round(T[c] / st). Per call each row of x is quantized symmetrically to int8 with one scale
 * (ek_q8_quantize): sx = max|x| / 127, xq[k] = round(x[k] * 127 / max|x|), round half to even.
 * The kernels compute the exact int32 sum S = sum_k tq[idx[k]] * xq[k] (integer: every ISA gives the
 * same S, whatever its order), and the epilogue y = (float)S * (sx * st) (* row_scale + bias).
 * |S| <= K * 127 * 255 stays below 2^31 for K <= 66000 (checked: EK_Q8_MAX_K).
 *
 * Layout of xq per row: per word of F indices, ek_q8_groups(bits) groups of 4 bytes; byte j of group
 * s is the activation of column ek_q8_column(bits, s, j) of that word. It follows the order in which
 * the SIMD paths get index bytes out of a word (lut/avx512_q8.c). 3 bits: per 32-column unit of 3
 * words, 8 groups in column order (the layout puts 4 columns in the bytes of a word, src/matrix.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/matrix.h"
#include "../src/q8.h"

int ek_q8_column(int bits, int s, int j) {
    if (bits == 4) return 2 * j + s;            /* low nibbles: columns 0 2 4 6, high: 1 3 5 7 */
    if (bits == 3) return 4 * s + j;            /* of a 32-column unit (3 words): column order */
    return 4 * j + s;                           /* 2 bits: shift by 2s, byte j: column 4j + s */
}

int ek_set_q8(ek_matrix *w) {
    w->q8_tables = malloc((size_t)w->ntables * 64);
    w->q8_scale = malloc(sizeof(float) * w->ntables);
    if (!w->q8_tables || !w->q8_scale) return 0;
    const int entries = 1 << w->bits;
    for (int t = 0; t < w->ntables; t++) {
        const float *tab = w->tables + (size_t)t * 16;
        float amax = 0.0f;
        for (int c = 0; c < entries; c++) amax = fmaxf(amax, fabsf(tab[c]));
        const float st = amax > 0.0f ? amax / 127.0f : 1.0f;
        w->q8_scale[t] = st;
        for (int c = 0; c < 64; c++) {
            float q = nearbyintf(tab[c % entries] / st);
            w->q8_tables[(size_t)t * 64 + c] = (int8_t)(q > 127.0f ? 127.0f : q < -127.0f ? -127.0f : q);
        }
    }
    return 1;  /* 2:4: the corrections need the codes (ek_sparse_q8_corr, at pack time) */
}

/* 2:4 sparse: the row in column order (kpad bytes; the kernels gather by position); 3-bit LUT / SHIFT:
 * column order too (group s of a 32-column unit is columns 4s .. 4s + 3, src/matrix.h) */
int ek_q8_xbytes(const ek_matrix *w) {
    return w->format == EK_SPARSE24_LUT || ek_lut3(w) ? w->kpad : w->words * 4 * ek_q8_groups(w->bits);
}
int ek_q8_ldx(const ek_matrix *w) { return (ek_q8_xbytes(w) + 4 + 63) / 64 * 64; }

/* The activation pass runs once per product and row (a decode GEMV: every call). Its loops are built
 * three times (lut/q8_pass.h): for AVX-512, for AVX2 and for the baseline; GCC vectorizes each for its
 * ISA from the same scalar operations (no FMA: -ffp-contract=off), so all give the same bits. The one
 * this CPU runs is chosen at the first call; EDGEKIT_KERNELS_Q8_PASS=avx512|avx2|scalar (read once)
 * forces one the CPU has, so the tests run each here (ek_q8_pass_name says which ran). */
#define EK_PASS(name) name##_scalar
#include "q8_pass.h"
#undef EK_PASS
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx2")
#define EK_PASS(name) name##_avx2
#include "q8_pass.h"
#undef EK_PASS
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v4")
#define EK_PASS(name) name##_avx512
#include "q8_pass.h"
#undef EK_PASS
#pragma GCC pop_options
#endif

typedef struct {
    const char *name;
    float (*abs_max)(const float *, int);
    int32_t (*round_row)(const float *, int, float, int8_t *);
} q8_pass;

static const q8_pass PASSES[] = {
    {"scalar", abs_max_scalar, round_row_scalar},
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
    {"avx2", abs_max_avx2, round_row_avx2},
    {"avx512", abs_max_avx512, round_row_avx512},
#endif
};

static int pass_runs_here(const char *name) {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
    __builtin_cpu_init();
    if (!strcmp(name, "avx512"))  /* what its target, x86-64-v4, lets the compiler use */
        return __builtin_cpu_supports("x86-64-v4");
    if (!strcmp(name, "avx2")) return __builtin_cpu_supports("avx2");
#endif
    return !strcmp(name, "scalar");
}

static const q8_pass *pass_chosen(void) {
    static const q8_pass *chosen;  /* every thread picks the same: a benign race */
    const q8_pass *p = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (p) return p;
    const char *force = getenv("EDGEKIT_KERNELS_Q8_PASS");
    const int n = (int)(sizeof PASSES / sizeof PASSES[0]);
    p = &PASSES[0];
    for (int i = n - 1; i >= 0; i--)  /* the widest this CPU runs, or the one forced (when it runs here) */
        if (pass_runs_here(PASSES[i].name) && (!force || !*force || !strcmp(force, PASSES[i].name))) { p = &PASSES[i]; break; }
    __atomic_store_n(&chosen, p, __ATOMIC_RELEASE);
    return p;
}

const char *ek_q8_pass_name(void) { return pass_chosen()->name; }

/* one word's F activations (column order) to its groups' bytes (ek_q8_column), fixed patterns */
static void permute(const int8_t *l, int8_t *q, int bits) {
    if (bits == 4) {
        for (int j = 0; j < 4; j++) { q[j] = l[2 * j]; q[4 + j] = l[2 * j + 1]; }
    } else {
        for (int s = 0; s < 4; s++)
            for (int j = 0; j < 4; j++) q[4 * s + j] = l[4 * j + s];
    }
}

void ek_q8_quantize(const ek_matrix *w, const float *x, int m, int8_t *xq, float *sx) {
    const int F = w->fields, G = ek_q8_groups(w->bits), ld = ek_q8_ldx(w), k = w->k, kpad = w->kpad;
    const q8_pass *pass = pass_chosen();
    int8_t *lin = malloc((size_t)kpad);  /* the row in column order, zero-padded to kpad */
    if (!lin) { memset(xq, 0, (size_t)m * ld); memset(sx, 0, sizeof(float) * m); return; }
    for (int mi = 0; mi < m; mi++) {
        const float *xr = x + (size_t)mi * k;
        const float amax = pass->abs_max(xr, k), inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        sx[mi] = amax / 127.0f;
        const int32_t sum = pass->round_row(xr, k, inv, lin);
        memset(lin + k, 0, (size_t)(kpad - k));
        int8_t *q = xq + (size_t)mi * ld;
        if (w->format == EK_SPARSE24_LUT || ek_lut3(w)) memcpy(q, lin, (size_t)kpad);
        else
            for (int wi = 0; wi < w->words; wi++) permute(lin + (size_t)wi * F, q + (size_t)wi * 4 * G, w->bits);
        memcpy(q + ek_q8_xbytes(w), &sum, 4);
        memset(q + ek_q8_xbytes(w) + 4, 0, ld - ek_q8_xbytes(w) - 4);
    }
    free(lin);
}

void ek_q8_finish(const ek_matrix *w, float sx, int r0, int r1, float *y) {
    for (int r = r0; r < r1; r++) {
        int32_t acc;
        memcpy(&acc, y + r, 4);
        y[r] = (float)acc * (sx * w->q8_scale[w->row_table[r]]);
    }
}

static int32_t lut_q8_dot(const ek_matrix *w, const uint32_t *blk, int j, const int8_t *t, const int8_t *q) {
    const int bits = w->bits, G = ek_q8_groups(bits);
    const uint32_t mask = (1u << bits) - 1;
    int32_t acc = 0;
    if (ek_lut3(w)) {
        for (int u = 0; u < w->words / 3; u++) {
            const uint32_t *p = blk + (size_t)3 * u * EK_LANES + j;
            for (int c = 0; c < 32; c++) acc += t[ek_lut3_index(p[0], p[EK_LANES], p[2 * EK_LANES], c)] * q[32 * u + c];
        }
        return acc;
    }
    for (int wi = 0; wi < w->words; wi++) {
        const uint32_t word = blk[(size_t)wi * EK_LANES + j];
        for (int s = 0; s < G; s++)
            for (int i = 0; i < 4; i++) {
                int c = ek_q8_column(bits, s, i);
                if (c >= 0) acc += t[(word >> (bits * c)) & mask] * q[(wi * G + s) * 4 + i];
            }
    }
    return acc;
}

void ek_lut_q8_rows_ref(const ek_matrix *w, const int8_t *xq, int m, int ldx, int b0, int b1, int32_t *y, int ldy) {
    ek_rows_each_q8(w, xq, m, ldx, b0, b1, y, ldy, lut_q8_dot);
}
