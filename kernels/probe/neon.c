/* Roofline probes, NEON: streaming sum (8 q accumulators), 16 independent FMA chains. */
#include <arm_neon.h>

#include "../src/probe.h"

static inline float32x4_t zero4(void) { return vdupq_n_f32(0.0f); }
static inline float32x4_t fma4(float32x4_t acc, float32x4_t a, float32x4_t c) { return vfmaq_f32(c, acc, a); }

EK_PROBES(neon, float32x4_t, 4, zero4, vdupq_n_f32, vld1q_f32, vaddq_f32, fma4, vaddvq_f32, 16, "w")
