/* Column sums of a row-major [rows x cols] matrix (a sum over leading axes, e.g. a conv bias gradient), with
 * float64 accumulators. */
#ifndef FBTS_REDUCE_H
#define FBTS_REDUCE_H

#include <stddef.h>

/* Returns -1 when the accumulators cannot be allocated. */
int column_sums(const float *x, size_t rows, size_t cols, float *out);

#endif
