/* 2:4 sparse + LUT product with int8 activations, NEON with the dot-product extension (sdot;
 * src/neon_sparse_q8_tile.h). Called only where the CPU has it (sparse/neon_q8.c checks). */
#pragma GCC target("arch=armv8.2-a+dotprod")
#define EK_Q8_SDOT 1
#define EK_Q8_NAME ek_sparse_q8_rows_neon_dot
#include "../src/neon_sparse_q8_tile.h"
