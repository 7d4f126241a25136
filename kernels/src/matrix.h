/* The packed (kernel) layout of a compressed weight, shared by every ISA file.
 *
 * Rows are grouped in blocks of EK_LANES = 16 (the last block padded with index 0 rows whose
 * output is dropped). Within a block the data is [word][lane]: 16 consecutive uint32, one per row.
 *
 * LUT / SHIFT, 2 and 4 bits: word w of a row holds F = fields(bits) indices for columns w*F .. w*F+F-1,
 *   column w*F+i in bits [i*bits, (i+1)*bits). K is padded to kpad = words * F; padded indices are 0
 *   and the product reads x padded with zeros there.
 * LUT / SHIFT, 3 bits (3.0 bits a weight): units of 32 columns in 3 words w0 w1 w2, read as 4 words
 *   of 8 columns: byte b of word i holds column 8i + b in bits 0-2 and column 8i + 4 + b in bits 3-5,
 *   for i = 0, 1, 2 the stored words, for i = 3 the tail word built from their bits 6-7
 *   (ek_lut3_tail: byte b = w0's bits 6-7, w2's bits 6-7, w1's bits 6-7 of byte b). So a lookup that
 *   reads 3 bits of a byte (vpermb, pshufb, tbl on a table repeating every 8) takes 4 columns from a
 *   word or the word >> 3 as they are, and vpermps column 8i + 4h + b from the word >> (8b + 3h).
 *   kpad = 32 * units, words = 3 * units; padded indices are 0.
 * SPARSE24_LUT: chunks of 32 columns (8 groups of 4, 2 kept per group = 16 kept per row); kept
 *   weight j is the (j % 2)-th kept of group j / 2, code j in word j / F, field j % F of the chunk's
 *   cw = ceil(16 / F) code words. kpad = chunks * 32. The two positions of a group (p0 < p1) are one
 *   of 6 pairs, stored as a 3-bit combination code (ek_sparse_combo): a chunk's positions are 24 bits
 *   (group g at bits [3g, 3g+3)), 0.75 bits a weight instead of 1. Four chunks (a quad, 128 columns)
 *   share 3 position words P0 P1 P2 = the 96 bits of their 4 fields (chunk i at bits [24i, 24i+24));
 *   chunk i < 3 of a quad starts with P_i, then its code words; chunk 3 has only its code words:
 *   [P0 codes0][P1 codes1][P2 codes2][codes3] = 3 + 4 cw words (a last, partial quad of r chunks:
 *   r (1 + cw)). A kernel reads chunk i's field from its first word and the previous chunk's
 *   (ek_sparse_field) and expands it to the position word of 16 2-bit positions, kept j at bits
 *   [2j, 2j+2) (ek_sparse_posword; SIMD: src/sparse_pos.h).
 *   After the blocks, one word row (16 words) holds EK_SPARSE_MARK: arrays without it are from an
 *   edgekit with the former layout (a position word of 2-bit positions per chunk) and are refused.
 *   Then the int8-activation correction of every row (q8_corr, int32, 16 a block).
 *
 * Tables are stored expanded to 16 fp32 entries (entry c holds value c mod 2^bits), so a lookup
 * may use any 4 low bits of a shifted word: the bits above the field only select a copy.
 */
#ifndef EK_MATRIX_H
#define EK_MATRIX_H

#include <stdint.h>
#include <stddef.h>

#include "edgekit_kernels.h"

#define EK_LANES 16
/* Software prefetch distance, in word rows (64 bytes each) of one block: a tile streams 2-8 blocks
 * at once, 32 KB apart for K = 4096, more streams than the hardware prefetcher follows well
 * (measured: a 33 MB lut4 GEMV went from 10 to 18 GB/s with it). */
#ifndef EK_PF
#define EK_PF 16
#endif

struct ek_matrix {
    int format, n, k, bits, group_size;
    int owns;            /* 1: data/tables/row_scale are ours (packed); 0: borrowed (ek_matrix_wrap) */
    int fields;          /* indices per 32-bit word: 8, 10, 16 for 4, 3, 2 bits (3-bit LUT / SHIFT: 32 per 3 words) */
    int nblocks;         /* ceil(n / 16) */
    int kpad;            /* padded columns */
    int words;           /* uint32 per row (all words of a block: words * 16) */
    int code_words;      /* sparse: code words per chunk */
    uint32_t *data;      /* nblocks * words * 16 */
    int ntables;
    float *tables;       /* ntables * 16 */
    int32_t *block_table;/* per block: its table, or -1 when its rows use several tables */
    int32_t *row_table;  /* per row */
    float *row_scale;    /* n, or NULL */
    /* int8 activations (lut/q8.c; every format, always ours): each table quantized symmetrically
     * to int8, q8_tables[t * 64 + c] = round(table[t][c % 2^bits] / q8_scale[t]) in [-127, 127]
     * (64 entries: vpermb reads 6 index bits, pshufb / tbl the first 16) */
    int8_t *q8_tables;
    float *q8_scale;
    /* SPARSE24_LUT with int8 activations (sparse/q8.c): per row (nblocks * 16, padding rows 0),
     * 128 * the sum of the row's kept int8 table values: the kernels multiply xq + 128 (unsigned) by
     * the table values (signed) and subtract it; in the data, after the layout mark */
    int32_t *q8_corr;
};

static inline int ek_fields(int bits) { return 32 / bits; }
/* 1: the 3-bit LUT / SHIFT layout of 32 columns in 3 words (the 2:4 code words keep F fields a word) */
static inline int ek_lut3(const ek_matrix *w) { return w->bits == 3 && w->format != EK_SPARSE24_LUT; }
static inline const uint32_t *ek_block(const ek_matrix *w, int b) {
    return w->data + (size_t)b * w->words * EK_LANES;
}
/* uint32 words of the packed data: the blocks; SPARSE24_LUT then its layout mark (16 words) and the
 * int8-activation corrections q8_corr (16 a block), so that a stored weight (a .pte) never computes them */
static inline size_t ek_block_words(const ek_matrix *w) { return (size_t)w->nblocks * w->words * EK_LANES; }
static inline size_t ek_data_words(const ek_matrix *w) {
    return ek_block_words(w) + (w->format == EK_SPARSE24_LUT ? EK_LANES + (size_t)w->nblocks * EK_LANES : 0);
}
/* The 16-entry table of block b (block_table[b] >= 0) and of row r. */
static inline const float *ek_block_tab(const ek_matrix *w, int b) {
    return w->tables + (size_t)w->block_table[b] * 16;
}
static inline const float *ek_row_tab(const ek_matrix *w, int r) {
    return w->tables + (size_t)w->row_table[r] * 16;
}

/* SPARSE24_LUT layout mark: the word row after the blocks (16 words of it) */
#define EK_SPARSE_MARK 0x32344B45u /* "EK42" */
#define EK_SPARSE_MARK_WORDS EK_LANES
/* The pair of kept positions p0 < p1 of a group as a combination code 0..5: (0,1) (0,2) (0,3) (1,2)
 * (1,3) (2,3); and back, as the nibble p0 | p1 << 2 (codes 6 and 7 are never written: (0,1)) */
static inline uint32_t ek_sparse_combo(int p0, int p1) { return p0 == 0 ? p1 - 1 : p0 == 1 ? p1 + 1 : 5; }
#define EK_SPARSE_NIBBLES 0x44ED9C84u  /* nibble c: the positions of code c */
static inline uint32_t ek_sparse_nibble(uint32_t combo) { return (EK_SPARSE_NIBBLES >> (4 * (combo & 7))) & 15; }
/* the 16 bytes of a 128-bit lookup (pshufb / tbl) from a code in bits 0-2: its nibble (lo) or nibble << 4 (hi) */
#define EK_SPARSE_NIB_LO 4, 8, 12, 9, 13, 14, 4, 4, 4, 8, 12, 9, 13, 14, 4, 4
#define EK_SPARSE_NIB_HI 64, (char)128, (char)192, (char)144, (char)208, (char)224, 64, 64, 64, (char)128, (char)192, (char)144, (char)208, (char)224, 64, 64

/* Word row of chunk c's first word and of its first code word, within a block */
static inline size_t ek_sparse_chunk_at(const ek_matrix *w, int c) {
    return (size_t)(c / 4) * (3 + 4 * w->code_words) + (size_t)(c % 4) * (1 + w->code_words);
}
static inline size_t ek_sparse_codes_at(const ek_matrix *w, int c) { return ek_sparse_chunk_at(w, c) + (c % 4 < 3); }
/* The 24-bit field of chunk i = c % 4 (bits above 23 undefined) from the first word of the chunk
 * (`own`, read for i < 3) and of the previous chunk (`prev`, read for i > 0); any ISA's lane ops. */
#define EK_SPARSE_FIELD(i, prev, own, SHR, SHL, OR)                                                   \
    ((i) == 0 ? (own) : (i) == 1 ? OR(SHR(prev, 24), SHL(own, 8)) : (i) == 2 ? OR(SHR(prev, 16), SHL(own, 16)) \
                                 : SHR(prev, 8))
/* Field -> position word: byte b = codes 2b, 2b+1 (the field's bits [6b, 6b+6)) -> nibbles 2b, 2b+1
 * (scalar here; the SIMD forms: src/sparse_pos.h). */
static inline uint32_t ek_sparse_posword(uint32_t field) {
    uint32_t pos = 0;
    for (int g = 0; g < 8; g++) pos |= ek_sparse_nibble(field >> (3 * g)) << (4 * g);
    return pos;
}
/* the position word of chunk c of row `lane` of block blk */
static inline uint32_t ek_sparse_pos(const ek_matrix *w, const uint32_t *blk, int lane, int c) {
    const int i = c % 4;
    const uint32_t own = i < 3 ? blk[ek_sparse_chunk_at(w, c) * EK_LANES + lane] : 0;
    const uint32_t prev = i > 0 ? blk[ek_sparse_chunk_at(w, c - 1) * EK_LANES + lane] : 0;
#define EK_SHR_(a, n) ((a) >> (n))
#define EK_SHL_(a, n) ((a) << (n))
#define EK_OR_(a, b) ((a) | (b))
    return ek_sparse_posword(EK_SPARSE_FIELD(i, prev, own, EK_SHR_, EK_SHL_, EK_OR_) & 0xFFFFFFu);
#undef EK_SHR_
#undef EK_SHL_
#undef EK_OR_
}

/* SPARSE24_LUT tiles: prefetch the words of chunk c (at word row `at`, `chunk_words` of them) EK_PF word
 * rows ahead in each of the G block streams p */
#define EK_SPARSE_PREFETCH(p, G, at, chunk_words)                                                     \
    _Pragma("GCC unroll 8") for (int g_ = 0; g_ < (G); g_++)                                        \
    _Pragma("GCC unroll 3") for (int j_ = 0; j_ < (chunk_words); j_++)                              \
        __builtin_prefetch((p)[g_] + ((size_t)(at) + EK_PF + j_) * EK_LANES, 0, 3)

/* Raw accumulators of blocks [b0, b1) for x rows [0, m) (x: m x ldx, kpad readable columns).
 * acc is written to y[mi * ldy + row] for the rows < n; epilogue (scale, bias) is applied later. */
typedef void (*ek_rows_fn)(const ek_matrix *w, const float *x, int m, int ldx, int b0, int b1,
                           float *y, int ldy);
/* The int8-activation form (lut/q8.c): x rows quantized and laid out per word (ek_q8_groups), y the
 * exact int32 sums S = sum_k q8_table[idx] * xq[k] (the epilogue scales them). */
typedef void (*ek_rows_q8_fn)(const ek_matrix *w, const int8_t *xq, int m, int ldx, int b0, int b1,
                              int32_t *y, int ldy);

/* Scalar reference, per format (lut/reference.c, sparse/reference.c); also the fallback of the
 * fast paths for blocks that mix tables. */
void ek_lut_rows_ref(const ek_matrix *, const float *, int, int, int, int, float *, int);
void ek_sparse_rows_ref(const ek_matrix *, const float *, int, int, int, int, float *, int);
void ek_lut_q8_rows_ref(const ek_matrix *, const int8_t *, int, int, int, int, int32_t *, int);
void ek_sparse_q8_rows_ref(const ek_matrix *, const int8_t *, int, int, int, int, int32_t *, int);
float ek_sum_ref(const float *a, size_t n);
double ek_peak_ref(long iters);
/* Causal attention over a KV cache (src/attention.h); w: s floats of scratch */
typedef void (*ek_attention_fn)(const float *q, const float *k, const float *v, int kv, int rows, int t, int s,
                                int hd, int start, float *w, float *out);
void ek_attention_ref(const float *, const float *, const float *, int, int, int, int, int, int, float *, float *);

#define EK_DECLARE_ISA(isa)                                                                  \
    void ek_lut_rows_##isa(const ek_matrix *, const float *, int, int, int, int, float *, int);    \
    void ek_sparse_rows_##isa(const ek_matrix *, const float *, int, int, int, int, float *, int); \
    float ek_sum_##isa(const float *a, size_t n);                                             \
    double ek_peak_##isa(long iters);                                                          \
    void ek_attention_##isa(const float *, const float *, const float *, int, int, int, int, int, int, float *, float *);

/* 3-bit LUT / SHIFT: the tail word of a unit (src/matrix.h: its columns 24-31) from its words, per
 * ISA: SEL(mask, a, b) = (a & mask) | (b & ~mask), SHR a 32-bit lane shift, SPLAT a 32-bit constant;
 * bits 6-7 of each byte are left over (lookups ignore them: the tables repeat every 8 entries) */
#define EK_LUT3_TAIL(w0, w1, w2, SHR, SEL, SPLAT)                                                   \
    SEL(SPLAT(0x30303030), SHR(w1, 2), SEL(SPLAT(0x03030303), SHR(w0, 6), SHR(w2, 4)))
static inline uint32_t ek_lut3_tail(uint32_t w0, uint32_t w1, uint32_t w2) {
    return ((w0 >> 6) & 0x03030303u) | ((w2 >> 4) & 0x0c0c0c0cu) | ((w1 >> 2) & 0x30303030u);
}
/* the 3-bit index of column c (0..31) of a unit whose words are w0 w1 w2 */
static inline uint32_t ek_lut3_index(uint32_t w0, uint32_t w1, uint32_t w2, int c) {
    const uint32_t v = c < 8 ? w0 : c < 16 ? w1 : c < 24 ? w2 : ek_lut3_tail(w0, w1, w2);
    return (v >> (8 * (c % 4) + 3 * ((c % 8) / 4))) & 7;
}

/* q8 x layout: per word of F indices, ek_q8_groups(bits) groups of 4 int8 activations; the kernels
 * multiply group s of word w with 4 index bytes of each row (lut/q8.c: ek_q8_column). 3-bit LUT /
 * SHIFT: the columns in order (group s of a 32-column unit: columns 4s .. 4s + 3). */
static inline int ek_q8_groups(int bits) { return bits == 4 ? 2 : bits == 3 ? 8 /* a 3-word unit */ : 4; }
int ek_q8_column(int bits, int s, int j);
void ek_lut_q8_rows_avx512(const ek_matrix *, const int8_t *, int, int, int, int, int32_t *, int);
void ek_lut_q8_rows_avx2(const ek_matrix *, const int8_t *, int, int, int, int, int32_t *, int);
void ek_lut_q8_rows_neon(const ek_matrix *, const int8_t *, int, int, int, int, int32_t *, int);
void ek_sparse_q8_rows_avx512(const ek_matrix *, const int8_t *, int, int, int, int, int32_t *, int);
void ek_sparse_q8_rows_avx2(const ek_matrix *, const int8_t *, int, int, int, int, int32_t *, int);
void ek_sparse_q8_rows_neon(const ek_matrix *, const int8_t *, int, int, int, int, int32_t *, int);

EK_DECLARE_ISA(avx2)
EK_DECLARE_ISA(avx512)
EK_DECLARE_ISA(neon)

/* Store the 16 lane accumulators of one block for output row offset row0. */
static inline void ek_store_lanes(const float *acc, int row0, int n, float *y) {
    int lim = n - row0 < EK_LANES ? n - row0 : EK_LANES;
    for (int j = 0; j < lim; j++) y[row0 + j] = acc[j];
}

/* A tile's epilogue: acc[(VPB * g + q) * MT + mm] holds lanes [q * 16 / VPB, (q + 1) * 16 / VPB) of
 * block b + g for x row mm (VPB vectors per block: 1 zmm, 2 ymm, 4 q registers); STORE(dst, v). */
#define EK_TILE_STORE(acc, G, MT, VPB, STORE, w, b, y, ldy)                                          \
    do {                                                                                            \
        __typeof__(*(y)) out_[EK_LANES];                                                            \
        _Pragma("GCC unroll 32") for (int g_ = 0; g_ < (G); g_++)                                   \
        _Pragma("GCC unroll 32") for (int mm_ = 0; mm_ < (MT); mm_++) {                             \
            _Pragma("GCC unroll 4") for (int q_ = 0; q_ < (VPB); q_++)                              \
                STORE((void *)(out_ + q_ * (EK_LANES / (VPB))), (acc)[((VPB) * g_ + q_) * (MT) + mm_]); \
            const int r0_ = ((b) + g_) * EK_LANES, lim_ = (w)->n - r0_ < EK_LANES ? (w)->n - r0_ : EK_LANES; \
            for (int j_ = 0; j_ < lim_; j_++) (y)[(size_t)mm_ * (ldy) + r0_ + j_] = out_[j_];          \
        }                                                                                           \
    } while (0)

/* The reference's loop over the rows of blocks [b0, b1) and the rows of x: y = dot(row, x row), where
 * dot(w, blk, lane, table, xr) is the format's sum for row `lane` of block blk, in the format's order. */
typedef float (*ek_row_dot)(const ek_matrix *w, const uint32_t *blk, int lane, const float *t, const float *xr);
#define EK_ROWS_EACH(w, x, m, ldx, b0, b1, y, ldy, dot, TAB)                                          \
    for (int b_ = (b0); b_ < (b1); b_++)                                                            \
        for (int j_ = 0; j_ < EK_LANES && b_ * EK_LANES + j_ < (w)->n; j_++)                         \
            for (int mi_ = 0; mi_ < (m); mi_++)                                                     \
                (y)[(size_t)mi_ * (ldy) + b_ * EK_LANES + j_] =                                     \
                    dot(w, ek_block(w, b_), j_, TAB(w, b_ * EK_LANES + j_), (x) + (size_t)mi_ * (ldx))
static inline void ek_rows_each(const ek_matrix *w, const float *x, int m, int ldx, int b0, int b1, float *y,
                                int ldy, ek_row_dot dot) {
    EK_ROWS_EACH(w, x, m, ldx, b0, b1, y, ldy, dot, ek_row_tab);
}

/* SPARSE24_LUT: for each kept weight of row `lane` of block blk in order (chunks, then kept 0..15),
 * BODY with `code` and `col` set */
#define EK_SPARSE_EACH_KEPT(w, blk, lane, BODY)                                                       \
    for (int c_ = 0; c_ < (w)->kpad / 32; c_++) {                                                    \
        const uint32_t pos_ = ek_sparse_pos(w, blk, lane, c_);                                       \
        const uint32_t *cw_ = (blk) + ek_sparse_codes_at(w, c_) * EK_LANES + (lane);                 \
        for (int s_ = 0; s_ < 16; s_++) {                                                           \
            const int col = c_ * 32 + 4 * (s_ / 2) + (int)((pos_ >> (2 * s_)) & 3);                  \
            const uint32_t code = (cw_[(size_t)(s_ / (w)->fields) * EK_LANES] >> ((w)->bits * (s_ % (w)->fields))) \
                                  & ((1u << (w)->bits) - 1);                                         \
            BODY;                                                                                   \
        }                                                                                           \
    }

#endif
