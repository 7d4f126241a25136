/* 2:4 sparse + LUT product with int8 activations, AVX2 + AVX-VNNI (vpdpbusd on ymm;
 * src/avx2_sparse_q8_tile.h). Called only where the CPU has AVX-VNNI (sparse/avx2_q8.c checks). */
#define EK_Q8_VNNI 1
#define EK_Q8_NAME ek_sparse_q8_rows_avx2_vnni
#include "../src/avx2_sparse_q8_tile.h"
