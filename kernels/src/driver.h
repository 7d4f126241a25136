/* The tile driver shared by every format x ISA (the ggml / llm.c way: one loop, per-ISA tiles).
 *
 * An ISA file defines two always-inline tiles for its format, with compile-time G (blocks per
 * tile), MT (rows of x per tile), bits and shared (1: the G blocks use one table):
 *   GEMV_TILE(w, x, b, G, bits, shared, y)                 m = 1, y has w->n entries
 *   GEMM_TILE(w, x, ldx, b, G, MT, bits, shared, y, ldy)   MT rows of x from x, of y from y
 * and EK_ROWS_DRIVER(name, ...) writes `void name(w, x, m, ldx, b0, b1, y, ldy)` (an ek_rows_fn):
 *   - blocks whose 16 rows use two tables go to the scalar reference REF;
 *   - GEMV: GV blocks at once (GV independent accumulator chains) while GV uniform blocks remain,
 *     then one block at a time;
 *   - GEMM: GM (1 or 2) blocks at once, MT rows of x at a time, then the x rows one by one;
 *   - one instantiation per bit width (2, 3, 4), so every tile is specialised.
 * The tiles do the arithmetic; the driver only decides which blocks go together, so it does not
 * change any result (every path stays bit-identical to the reference). */
#ifndef EK_DRIVER_H
#define EK_DRIVER_H

#include "matrix.h"

#define EK_AI static inline __attribute__((always_inline))

EK_AI int ek_same_table(const ek_matrix *w, int b, int count) {
    for (int i = 1; i < count; i++)
        if (w->block_table[b + i] != w->block_table[b]) return 0;
    return 1;
}

/* Uniform-table blocks starting at b, at most `most`, below b1. */
EK_AI int ek_uniform_run(const ek_matrix *w, int b, int b1, int most) {
    int u = 0;
    while (b + u < b1 && u < most && w->block_table[b + u] >= 0) u++;
    return u;
}

/* The tile's per-block stream pointers (each block's words are contiguous). */
#define EK_TILE_STREAMS(p, w, b, G)                                                                  \
    _Pragma("GCC unroll 32") for (int g_ = 0; g_ < (G); g_++) (p)[g_] = ek_block((w), (b) + g_)

/* a GEMV_TILE that is the GEMM_TILE `tile` on one row of x */
#define EK_GEMV_OF_TILE(name, tile, XT, YT)                                                          \
    EK_AI void name(const ek_matrix *w, const XT *x, int b, const int G, const int bits, const int shared, YT *y) { \
        tile(w, x, 0, b, G, 1, bits, shared, y, 0);                                                  \
    }

#define EK_ROWS_DRIVER(name, GEMV_TILE, GEMM_TILE, REF, GV, GM, MT)                                  \
    EK_ROWS_DRIVER_T(name, float, float, GEMV_TILE, GEMM_TILE, REF, GV, GM, MT)

/* the same for x elements of type XT and outputs of type YT (the int8-activation kernels) */
#define EK_ROWS_DRIVER_T(name, XT, YT, GEMV_TILE, GEMM_TILE, REF, GV, GM, MT)                       \
    EK_AI void name##_drive(const ek_matrix *w, const XT *x, int m, int ldx, int b0, int b1,         \
                            YT *y, int ldy, const int bits) {                                     \
        for (int b = b0; b < b1;) {                                                                 \
            if (w->block_table[b] < 0) { REF(w, x, m, ldx, b, b + 1, y, ldy); b++; continue; }      \
            if (m == 1) {                                                                           \
                if (ek_uniform_run(w, b, b1, GV) == GV) {                                           \
                    if (ek_same_table(w, b, GV)) GEMV_TILE(w, x, b, GV, bits, 1, y);                \
                    else GEMV_TILE(w, x, b, GV, bits, 0, y);                                        \
                    b += GV;                                                                        \
                } else { GEMV_TILE(w, x, b, 1, bits, 1, y); b++; }                                  \
                continue;                                                                           \
            }                                                                                       \
            const int two = GM == 2 && ek_uniform_run(w, b, b1, 2) == 2;                            \
            const int st = !two || ek_same_table(w, b, 2);                                          \
            int mi = 0;                                                                             \
            for (; mi + MT <= m; mi += MT) {                                                        \
                const XT *xm = x + (size_t)mi * ldx;                                                \
                YT *ym = y + (size_t)mi * ldy;                                                      \
                if (two && st) GEMM_TILE(w, xm, ldx, b, GM, MT, bits, 1, ym, ldy);                   \
                else if (two) GEMM_TILE(w, xm, ldx, b, GM, MT, bits, 0, ym, ldy);                    \
                else GEMM_TILE(w, xm, ldx, b, 1, MT, bits, 1, ym, ldy);                             \
            }                                                                                       \
            for (; mi < m; mi++) {                                                                  \
                const XT *xm = x + (size_t)mi * ldx;                                                \
                YT *ym = y + (size_t)mi * ldy;                                                      \
                if (two && st) GEMM_TILE(w, xm, ldx, b, GM, 1, bits, 1, ym, ldy);                    \
                else if (two) GEMM_TILE(w, xm, ldx, b, GM, 1, bits, 0, ym, ldy);                     \
                else GEMM_TILE(w, xm, ldx, b, 1, 1, bits, 1, ym, ldy);                              \
            }                                                                                       \
            b += two ? 2 : 1;                                                                       \
        }                                                                                           \
    }                                                                                               \
    static void name##_2(const ek_matrix *w, const XT *x, int m, int ldx, int b0, int b1, YT *y,        \
                         int ldy) { name##_drive(w, x, m, ldx, b0, b1, y, ldy, 2); }                \
    static void name##_3(const ek_matrix *w, const XT *x, int m, int ldx, int b0, int b1, YT *y,        \
                         int ldy) { name##_drive(w, x, m, ldx, b0, b1, y, ldy, 3); }                \
    static void name##_4(const ek_matrix *w, const XT *x, int m, int ldx, int b0, int b1, YT *y,        \
                         int ldy) { name##_drive(w, x, m, ldx, b0, b1, y, ldy, 4); }                \
    void name(const ek_matrix *w, const XT *x, int m, int ldx, int b0, int b1, YT *y, int ldy) {   \
        if (w->bits == 2) name##_2(w, x, m, ldx, b0, b1, y, ldy);                                   \
        else if (w->bits == 3) name##_3(w, x, m, ldx, b0, b1, y, ldy);                             \
        else name##_4(w, x, m, ldx, b0, b1, y, ldy);                                                \
    }

#endif
