/*
 * Column-block copies between row-major matrices: what concatenating channels-last tensors along an axis (and its
 * gradient, the split) does, one memcpy per row instead of one JavaScript call per row.
 */
#ifndef FBTS_COPY_H
#define FBTS_COPY_H

#include <stddef.h>

/* For every row r < rows: dst[r * dst_cols + dst_offset .. + width) = src[r * src_cols + src_offset .. + width).
 * The caller checks offset + width <= cols on both sides. Rows are split over the threads (disjoint writes). */
void copy_columns(const float *src, size_t src_cols, size_t src_offset, float *dst, size_t dst_cols,
                  size_t dst_offset, size_t width, size_t rows);

#endif
