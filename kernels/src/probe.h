/* The roofline probes of one ISA, from its vector operations (probe/<isa>.c instantiates them):
 *   ek_sum_<isa>:  streaming sum, 8 vector accumulators (the read-bandwidth probe);
 *   ek_peak_<isa>: CHAINS independent FMA chains for `iters` rounds; returns the FLOPs done.
 * V: the vector type, L: its fp32 lanes; ZERO(), SET1(f), LOAD(p), ADD(a, b), FMA(acc, a, c) = acc * a + c,
 * HSUM(v) its lane sum; REG: the asm constraint of a V register (keeps the loop: `a` is opaque). */
#ifndef EK_PROBE_H
#define EK_PROBE_H

#include "matrix.h"

#define EK_PROBES(isa, V, L, ZERO, SET1, LOAD, ADD, FMA, HSUM, CHAINS, REG)                        \
    float ek_sum_##isa(const float *a, size_t n) {                                                  \
        V s[8];                                                                                     \
        for (int j = 0; j < 8; j++) s[j] = ZERO();                                                  \
        size_t i = 0;                                                                               \
        for (; i + 8 * (L) <= n; i += 8 * (L))                                                      \
            for (int j = 0; j < 8; j++) s[j] = ADD(s[j], LOAD(a + i + (L) * j));                    \
        float tail = 0.0f;                                                                          \
        for (; i < n; i++) tail += a[i];                                                            \
        for (int j = 1; j < 8; j++) s[0] = ADD(s[0], s[j]);                                         \
        return HSUM(s[0]) + tail;                                                                   \
    }                                                                                               \
    double ek_peak_##isa(long iters) {                                                              \
        V acc[CHAINS], a = SET1(0.999f), c = SET1(1e-3f);                                           \
        for (int j = 0; j < (CHAINS); j++) acc[j] = SET1((float)j);                                 \
        for (long it = 0; it < iters; it++) {                                                       \
            __asm__ volatile("" : "+" REG(a));                                                      \
            for (int j = 0; j < (CHAINS); j++) acc[j] = FMA(acc[j], a, c);                          \
        }                                                                                           \
        for (int j = 1; j < (CHAINS); j++) acc[0] = ADD(acc[0], acc[j]);                            \
        volatile float sink = HSUM(acc[0]);                                                         \
        (void)sink;                                                                                 \
        return 2.0 * (CHAINS) * (L) * (double)iters;                                                \
    }

#endif
