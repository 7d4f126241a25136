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
/* A table of 2^bits entries needs only its first 2^bits * 4 bytes (the stored table repeats every
 * 2^bits): 4-bit codes use the 4-register tbl, 3-bit the 2-register, 2-bit the 1-register one, which
 * are cheaper on every core (fewer uops, shorter latency). Same values as ek_lookup16. */
static inline __attribute__((always_inline)) float32x4_t ek_lookup(uint8x16x4_t t, uint32x4_t s, const int bits) {
    if (bits == 2) return vreinterpretq_f32_u8(vqtbl1q_u8(t.val[0], ek_bytes_of(s, 3)));
    if (bits == 3) {
        uint8x16x2_t t2 = {{t.val[0], t.val[1]}};
        return vreinterpretq_f32_u8(vqtbl2q_u8(t2, ek_bytes_of(s, 7)));
    }
    return ek_lookup16(t, s);
}
static inline __attribute__((always_inline)) uint8x16x4_t ek_table16(const float *t) {
    uint8x16x4_t r = {{vld1q_u8((const uint8_t *)t), vld1q_u8((const uint8_t *)(t + 4)),
                       vld1q_u8((const uint8_t *)(t + 8)), vld1q_u8((const uint8_t *)(t + 12))}};
    return r;
}
#endif
