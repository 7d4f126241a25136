/* Causal attention over a KV cache (src/attention.h), NEON: 16 lanes as four q registers. */
#include <arm_neon.h>

#include "../src/attention.h"

typedef struct { float32x4_t a, b, c, d; } ek_v16;

static inline ek_v16 zero16(void) { float32x4_t z = vdupq_n_f32(0.0f); return (ek_v16){z, z, z, z}; }
static inline ek_v16 set16(float x) { float32x4_t s = vdupq_n_f32(x); return (ek_v16){s, s, s, s}; }
static inline ek_v16 load16(const float *p) {
    return (ek_v16){vld1q_f32(p), vld1q_f32(p + 4), vld1q_f32(p + 8), vld1q_f32(p + 12)};
}
static inline void store16(float *p, ek_v16 x) {
    vst1q_f32(p, x.a); vst1q_f32(p + 4, x.b); vst1q_f32(p + 8, x.c); vst1q_f32(p + 12, x.d);
}
static inline ek_v16 fma16(ek_v16 acc, ek_v16 x, ek_v16 y) {  /* vfmaq_f32(acc, x, y) = acc + x * y, fused */
    return (ek_v16){vfmaq_f32(acc.a, x.a, y.a), vfmaq_f32(acc.b, x.b, y.b), vfmaq_f32(acc.c, x.c, y.c),
                    vfmaq_f32(acc.d, x.d, y.d)};
}

EK_ATTENTION(neon, ek_v16, zero16, set16, load16, store16, fma16)
