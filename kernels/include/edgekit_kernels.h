/* edgekit kernels: matrix products on compressed weights, executed compressed.
 *
 * Weight formats (the layouts edgekit's compression ledger records):
 *   LUT            b-bit indices (b = 2, 3, 4) into fp16 or fp32 tables, one table per tensor or per
 *                  group of `group_size` consecutive output rows; optional fp32 scale per row.
 *                  W[n][k] = table[n / group_size][idx[n][k]] * row_scale[n]
 *   SHIFT          b-bit codes c: sign + exponent, W = +-2^e * row_scale[n]. Codes follow the table
 *                  order the exporter records (-2^(E-1) .. -2^0, +2^0 .. +2^(E-1), E = 2^(b-1)):
 *                  c >= E: +2^(c-E); c < E: -2^(E-1-c). Run by the LUT kernels with that fixed table.
 *   SPARSE24_LUT   2:4 structured sparsity + LUT: in every 4 consecutive weights of a row at most 2
 *                  are kept; each kept weight stores its 2-bit position and its b-bit table index.
 *
 * Input indices: row-major N x K, either one per byte (index_bits_in = 8) or edgekit's bit stream
 * (kernels/bitpack.py: index i at bits [i*b, (i+1)*b), least significant bit first; index_bits_in = b).
 *
 * ek_pack_* repacks them once, at load time, into the kernel layout (see kernels/src/matrix.h):
 * 16 rows interleaved per block, each row's indices for F consecutive columns in one 32-bit word
 * (F = 8, 16 for b = 4, 2; b = 3: 32 columns in 3 words, 3.0 bits a weight), so a block streams
 * contiguously and one SIMD register holds the same columns of 16 rows.
 *
 * Arithmetic: y[m][n] = (sum_k W'[n][k] * x[m][k]) * row_scale[n] + bias[n], where W' is the
 * table value (unscaled), the sum runs over k in order as one fused multiply-add per term,
 * starting from +0. Every ISA path follows this order, so all paths return identical bits.
 */
#ifndef EDGEKIT_KERNELS_H
#define EDGEKIT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EK_API __attribute__((visibility("default")))

enum ek_format { EK_LUT = 0, EK_SHIFT = 1, EK_SPARSE24_LUT = 2 };
/* EK_ISA_AUTO: the best path this CPU supports (cpuid / getauxval at first use). */
enum ek_isa { EK_ISA_AUTO = -1, EK_ISA_SCALAR = 0, EK_ISA_AVX2 = 1, EK_ISA_AVX512 = 2, EK_ISA_NEON = 3 };
enum ek_status { EK_OK = 0, EK_EINVAL = 1, EK_ENOMEM = 2, EK_EISA = 3 };

typedef struct ek_matrix ek_matrix;

/* 1 if this build has the ISA path and this CPU runs it. */
EK_API int ek_isa_supported(int isa);
EK_API int ek_isa_best(void);
EK_API const char *ek_isa_name(int isa);
/* The reason of the last failure in this thread ("" if none). */
EK_API const char *ek_kernels_last_error(void);

/* tables: ntables x 2^bits values, fp16 (tables_fp16 = 1, IEEE half as uint16) or fp32;
 * ntables = 1 (group_size = 0) or ceil(n / group_size). row_scale: n floats or NULL. */
EK_API ek_matrix *ek_pack_lut(int n, int k, int bits, const uint8_t *indices, int index_bits_in,
                              const void *tables, int tables_fp16, int group_size, const float *row_scale);
/* row_scale: n floats (a layer scale repeated) — required. */
EK_API ek_matrix *ek_pack_shift(int n, int k, int bits, const uint8_t *codes, int index_bits_in,
                                const float *row_scale);
/* keep: n x k bytes, nonzero = kept weight; NULL keeps the weights whose table value is nonzero.
 * Positions not kept are zero and must not exceed 2 in any group of 4 (else NULL, see ek_kernels_last_error).
 * A group with fewer than 2 kept weights pads with a dropped position and the index of a 0 entry
 * of its table (the table must hold 0.0 then; sparse palettization reserves it). */
EK_API ek_matrix *ek_pack_sparse24_lut(int n, int k, int bits, const uint8_t *indices, int index_bits_in,
                                       const void *tables, int tables_fp16, int group_size,
                                       const float *row_scale, const uint8_t *keep);
EK_API void ek_matrix_free(ek_matrix *w);

/* Storing a packed weight (e.g. in an ExecuTorch program) and using it again without repacking:
 * info = {format, n, k, bits, group_size, data words (uint32), tables (16 fp32 each), has row scale};
 * ek_matrix_copy writes the packed arrays; ek_matrix_wrap makes a matrix over such arrays without
 * copying them (they must outlive it; ek_matrix_free leaves them alone). Any alignment works. */
EK_API void ek_matrix_info(const ek_matrix *w, int64_t info[8]);
EK_API void ek_matrix_copy(const ek_matrix *w, uint32_t *data, float *tables, float *row_scale);
EK_API ek_matrix *ek_matrix_wrap(int format, int n, int k, int bits, int group_size, const uint32_t *data,
                                 const float *tables, const float *row_scale);
/* The uint32 words of packed data (info[5]) that this library's layout has for a format and shape, or
 * -1 for invalid arguments: check stored arrays with it before ek_matrix_wrap. Arrays packed by an
 * edgekit with another layout differ in size (3-bit LUT / SHIFT before the 3.0-bit layout: ceil(k / 10)
 * words a row, now 3 * ceil(k / 32); equal only for 130 values of k <= 450, none a multiple of 32). */
EK_API int64_t ek_packed_words(int format, int n, int k, int bits);

/* Shape and the bytes one product reads of the packed weights (index words + tables + row scales). */
EK_API int ek_matrix_rows(const ek_matrix *w);
EK_API int ek_matrix_cols(const ek_matrix *w);
EK_API size_t ek_matrix_bytes(const ek_matrix *w);
/* The dense fp32 weight it encodes (n x k, row scale applied), for checks. */
EK_API int ek_decode(const ek_matrix *w, float *out);

/* y (m x n, row-major) = x (m x k, row-major) W^T (+ bias). m = 1 is the decode GEMV; any m >= 1
 * works (small GEMM for m <= 64 is the tuned range). Output rows are split into `threads` parts that the
 * caller and a persistent pthread pool claim one at a time (0: ek_set_default_threads). isa: EK_ISA_AUTO or
 * a specific path (EK_EISA if unsupported). */
EK_API int ek_linear(const ek_matrix *w, const float *x, int m, const float *bias, float *y,
                     int threads, int isa);

/* The same product with int8 activations (opt-in, NOT exact; LUT, SHIFT and 2:4 weights): each row of x is
 * quantized to int8 with one scale (max|x| / 127), each table to int8 with one scale (max|T| / 127,
 * at pack time); the sum runs in int32 and is scaled once per output:
 * y = (float)(sum_k tq[idx] * xq[k]) * (sx * st) * row_scale + bias (2:4: the sum over the kept weights).
 * Every ISA path gives the same bits. AVX-512 needs VNNI + VBMI (else EK_ISA_AUTO picks AVX2); k <= 66000. */
EK_API int ek_linear_q8(const ek_matrix *w, const float *x, int m, const float *bias, float *y,
                        int threads, int isa);
EK_API int ek_q8_isa_supported(int isa);

/* ek_linear (q8 = 0) or ek_linear_q8 (q8 = 1) with the output rows split into `parts` run by the caller's
 * thread pool: run(ctx, fn, arg, parts) must call fn(arg, i) once for every i in [0, parts), on any threads,
 * and return when all are done (the ExecuTorch ops can pass ExecuTorch's threadpool, the one XNNPACK uses;
 * by default they use edgekit's, whose workers spin between a decode step's GEMVs). run = NULL: edgekit's
 * own pool, as ek_linear. */
typedef void (*ek_runner)(void *ctx, void (*fn)(void *arg, int part), void *arg, int parts);
EK_API int ek_linear_on(const ek_matrix *w, const float *x, int m, const float *bias, float *y, int parts, int isa,
                        int q8, ek_runner run, void *ctx);
EK_API int ek_q8_isa_best(void);
/* The build of the int8 activation pass (quantize + sum) this process runs: "avx512", "avx2" or "scalar"
 * (the widest the CPU has; EDGEKIT_KERNELS_Q8_PASS, read once, forces one it has). Same bits from each. */
EK_API const char *ek_q8_pass_name(void);

/* Causal attention of t new tokens over a KV cache, reading only the positions in use (decode and prefill
 * of a Llama's grouped-query attention, folded per kv head; the calling thread):
 *   q, out (kv, rows, hd), rows = rep * t (query head i of kv group g: rows i*t .. i*t+t-1);
 *   k, v   (kv, s, hd), the cache, already holding the new tokens at start .. start+t-1.
 * Row r (position start + r % t) attends positions 0 .. start + r % t: softmax(q k^T / sqrt(hd)) v.
 * Every ISA path gives the scalar reference's bits. EK_EINVAL unless rows % t == 0 and start + t <= s. */
EK_API int ek_attention(const float *q, const float *k, const float *v, int kv, int rows, int t, int s, int hd,
                        int start, float *out, int isa);

/* Threads used when ek_linear is passed threads = 0 (default: 1). */
EK_API void ek_set_default_threads(int threads);
EK_API int ek_default_threads(void);

/* How long edgekit's pool workers spin for the next job (and a caller for its workers) before they
 * sleep, in microseconds (default 200; 0: sleep at once, trading decode speed for the energy of
 * spinning). Decode calls the pool every 10-100 us, and a sleeping worker takes about that long to wake. */
EK_API void ek_set_pool_spin_us(int us);
/* The current spin time; EDGEKIT_POOL_SPIN_US sets it when the pool's first worker starts. */
EK_API int ek_pool_spin_us(void);

/* Machine probes for the roofline, same threads and ISA choice as ek_linear:
 * sum of n floats (streaming read), and `iters` rounds of independent FMAs (returns FLOPs done). */
EK_API float ek_stream_sum(const float *a, size_t n, int threads, int isa);
EK_API double ek_fma_peak(long iters, int threads, int isa);

#ifdef __cplusplus
}
#endif
#endif
