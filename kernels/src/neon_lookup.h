/* NEON lookups: an fp32 lane from a table of 16 (64 bytes, vqtbl4q_u8) or 4 (16 bytes, vqtbl1q_u8)
 * entries, by turning each lane's index c into the byte indices 4c .. 4c+3. */
#ifndef EK_NEON_LOOKUP_H
#define EK_NEON_LOOKUP_H
#include <arm_neon.h>

static inline __attribute__((always_inline)) uint8x16_t ek_bytes_of(uint32x4_t s, uint32_t mask) {
    uint32x4_t c = vandq_u32(s, vdupq_n_u32(mask));
    return vreinterpretq_u8_u32(vmlaq_u32(vdupq_n_u32(0x03020100u), c, vdupq_n_u32(0x04040404u)));
}
static inline __attribute__((always_inline)) float32x4_t ek_lookup16(uint8x16x4_t t, uint32x4_t s) {
    return vreinterpretq_f32_u8(vqtbl4q_u8(t, ek_bytes_of(s, 15)));
}
static inline __attribute__((always_inline)) uint8x16x4_t ek_table16(const float *t) {
    uint8x16x4_t r = {{vld1q_u8((const uint8_t *)t), vld1q_u8((const uint8_t *)(t + 4)),
                       vld1q_u8((const uint8_t *)(t + 8)), vld1q_u8((const uint8_t *)(t + 12))}};
    return r;
}
#endif
