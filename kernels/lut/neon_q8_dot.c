/* LUT product with int8 activations, NEON with the dot-product extension (sdot: 4 int8 products
 * summed into each int32 lane). Called only where the CPU has it (lut/neon_q8.c checks). */
#pragma GCC target("arch=armv8.2-a+dotprod")
#define EK_Q8_SDOT 1
#define EK_Q8_NAME ek_lut_q8_rows_neon_dot
#include "../src/neon_q8_tile.h"
