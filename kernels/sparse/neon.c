/* 2:4 sparse + LUT product, NEON (AArch64): the tile of src/sparse_tile.h on four q registers per
 * block; x of a group (16 bytes) is permuted per lane by the 2-bit position with vqtbl1q_u8. */
#include <arm_neon.h>

#include "../src/neon_lookup.h"

#define EK_V float32x4_t
#define EK_VI uint32x4_t
#define EK_VX uint8x16_t
#define EK_VPB 4
#define EK_TDECL uint8x16x4_t T[8]
#define EK_TSET(g, t) (T[g] = ek_table16(t))
#define EK_LOOKUP(code, g, bits) ek_lookup(T[g], code, bits)
#define EK_SPARSE_POSV ek_sparse_pos128
#define EK_LOADI(p) vld1q_u32(p)
#define EK_SHR(v, n) vshrq_n_u32(v, n)
#define EK_XGROUP(p) vld1q_u8((const uint8_t *)(p))
#define EK_XPERM(xg, pos) vreinterpretq_f32_u8(vqtbl1q_u8(xg, ek_bytes_of(pos, 3)))
#define EK_FMA(acc, a, b) vfmaq_f32(acc, a, b)
#define EK_ZERO() vdupq_n_f32(0.0f)
#define EK_STORE(dst, v) vst1q_f32(dst, v)
#include "../src/sparse_tile.h"

/* GEMV: 2 blocks a tile; GEMM: 1 block x 4 rows of x */
EK_ROWS_DRIVER(ek_sparse_rows_neon, gemv_tile1, tile, ek_sparse_rows_ref, 2, 1, 4)
