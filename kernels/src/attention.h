/* Causal attention over a KV cache, reading only the cache positions in use (attn/<isa>.c instantiates it).
 *
 * Layout (the Llama's grouped-query attention folded per kv head, model_zoo/llama.py `attend`):
 *   q, out: (kv, rows, hd), rows = rep * t: query head i of group g is rows i*t .. i*t+t-1;
 *   k, v:   (kv, s, hd), the cache; row r of q sits at position start + r % t and attends 0 .. that.
 * Per row: score_p = dot(q_r, k_p) / sqrt(hd), w_p = exp(score_p - max) / sum, out_r = sum_p w_p v_p.
 * The same operations in the same order on every ISA: each dot product runs in 16 lanes (element i of
 * a 64-byte chunk in lane i % 16, one FMA each), summed by ek_hsum16, the tail of hd by fmaf; exp is
 * libm's expf; out accumulates w_p v_p by one FMA per element in position order. So every path
 * returns the reference's bits. V: 16 fp32 lanes (a zmm, two ymm, four NEON q registers, or floats);
 * ZERO(), SET1(f), LOAD(p), STORE(p, v), FMA(acc, a, b) = acc + a * b fused. */
#ifndef EK_ATTENTION_H
#define EK_ATTENTION_H

#include <math.h>

#include "matrix.h"

/* the lane sum of a 16-lane dot product, in one fixed order */
static inline float ek_hsum16(const float *l) {
    float a[8];
    for (int i = 0; i < 8; i++) a[i] = l[i] + l[i + 8];
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

#define EK_ATTENTION(isa, V, ZERO, SET1, LOAD, STORE, FMA)                                          \
    void ek_attention_##isa(const float *q, const float *k, const float *v, int kv, int rows, int t,   \
                            int s, int hd, int start, float *w, float *out) {                        \
        const int hv = hd / 16 * 16;                                                                 \
        const float norm = sqrtf((float)hd);                                                         \
        for (int g = 0; g < kv; g++) {                                                               \
            const float *kg = k + (size_t)g * s * hd, *vg = v + (size_t)g * s * hd;                  \
            for (int r = 0; r < rows; r++) {                                                         \
                const float *qr = q + ((size_t)g * rows + r) * hd;                                   \
                float *o = out + ((size_t)g * rows + r) * hd;                                        \
                const int np = start + r % t + 1;                                                    \
                float mx = -INFINITY, sum = 0.0f, lanes[16];                                         \
                for (int p = 0; p < np; p++) {                                                       \
                    const float *kp = kg + (size_t)p * hd;                                           \
                    V acc = ZERO();                                                                  \
                    for (int i = 0; i < hv; i += 16) acc = FMA(acc, LOAD(qr + i), LOAD(kp + i));     \
                    STORE(lanes, acc);                                                               \
                    float d = ek_hsum16(lanes);                                                      \
                    for (int i = hv; i < hd; i++) d = fmaf(qr[i], kp[i], d);                         \
                    w[p] = d / norm;                                                                 \
                    mx = w[p] > mx ? w[p] : mx;                                                      \
                }                                                                                    \
                for (int p = 0; p < np; p++) {                                                       \
                    w[p] = expf(w[p] - mx);                                                          \
                    sum += w[p];                                                                     \
                }                                                                                    \
                for (int p = 0; p < np; p++) w[p] = w[p] / sum;                                      \
                for (int i = 0; i < hv; i += 16) {                                                   \
                    V acc = ZERO();                                                                  \
                    for (int p = 0; p < np; p++) acc = FMA(acc, SET1(w[p]), LOAD(vg + (size_t)p * hd + i)); \
                    STORE(o + i, acc);                                                               \
                }                                                                                    \
                for (int i = hv; i < hd; i++) {                                                      \
                    float a = 0.0f;                                                                  \
                    for (int p = 0; p < np; p++) a = fmaf(w[p], vg[(size_t)p * hd + i], a);          \
                    o[i] = a;                                                                        \
                }                                                                                    \
            }                                                                                        \
        }                                                                                            \
    }

#endif
