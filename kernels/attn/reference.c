/* Causal attention over a KV cache (src/attention.h), scalar reference: 16 float lanes, fmaf. */
#include "../src/attention.h"

typedef struct { float f[16]; } ek_v16;

static inline ek_v16 zero16(void) { return (ek_v16){{0}}; }
static inline ek_v16 set16(float a) { ek_v16 r; for (int i = 0; i < 16; i++) r.f[i] = a; return r; }
static inline ek_v16 load16(const float *p) { ek_v16 r; for (int i = 0; i < 16; i++) r.f[i] = p[i]; return r; }
static inline void store16(float *p, ek_v16 a) { for (int i = 0; i < 16; i++) p[i] = a.f[i]; }
static inline ek_v16 fma16(ek_v16 acc, ek_v16 a, ek_v16 b) {
    for (int i = 0; i < 16; i++) acc.f[i] = fmaf(a.f[i], b.f[i], acc.f[i]);
    return acc;
}

EK_ATTENTION(ref, ek_v16, zero16, set16, load16, store16, fma16)
