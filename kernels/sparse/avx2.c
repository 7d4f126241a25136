/* 2:4 sparse + LUT product, AVX2+FMA: the tile of src/sparse_tile.h on two ymm halves per block;
 * x of a group is broadcast to both 128-bit halves and permuted in-lane by the 2-bit position. */
#include <immintrin.h>

#include "../src/avx2_lookup.h"

#define EK_V __m256
#define EK_VI __m256i
#define EK_VX __m256
#define EK_VPB 2
#define EK_TDECL __m256 Tlo[8], Thi[8]
#define EK_TSET(g, t) (Tlo[g] = _mm256_loadu_ps(t), Thi[g] = _mm256_loadu_ps((t) + 8))
#define EK_LOOKUP(code, g, bits) ek_lookup8(code, Tlo[g], Thi[g], bits)
#define EK_SPARSE_POSV ek_sparse_pos256
#define EK_LOADI(p) _mm256_loadu_si256((const __m256i *)(p))
#define EK_SHR(v, n) _mm256_srli_epi32(v, n)
#define EK_XGROUP(p) _mm256_broadcast_ps((const __m128 *)(p))
#define EK_XPERM(xg, pos) _mm256_permutevar_ps(xg, pos)
#define EK_FMA(acc, a, b) _mm256_fmadd_ps(a, b, acc)
#define EK_ZERO() _mm256_setzero_ps()
#define EK_STORE(dst, v) _mm256_storeu_ps(dst, v)
#include "../src/sparse_tile.h"

/* GEMV: 4 blocks a tile; GEMM: 1 block x 4 rows of x */
EK_ROWS_DRIVER(ek_sparse_rows_avx2, gemv_tile1, tile, ek_sparse_rows_ref, 4, 1, 4)
