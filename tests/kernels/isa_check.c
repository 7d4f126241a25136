/* Checks one ISA path of libedgekit_kernels against the scalar reference, bit for bit, on random
 * LUT / shift / 2:4-sparse weights of odd shapes (tails, partial blocks, groups that split blocks).
 * Built and run by test_neon.py for AArch64 under qemu-user: `isa_check neon` prints
 * "ok <cases> cases" and exits 0, or prints the first mismatch and exits 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgekit_kernels.h"
#ifdef __aarch64__
#include <sys/auxv.h>
#define DOTPROD ((getauxval(AT_HWCAP) & (1 << 20)) != 0)  /* HWCAP_ASIMDDP: the q8 path uses sdot */
#else
#define DOTPROD 0
#endif

static unsigned long long state = 88172645463325252ull;
static unsigned rnd(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return (unsigned)(state >> 11); }
static float rndf(void) { return (float)(rnd() % 20001) / 10000.0f - 1.0f; }

typedef int (*linear_fn)(const ek_matrix *, const float *, int, const float *, float *, int, int);

static int check_with(linear_fn fn, ek_matrix *w, int n, int k, int m, int isa, const char *what) {
    float *x = malloc(sizeof(float) * m * k), *bias = malloc(sizeof(float) * n);
    float *ya = malloc(sizeof(float) * m * n), *yb = malloc(sizeof(float) * m * n);
    for (int i = 0; i < m * k; i++) x[i] = rndf();
    for (int i = 0; i < n; i++) bias[i] = rndf();
    int bad = 0;
    for (int threads = 1; threads <= 3 && !bad; threads += 2) {
        if (fn(w, x, m, bias, ya, 1, EK_ISA_SCALAR) || fn(w, x, m, bias, yb, threads, isa)) {
            printf("%s: ek_linear failed: %s\n", what, ek_kernels_last_error());
            bad = 1;
            break;
        }
        if (memcmp(ya, yb, sizeof(float) * m * n) != 0) {
            for (int i = 0; i < m * n; i++)
                if (ya[i] != yb[i]) { printf("%s n=%d k=%d m=%d threads=%d: y[%d] %.9g != reference %.9g\n", what, n, k, m, threads, i, yb[i], ya[i]); break; }
            bad = 1;
        }
    }
    free(x); free(bias); free(ya); free(yb);
    return bad;
}

static int check(ek_matrix *w, int n, int k, int m, int isa, const char *what) {
    return check_with(ek_linear, w, n, k, m, isa, what);
}

int main(int argc, char **argv) {
    const char *names[] = {"scalar", "avx2", "avx512", "neon"};
    int isa = -1;
    for (int i = 0; i < 4; i++) if (argc > 1 && !strcmp(argv[1], names[i])) isa = i;
    if (isa < 0) { printf("usage: isa_check scalar|avx2|avx512|neon\n"); return 2; }
    if (!ek_isa_supported(isa)) { printf("skip: %s not supported here\n", names[isa]); return 3; }
    /* K below, at and around the 32-column units of the 3-bit layout; rows and groups splitting blocks */
    const int shapes[][3] = {{1, 1, 0}, {16, 32, 0}, {17, 31, 0}, {37, 53, 0}, {50, 70, 24}, {33, 97, 5},
                             {64, 128, 16}, {129, 100, 32}, {200, 333, 7}, {16, 288, 0}};
    const int ms[] = {1, 2, 5, 9};
    const int q8 = ek_q8_isa_supported(isa);
    int cases = 0;
    for (int bits = 2; bits <= 4; bits++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int n = shapes[s][0], k = shapes[s][1], gs = shapes[s][2], nt = gs ? (n + gs - 1) / gs : 1;
            uint8_t *idx = malloc(n * k), *keep = malloc(n * k);
            float *tables = malloc(sizeof(float) * nt * 16), *scale = malloc(sizeof(float) * n);
            for (int i = 0; i < nt << bits; i++) tables[i] = (i % (1 << bits)) == 0 ? 0.0f : rndf();
            for (int i = 0; i < n; i++) scale[i] = 0.5f + rndf() * 0.25f;
            for (int i = 0; i < n * k; i++) idx[i] = rnd() % (1u << bits);
            for (int r = 0; r < n; r++)  /* 2 of 4 kept, the others index the table's 0 */
                for (int g = 0; g < k; g += 4) {
                    int a = rnd() % 4, b = (a + 1 + rnd() % 3) % 4;
                    for (int p = 0; p < 4 && g + p < k; p++) {
                        keep[r * k + g + p] = p == a || p == b;
                        if (!keep[r * k + g + p]) idx[r * k + g + p] = 0;
                        else if (idx[r * k + g + p] == 0) idx[r * k + g + p] = 1;
                    }
                }
            for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++) {
                ek_matrix *a = ek_pack_lut(n, k, bits, idx, 8, tables, 0, gs, scale);
                ek_matrix *b = ek_pack_shift(n, k, bits, idx, 8, scale);
                ek_matrix *c = ek_pack_sparse24_lut(n, k, bits, idx, 8, tables, 0, gs, NULL, keep);
                if (!a || !b || !c) { printf("pack failed: %s\n", ek_kernels_last_error()); return 1; }
                if (check(a, n, k, ms[mi], isa, "lut") || check(b, n, k, ms[mi], isa, "shift") ||
                    check(c, n, k, ms[mi], isa, "sparse24_lut"))
                    return 1;
                /* int8 activations: integer sums, so the same bits as the scalar q8 reference */
                if (q8 && (check_with(ek_linear_q8, a, n, k, ms[mi], isa, "lut_q8") ||
                           check_with(ek_linear_q8, b, n, k, ms[mi], isa, "shift_q8") ||
                           check_with(ek_linear_q8, c, n, k, ms[mi], isa, "sparse24_lut_q8")))
                    return 1;
                ek_matrix_free(a); ek_matrix_free(b); ek_matrix_free(c);
                cases += q8 ? 6 : 3;
            }
            free(idx); free(keep); free(tables); free(scale);
        }
    float a[1000];
    for (int i = 0; i < 1000; i++) a[i] = 1.0f;
    float s = ek_stream_sum(a, 1000, 2, isa);
    if (s != 1000.0f) { printf("stream_sum %g != 1000\n", s); return 1; }
    if (ek_fma_peak(1000, 1, isa) <= 0) { printf("fma_peak returned nothing\n"); return 1; }
    /* causal attention over a KV cache: the same bits as the scalar reference (same order of operations) */
    const int att[][6] = {{1, 1, 1, 1, 1, 0}, {4, 3, 1, 40, 64, 17}, {2, 2, 5, 37, 19, 7}, {3, 4, 3, 50, 33, 47},
                          {1, 2, 16, 16, 80, 0}};
    int att_cases = 0;
    for (size_t c = 0; c < sizeof att / sizeof att[0]; c++) {
        const int kv = att[c][0], rows = att[c][1] * att[c][2], t = att[c][2], sq = att[c][3], hd = att[c][4];
        const size_t nq = (size_t)kv * rows * hd, nc = (size_t)kv * sq * hd;
        float *q = malloc(sizeof(float) * nq), *kc = malloc(sizeof(float) * nc), *vc = malloc(sizeof(float) * nc);
        float *o = malloc(sizeof(float) * nq), *ref = malloc(sizeof(float) * nq);
        for (size_t i = 0; i < nq; i++) q[i] = 2.0f * rndf();
        for (size_t i = 0; i < nc; i++) { kc[i] = 2.0f * rndf(); vc[i] = rndf(); }
        if (ek_attention(q, kc, vc, kv, rows, t, sq, hd, att[c][5], ref, EK_ISA_SCALAR) ||
            ek_attention(q, kc, vc, kv, rows, t, sq, hd, att[c][5], o, isa)) {
            printf("attention failed: %s\n", ek_kernels_last_error());
            return 1;
        }
        if (memcmp(o, ref, sizeof(float) * nq)) { printf("attention case %zu differs from the reference\n", c); return 1; }
        free(q); free(kc); free(vc); free(o); free(ref);
        att_cases++;
    }
    printf("ok %d cases, %d attention (%s%s%s)\n", cases, att_cases, names[isa], q8 ? ", q8" : "",
           DOTPROD ? ", dotprod" : "");
    return 0;
}
