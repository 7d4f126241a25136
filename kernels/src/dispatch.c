/* Public entry points: CPU feature detection, the ISA choice, threading over row blocks, epilogue. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "matrix.h"
#include "pack.h"
#include "pool.h"
#include "q8.h"

/* pseudo-ISA for cpu_has: AVX-512 with the VNNI and VBMI extensions (the AVX-512 q8 path) */
#define EK_Q8_AVX512 4

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static int xgetbv_ok(unsigned mask) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;  /* OSXSAVE */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & mask) == mask;
}
static int cpu_has(int isa) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
    __get_cpuid(1, &a1, &b1, &c1, &d1);
    int avx2 = (b & (1u << 5)) && (c1 & (1u << 12)) && xgetbv_ok(0x6);  /* AVX2, FMA, OS saves ymm */
    if (isa == EK_ISA_AVX2) return avx2;
    if (isa == EK_ISA_AVX512) return avx2 && (b & (1u << 16)) && (b & (1u << 30)) && xgetbv_ok(0xe6);  /* F, BW, zmm */
    if (isa == EK_Q8_AVX512) return cpu_has(EK_ISA_AVX512) && (c & (1u << 1)) && (c & (1u << 11));  /* VBMI, VNNI */
    return 0;
}
#elif defined(__aarch64__)
static int cpu_has(int isa) { return isa == EK_ISA_NEON; }  /* Advanced SIMD is mandatory on AArch64 */
#else
static int cpu_has(int isa) { (void)isa; return 0; }
#endif

typedef struct {
    ek_rows_fn lut, sparse;
    float (*sum)(const float *, size_t);
    double (*peak)(long);
    ek_attention_fn attention;
} ek_paths;

static int built(int isa) {
    switch (isa) {
    case EK_ISA_SCALAR: return 1;
#ifdef EK_HAVE_AVX2
    case EK_ISA_AVX2: return 1;
#endif
#ifdef EK_HAVE_AVX512
    case EK_ISA_AVX512: return 1;
#endif
#ifdef EK_HAVE_NEON
    case EK_ISA_NEON: return 1;
#endif
    default: return 0;
    }
}

static ek_paths paths_of(int isa) {
    ek_paths p = {ek_lut_rows_ref, ek_sparse_rows_ref, ek_sum_ref, ek_peak_ref, ek_attention_ref};
#ifdef EK_HAVE_AVX2
    if (isa == EK_ISA_AVX2) p = (ek_paths){ek_lut_rows_avx2, ek_sparse_rows_avx2, ek_sum_avx2, ek_peak_avx2,
                                   ek_attention_avx2};
#endif
#ifdef EK_HAVE_AVX512
    if (isa == EK_ISA_AVX512) p = (ek_paths){ek_lut_rows_avx512, ek_sparse_rows_avx512, ek_sum_avx512, ek_peak_avx512,
                                   ek_attention_avx512};
#endif
#ifdef EK_HAVE_NEON
    if (isa == EK_ISA_NEON) p = (ek_paths){ek_lut_rows_neon, ek_sparse_rows_neon, ek_sum_neon, ek_peak_neon,
                                   ek_attention_neon};
#endif
    return p;
}

/* cpuid is a VM exit under a hypervisor (tens of microseconds): ask once per ISA */
static int cpu_has_cached(int isa) {
    static int known[5] = {-1, -1, -1, -1, -1};
    if (isa < 0 || isa > 4) return 0;
    if (known[isa] < 0) known[isa] = cpu_has(isa);
    return known[isa];
}

int ek_isa_supported(int isa) { return isa == EK_ISA_SCALAR || (built(isa) && cpu_has_cached(isa)); }

int ek_isa_best(void) {
    static const int order[] = {EK_ISA_AVX512, EK_ISA_AVX2, EK_ISA_NEON};
    for (int i = 0; i < 3; i++)
        if (ek_isa_supported(order[i])) return order[i];
    return EK_ISA_SCALAR;
}

const char *ek_isa_name(int isa) {
    switch (isa) {
    case EK_ISA_SCALAR: return "scalar";
    case EK_ISA_AVX2: return "avx2";
    case EK_ISA_AVX512: return "avx512";
    case EK_ISA_NEON: return "neon";
    default: return "unknown";
    }
}

static int resolve(int isa) {
    if (isa == EK_ISA_AUTO) return ek_isa_best();
    if (!ek_isa_supported(isa)) {
        ek_fail("ISA %s (%d) is not available here (built: %d, cpu: %d); best here: %s", ek_isa_name(isa), isa,
                built(isa), cpu_has_cached(isa), ek_isa_name(ek_isa_best()));
        return -1;
    }
    return isa;
}

typedef struct {
    const ek_matrix *w;
    const float *x;
    int m, ldx;
    const float *bias;
    float *y;
    ek_rows_fn fn;
    int parts;
    ek_rows_q8_fn q8;    /* int8 activations: x is xq (int8, ldx bytes a row), sx its scales */
    const float *sx;
} linear_job;

static void linear_part(void *arg, int part) {
    const linear_job *j = arg;
    const ek_matrix *w = j->w;
    int b0 = (int)((long)w->nblocks * part / j->parts), b1 = (int)((long)w->nblocks * (part + 1) / j->parts);
    if (b0 >= b1) return;
    int r0 = b0 * EK_LANES, r1 = b1 * EK_LANES < w->n ? b1 * EK_LANES : w->n;
    if (j->q8) j->q8(w, (const int8_t *)j->x, j->m, j->ldx, b0, b1, (int32_t *)(void *)j->y, w->n);
    else j->fn(w, j->x, j->m, j->ldx, b0, b1, j->y, w->n);
    for (int mi = 0; mi < j->m; mi++) {
        float *yr = j->y + (size_t)mi * w->n;
        if (j->q8) ek_q8_finish(w, j->sx[mi], r0, r1, yr);
        if (w->row_scale)
            for (int r = r0; r < r1; r++) yr[r] = yr[r] * w->row_scale[r];
        if (j->bias)
            for (int r = r0; r < r1; r++) yr[r] = yr[r] + j->bias[r];
    }
}

static int default_threads = 1;
void ek_set_default_threads(int threads) { default_threads = threads > 0 ? threads : 1; }
int ek_default_threads(void) { return default_threads; }
void ek_set_pool_spin_us(int us) { ek_pool_set_spin(us < 0 ? 0 : (long)us * 1000); }
int ek_pool_spin_us(void) { return (int)(ek_pool_spin() / 1000); }

/* the parts of a product: on the caller's runner when given, else on edgekit's pool */
static void run_parts(ek_runner run, void *ctx, void (*fn)(void *, int), void *arg, int parts) {
    if (run && parts > 1) run(ctx, fn, arg, parts);
    else ek_pool_run(fn, arg, parts);
}

static int linear_fp32(const ek_matrix *w, const float *x, int m, const float *bias, float *y, int threads, int isa,
                       ek_runner run, void *ctx) {
    ek_clear_error();
    if (!w || !x || !y || m < 1) { ek_fail("null argument or m < 1"); return EK_EINVAL; }
    isa = resolve(isa);
    if (isa < 0) return EK_EISA;
    ek_paths p = paths_of(isa);
    /* kernels read kpad columns: copy x into a zero-padded buffer when k is not a multiple */
    float *xp = NULL;
    int ldx = w->k;
    if (w->kpad != w->k) {
        ldx = w->kpad;
        if (posix_memalign((void **)&xp, 64, sizeof(float) * (size_t)m * ldx)) { ek_fail("out of memory"); return EK_ENOMEM; }
        for (int mi = 0; mi < m; mi++) {
            memcpy(xp + (size_t)mi * ldx, x + (size_t)mi * w->k, sizeof(float) * w->k);
            memset(xp + (size_t)mi * ldx + w->k, 0, sizeof(float) * (ldx - w->k));
        }
    }
    if (threads < 1) threads = default_threads;
    if (threads > w->nblocks) threads = w->nblocks;
    linear_job job = {w, xp ? xp : x, m, ldx, bias, y, w->format == EK_SPARSE24_LUT ? p.sparse : p.lut, threads,
                      NULL, NULL};
    run_parts(run, ctx, linear_part, &job, threads);
    free(xp);
    return EK_OK;
}

/* The q8 path of an ISA for a format (LUT and SHIFT share one; 2:4 has its own): AVX-512 needs VNNI
 * and VBMI too; NULL when this build or CPU has none. */
static ek_rows_q8_fn q8_path_of(int isa, int format) {
    const int sparse = format == EK_SPARSE24_LUT;
    if (isa == EK_ISA_SCALAR) return sparse ? ek_sparse_q8_rows_ref : ek_lut_q8_rows_ref;
#ifdef EK_HAVE_AVX512
    if (isa == EK_ISA_AVX512 && ek_isa_supported(isa) && cpu_has_cached(EK_Q8_AVX512))
        return sparse ? ek_sparse_q8_rows_avx512 : ek_lut_q8_rows_avx512;
#endif
#ifdef EK_HAVE_AVX2
    if (isa == EK_ISA_AVX2 && ek_isa_supported(isa)) return sparse ? ek_sparse_q8_rows_avx2 : ek_lut_q8_rows_avx2;
#endif
#ifdef EK_HAVE_NEON
    if (isa == EK_ISA_NEON && ek_isa_supported(isa)) return sparse ? ek_sparse_q8_rows_neon : ek_lut_q8_rows_neon;
#endif
    return NULL;
}
static ek_rows_q8_fn q8_path(int isa) { return q8_path_of(isa, EK_LUT); }

int ek_q8_isa_supported(int isa) { return q8_path(isa) != NULL; }

static int q8_best_of(int format) {
    static const int order[] = {EK_ISA_AVX512, EK_ISA_AVX2, EK_ISA_NEON};
    for (int i = 0; i < 3; i++)
        if (q8_path_of(order[i], format)) return order[i];
    return EK_ISA_SCALAR;
}
int ek_q8_isa_best(void) { return q8_best_of(EK_LUT); }

static int linear_q8(const ek_matrix *w, const float *x, int m, const float *bias, float *y, int threads, int isa,
                     ek_runner run, void *ctx) {
    ek_clear_error();
    if (!w || !x || !y || m < 1) { ek_fail("null argument or m < 1"); return EK_EINVAL; }
    if (!w->q8_tables) {
        ek_fail("out of memory for the weight's int8 tables");
        return EK_ENOMEM;
    }
    if (w->k > EK_Q8_MAX_K) { ek_fail("k = %d exceeds %d, where int32 sums of int8 products may overflow", w->k, EK_Q8_MAX_K); return EK_EINVAL; }
    if (isa == EK_ISA_AUTO) isa = q8_best_of(w->format);
    ek_rows_q8_fn fn = q8_path_of(isa, w->format);
    if (!fn) {
        ek_fail("ISA %s (%d) has no int8-activation path for %s weights here (AVX-512 needs VNNI and VBMI); "
                "best here: %s", ek_isa_name(isa), isa,
                w->format == EK_SPARSE24_LUT ? "2:4-sparse" : "LUT and SHIFT", ek_isa_name(q8_best_of(w->format)));
        return EK_EISA;
    }
    const int ld = ek_q8_ldx(w);
    int8_t *xq = NULL;
    float *sx = malloc(sizeof(float) * m);
    if (!sx || posix_memalign((void **)&xq, 64, (size_t)m * ld)) { free(sx); ek_fail("out of memory"); return EK_ENOMEM; }
    ek_q8_quantize(w, x, m, xq, sx);
    if (threads < 1) threads = default_threads;
    if (threads > w->nblocks) threads = w->nblocks;
    linear_job job = {w, (const float *)(const void *)xq, m, ld, bias, y, NULL, threads, fn, sx};
    run_parts(run, ctx, linear_part, &job, threads);
    free(xq); free(sx);
    return EK_OK;
}

int ek_linear(const ek_matrix *w, const float *x, int m, const float *bias, float *y, int threads, int isa) {
    return linear_fp32(w, x, m, bias, y, threads, isa, NULL, NULL);
}

int ek_linear_q8(const ek_matrix *w, const float *x, int m, const float *bias, float *y, int threads, int isa) {
    return linear_q8(w, x, m, bias, y, threads, isa, NULL, NULL);
}

int ek_linear_on(const ek_matrix *w, const float *x, int m, const float *bias, float *y, int parts, int isa, int q8,
                 ek_runner run, void *ctx) {
    if (parts < 1) parts = 1;
    return (q8 ? linear_q8 : linear_fp32)(w, x, m, bias, y, parts, isa, run, ctx);
}

typedef struct { const float *a; size_t n; int parts; float (*sum)(const float *, size_t); float out[64]; } sum_job;

static void sum_part(void *arg, int part) {
    sum_job *j = arg;
    size_t s = j->n * part / j->parts, e = j->n * (part + 1) / j->parts;
    s &= ~(size_t)15; if (part + 1 < j->parts) e &= ~(size_t)15;  /* 64-byte aligned parts */
    j->out[part] = j->sum(j->a + s, e - s);
}

float ek_stream_sum(const float *a, size_t n, int threads, int isa) {
    isa = resolve(isa);
    if (isa < 0) return 0.0f;
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    sum_job job = {a, n, threads, paths_of(isa).sum, {0}};
    ek_pool_run(sum_part, &job, threads);
    float total = 0.0f;
    for (int i = 0; i < threads; i++) total += job.out[i];
    return total;
}

typedef struct { long iters; double (*peak)(long); double out[64]; } peak_job;

static void peak_part(void *arg, int part) {
    peak_job *j = arg;
    j->out[part] = j->peak(j->iters);
}

double ek_fma_peak(long iters, int threads, int isa) {
    isa = resolve(isa);
    if (isa < 0) return 0.0;
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    peak_job job = {iters, paths_of(isa).peak, {0}};
    ek_pool_run(peak_part, &job, threads);
    double flops = 0;
    for (int i = 0; i < threads; i++) flops += job.out[i];
    return flops;
}

int ek_attention(const float *q, const float *k, const float *v, int kv, int rows, int t, int s, int hd, int start,
                 float *out, int isa) {
    ek_clear_error();
    if (!q || !k || !v || !out) { ek_fail("null argument"); return EK_EINVAL; }
    if (kv < 1 || rows < 1 || t < 1 || s < 1 || hd < 1 || rows % t || start < 0 || start + t > s) {
        ek_fail("attention: bad shape kv=%d rows=%d t=%d s=%d hd=%d start=%d (need rows a multiple of t, "
                "start + t <= s)", kv, rows, t, s, hd, start);
        return EK_EINVAL;
    }
    isa = resolve(isa);
    if (isa < 0) return EK_EISA;
    float stack[2048], *w = s <= 2048 ? stack : malloc(sizeof(float) * (size_t)s);
    if (!w) { ek_fail("out of memory"); return EK_ENOMEM; }
    paths_of(isa).attention(q, k, v, kv, rows, t, s, hd, start, w, out);
    if (w != stack) free(w);
    return EK_OK;
}
