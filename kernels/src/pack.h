/* Internal helpers of the pack functions (src/matrix.c). */
#ifndef EK_PACK_H
#define EK_PACK_H
#include "matrix.h"

void *ek_fail(const char *fmt, ...);
void ek_clear_error(void);
uint8_t ek_index_at(const uint8_t *indices, int bits_in, size_t i);
float ek_half_to_float(uint16_t h);
int ek_check_common(int n, int k, int bits, int index_bits_in, int group_size);
ek_matrix *ek_alloc(int format, int n, int k, int bits, int group_size);
/* clear the error, check the arguments, allocate: NULL (with the error set) on any failure */
ek_matrix *ek_pack_begin(int format, int n, int k, int bits, const void *indices, int index_bits_in,
                         const void *tables, int group_size);
int ek_set_tables(ek_matrix *w, const void *tables, int fp16, const float *row_scale);
#endif
