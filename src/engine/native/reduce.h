/* Column sums of a row-major [rows x cols] matrix (a sum over leading axes, e.g. a conv bias gradient), with
 * float64 accumulators. */
#ifndef FBTS_REDUCE_H
#define FBTS_REDUCE_H

#include <stddef.h>

/* Returns -1 when the accumulators cannot be allocated. */
int column_sums(const float *x, size_t rows, size_t cols, float *out);

/*
 * Column sums in float64 partials, one per fixed chunk of rows, added in chunk order at the end: the bits of the
 * result do not depend on which thread summed which chunk. Shared by column_sums and the bias gradient.
 */
double *partial_sums_new(size_t chunks, size_t cols);          /* zeroed; NULL when out of memory */
double *partial_sums_chunk(double *partials, size_t chunk, size_t cols);
void partial_sums_add_row(double *chunk_sums, const float *row, size_t cols);
void partial_sums_finish(double *partials, size_t chunks, size_t cols, float *out); /* and frees them */

#endif
