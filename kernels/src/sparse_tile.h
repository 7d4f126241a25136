/* The 2:4 sparse + LUT tile, written once for every ISA (included by sparse/<isa>.c after it defines
 * its vector operations; defines `tile`, the GEMM_TILE of src/driver.h, for G blocks x MT rows of x).
 *
 * Per kept weight j of a 32-column chunk, for the 16 rows of a block (EK_VPB vectors of 16 / EK_VPB
 * lanes): x of its group (4 floats in every 128-bit lane group) permuted by the 2-bit position, the
 * table value of its code, one FMA: the reference's order, so every ISA gives the reference's bits.
 *
 * The ISA file defines: EK_V, EK_VI, EK_VX (float, index and x-group vectors), EK_VPB, EK_TDECL (the
 * table registers, for up to 8 blocks), EK_TSET(g, t) (load block g's 16-entry table t),
 * EK_LOOKUP(code, g, bits), EK_LOADI(p), EK_SHR(v, n), EK_XGROUP(p) (4 floats to every lane group),
 * EK_SPARSE_POSV(p, c, at, cwords) (the position words of chunk c, src/sparse_pos.h),
 * EK_XPERM(xg, pos) (x by the low 2 bits of pos), EK_FMA(acc, a, b) = acc + a * b fused, EK_ZERO(),
 * EK_STORE(dst, v). */
#ifndef EK_SPARSE_TILE_H
#define EK_SPARSE_TILE_H

#include "driver.h"
#include "sparse_pos.h"

/* fixed-size arrays (not VLAs) so the compiler keeps them in registers */
EK_AI void tile(const ek_matrix *w, const float *x, int ldx, int b, const int G, const int MT, const int bits,
                const int shared, float *y, int ldy) {
    const int F = 32 / bits, chunk_words = 1 + w->code_words, chunks = w->kpad / 32, H = EK_VPB * G;
    const int VL = EK_LANES / EK_VPB;
    EK_V acc[16];
    EK_TDECL;
    const uint32_t *p[8];
    EK_TILE_STREAMS(p, w, b, G);
    _Pragma("GCC unroll 32") for (int g = 0; g < G; g++) EK_TSET(g, ek_block_tab(w, b + g));
    _Pragma("GCC unroll 32") for (int a = 0; a < H * MT; a++) acc[a] = EK_ZERO();
    for (int c = 0; c < chunks; c++) {
        EK_VI pos[8], code[8];
        const size_t at = ek_sparse_chunk_at(w, c), codes = ek_sparse_codes_at(w, c);
        EK_SPARSE_PREFETCH(p, G, at, chunk_words);
        _Pragma("GCC unroll 32") for (int h = 0; h < H; h++) {
            const uint32_t *bp = p[h / EK_VPB] + VL * (h % EK_VPB);
            pos[h] = EK_SPARSE_POSV(bp, c, at, chunk_words);
            code[h] = EK_LOADI(bp + codes * EK_LANES);
        }
        const float *xc = x + (size_t)c * 32;
        _Pragma("GCC unroll 16") for (int s = 0; s < 16; s++) {
            EK_VX xg[8];
            _Pragma("GCC unroll 32") for (int mm = 0; mm < MT; mm++) xg[mm] = EK_XGROUP(xc + (size_t)mm * ldx + 4 * (s / 2));
            _Pragma("GCC unroll 32") for (int h = 0; h < H; h++) {
                if (s > 0 && s % F == 0)
                    code[h] = EK_LOADI(p[h / EK_VPB] + VL * (h % EK_VPB) + (codes + (size_t)(s / F)) * EK_LANES);
                EK_V wv = EK_LOOKUP(code[h], h / EK_VPB, bits);
                code[h] = EK_SHR(code[h], bits);
                _Pragma("GCC unroll 32") for (int mm = 0; mm < MT; mm++)
                    acc[h * MT + mm] = EK_FMA(acc[h * MT + mm], wv, EK_XPERM(xg[mm], pos[h]));
                pos[h] = EK_SHR(pos[h], 2);
            }
        }
    }
    EK_TILE_STORE(acc, G, MT, EK_VPB, EK_STORE, w, b, y, ldy);
}

EK_AI void gemv_tile1(const ek_matrix *w, const float *x, int b, const int G, const int bits, const int shared,
                      float *y) {
    tile(w, x, 0, b, G, 1, bits, shared, y, 0);
}

#endif
