/*
 * Node-API binding of the native convolution and max-pool kernels. Every call checks its arguments (types, geometry, buffer
 * lengths) before a kernel touches memory, and reports problems as JavaScript errors: a wrong call can never read
 * or write outside the arrays it was given.
 *
 * JavaScript API:
 *   apiVersion: number            (FBTS_API_VERSION: the TypeScript side refuses an addon built from other sources)
 *   supported: boolean            (AVX2 + FMA present)
 *   avx512: boolean               (the conv tiles run on AVX-512; FEDBIOMED_TS_NATIVE_AVX512=0 keeps them on AVX2)
 *   convForward(geometry: Int32Array, x, w, y: Float32Array): void
 *   convForwardBiasRelu(geometry, x, w, bias, y): void   (y = max(conv + bias, 0); bias: out_c floats)
 *   convBackpropFilter(geometry, x, dy, dw): void
 *   convBackpropInput(geometry, dy, w, dx): void
 *   maxPoolForward(poolGeometry: Int32Array, x, y: Float32Array): void
 *   maxPoolBackprop(poolGeometry, x, y, dy, dx): void
 *   sumLeadingAxes(x, out: Float32Array): void   (x viewed as [x.length / out.length, out.length])
 *   dpConvPerSample(geometry, x, dy, filterGrads, biasGrads: Float32Array | null, normSq): void
 *                                                 (per-sample conv gradients and squared norms, dp.h)
 *   dpWeightedRowSum(m, factors, out: Float32Array): void   (m: [factors.length x out.length], dp.h)
 *   biasReluForward(x, bias, y: Float32Array): void           (x, y: [rows x bias.length])
 *   biasAddForward(x, bias, y: Float32Array): void            (the same without the ReLU)
 *   biasReluBackward(dy, y, dx, dbias: Float32Array): void     (dbias.length columns)
 *   batchNormForward(x, gamma, beta, eps: number, relu: boolean, y, mean, variance): void
 *                                                 (x, y: [rows x gamma.length]; see bn.h)
 *   batchNormBackward(dy, x, gamma, beta, mean, variance, eps, relu, dx, dgamma, dbeta): void
 *   groupNormForward(x, gamma, beta, eps: number, relu: boolean, samples: integer, groups: integer, y, mean,
 *                    variance): void
 *                                                 (x, y: [samples x positions x gamma.length], mean and variance:
 *                                                 [samples x groups]; see bn.h)
 *   groupNormBackward(dy, x, gamma, beta, mean, variance, eps, relu, samples, groups, dx, dgamma, dbeta): void
 *   copyColumns(src, srcCols, srcOffset, dst, dstCols, dstOffset, width): void
 *                                                 (src, dst: row-major with the same number of rows; see copy.h)
 *   adamUpdate(step: Float64Array, p, g, m: Float32Array | null, v: Float32Array | null, pOut, mOut, vOut): void
 *                                                 (one Adam step, adam.h; step: ADAM_STEP_FIELDS constants in
 *                                                 adam_step's order then mode and first; m, v null on the first step)
 *   bceWithLogitsForward(x, y, terms: Float32Array): void   (element-wise BCE-with-logits terms, bce.h)
 *   bceWithLogitsBackward(dy, x, y, dx: Float32Array | null, dyTarget: Float32Array | null): void
 *   setThreads(n: integer 1..64, workPerThread?: integer >= 1): void
 *                                                 (threads every kernel may use, 1 at load; work that pays for one
 *                                                 more thread, default 2M multiply-adds)
 *   threads(): number
 */
#include <node_api.h>
#include <stdio.h>

#include "adam.h"
#include "bce.h"
#include "bias_relu.h"
#include "bn.h"
#include "copy.h"
#include "conv.h"
#include "dp.h"
#include "parallel.h"
#include "pool.h"
#include "reduce.h"

/* Bump whenever a function is added, removed or changes meaning; src/engine/native/index.ts expects the same. */
#define FBTS_API_VERSION 7

/* Largest magnitude of any geometry field: 2^20 (a million pixels along one axis). */
#define FIELD_LIMIT (1 << 20)

static napi_value fail(napi_env env, const char *message) {
  napi_throw_error(env, "ERR_FBTS_NATIVE", message);
  return NULL;
}

static int typed_array(napi_env env, napi_value value, napi_typedarray_type want, void **data, size_t *length) {
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, length, data, &buffer, &offset) != napi_ok) return 0;
  return type == want;
}

/* Reads `count` int fields; the last `paddings` of them may be negative (see below), the others are positive. */
static int read_fields(napi_env env, napi_value value, int *out, int count, int paddings, char *error,
                       size_t error_size) {
  int32_t *fields;
  size_t length;
  if (!typed_array(env, value, napi_int32_array, (void **)&fields, &length) || length != (size_t)count) {
    snprintf(error, error_size, "geometry must be an Int32Array of %d fields", count);
    return 0;
  }
  for (int i = 0; i < count; i++) {
    /* Sizes, filter taps, strides and dilations are positive. Paddings may be zero or even negative (tfjs's
     * 'same' gives -1 for a 1-tap filter with stride 2 over an even size: it shifts the window). The kernels
     * bounds-check every tap, so no value can make them leave the arrays; the cap keeps index arithmetic far
     * from int overflow. */
    const int minimum = i >= count - paddings ? -FIELD_LIMIT : 1;
    if (fields[i] < minimum || fields[i] > FIELD_LIMIT) {
      snprintf(error, error_size, "geometry field %d is %d, must be in [%d, %d]", i, fields[i], minimum, FIELD_LIMIT);
      return 0;
    }
    out[i] = fields[i];
  }
  return 1;
}

/* Argument `index` (0-based) as a Float32Array of exactly `expected` floats. */
static int float_arg(napi_env env, napi_value *args, int index, const char *name, size_t expected, float **data,
                     char *error, size_t error_size) {
  size_t length;
  if (!typed_array(env, args[index], napi_float32_array, (void **)data, &length)) {
    snprintf(error, error_size, "%s: argument %d must be a Float32Array", name, index + 1);
    return 0;
  }
  if (length != expected) {
    snprintf(error, error_size, "%s: argument %d has %zu floats, the geometry needs %zu", name, index + 1, length,
             expected);
    return 0;
  }
  return 1;
}

typedef int (*conv_kernel)(const conv_geometry *, const float *, const float *, float *);
typedef size_t (*conv_size)(const conv_geometry *);

/* Shared body of the three conv entry points: (geometry, in0, in1, out) with the sizes each must have. */
static napi_value run(napi_env env, napi_callback_info info, const char *name, conv_kernel kernel, conv_size size0,
                      conv_size size1, conv_size size_out) {
  size_t argc = 4;
  napi_value args[4];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != 4) {
    return fail(env, "expected (geometry, input, input, output)");
  }
  if (!conv_cpu_supported()) return fail(env, "this CPU lacks AVX2 or FMA; use the wasm kernels");
  char error[160];
  conv_geometry g;
  if (!read_fields(env, args[0], (int *)&g, CONV_GEOMETRY_FIELDS, 3, error, sizeof error)) return fail(env, error);
  float *arrays[3];
  const conv_size sizes[3] = {size0, size1, size_out};
  for (int i = 0; i < 3; i++) {
    if (!float_arg(env, args, i + 1, name, sizes[i](&g), &arrays[i], error, sizeof error)) return fail(env, error);
  }
  if (kernel(&g, arrays[0], arrays[1], arrays[2]) != 0) return fail(env, "out of memory for scratch buffers");
  return NULL;
}

/* Argument checks of the pool entry points: (geometry, x, y) or (geometry, x, y, dy, dx). Returns 0 after
 * throwing the JavaScript error. */
static int pool_args(napi_env env, napi_callback_info info, const char *name, int arrays, float **out,
                           pool_geometry *g) {
  size_t argc = 5;
  napi_value args[5];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != (size_t)arrays + 1) {
    fail(env, arrays == 2 ? "expected (geometry, x, y)" : "expected (geometry, x, y, dy, dx)");
    return 0;
  }
  char error[160];
  if (!conv_cpu_supported()) {
    fail(env, "this CPU lacks AVX2 or FMA; use the wasm kernels");
    return 0;
  }
  if (!read_fields(env, args[0], (int *)g, POOL_GEOMETRY_FIELDS, 3, error, sizeof error)) {
    fail(env, error);
    return 0;
  }
  for (int i = 0; i < arrays; i++) {
    /* x and dx (positions 0 and 3) have the input's size, y and dy (1 and 2) the output's. */
    const size_t expected = i % 3 == 0 ? pool_input_size(g) : pool_output_size(g);
    if (!float_arg(env, args, i + 1, name, expected, &out[i], error, sizeof error)) {
      fail(env, error);
      return 0;
    }
  }
  return 1;
}

static napi_value max_pool_forward_js(napi_env env, napi_callback_info info) {
  float *a[2];
  pool_geometry g;
  if (!pool_args(env, info, "maxPoolForward", 2, a, &g)) return NULL;
  max_pool_forward(&g, a[0], a[1]);
  return NULL;
}

static napi_value max_pool_backprop_js(napi_env env, napi_callback_info info) {
  float *a[4];
  pool_geometry g;
  if (!pool_args(env, info, "maxPoolBackprop", 4, a, &g)) return NULL;
  if (max_pool_backprop(&g, a[0], a[1], a[2], a[3]) != 0) return fail(env, "out of memory for scratch buffers");
  return NULL;
}

static napi_value conv_forward_js(napi_env env, napi_callback_info info) {
  return run(env, info, "convForward", conv_forward, conv_input_size, conv_filter_size, conv_output_size);
}

static napi_value conv_forward_bias_relu_js(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value args[5];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != 5) {
    return fail(env, "expected (geometry, x, w, bias, y)");
  }
  if (!conv_cpu_supported()) return fail(env, "this CPU lacks AVX2 or FMA; use the wasm kernels");
  char error[160];
  conv_geometry g;
  if (!read_fields(env, args[0], (int *)&g, CONV_GEOMETRY_FIELDS, 3, error, sizeof error)) return fail(env, error);
  float *x, *w, *bias, *y;
  const char *name = "convForwardBiasRelu";
  if (!float_arg(env, args, 1, name, conv_input_size(&g), &x, error, sizeof error) ||
      !float_arg(env, args, 2, name, conv_filter_size(&g), &w, error, sizeof error) ||
      !float_arg(env, args, 3, name, (size_t)g.out_c, &bias, error, sizeof error) ||
      !float_arg(env, args, 4, name, conv_output_size(&g), &y, error, sizeof error)) {
    return fail(env, error);
  }
  if (conv_forward_bias_relu(&g, x, w, bias, y) != 0) return fail(env, "out of memory for scratch buffers");
  return NULL;
}

static napi_value conv_backprop_filter_js(napi_env env, napi_callback_info info) {
  return run(env, info, "convBackpropFilter", conv_backprop_filter, conv_input_size, conv_output_size,
             conv_filter_size);
}

static napi_value conv_backprop_input_js(napi_env env, napi_callback_info info) {
  return run(env, info, "convBackpropInput", conv_backprop_input, conv_output_size, conv_filter_size,
             conv_input_size);
}

static napi_value sum_leading_axes_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != 2) {
    return fail(env, "expected (x, out)");
  }
  if (!conv_cpu_supported()) return fail(env, "this CPU lacks AVX2 or FMA; use the wasm kernels");
  float *x, *out;
  size_t x_length, out_length;
  if (!typed_array(env, args[0], napi_float32_array, (void **)&x, &x_length) ||
      !typed_array(env, args[1], napi_float32_array, (void **)&out, &out_length)) {
    return fail(env, "sumLeadingAxes: x and out must be Float32Arrays");
  }
  if (out_length == 0 || x_length % out_length != 0) {
    char error[160];
    snprintf(error, sizeof error, "sumLeadingAxes: x has %zu floats, not a whole number of rows of %zu", x_length,
             out_length);
    return fail(env, error);
  }
  if (column_sums(x, x_length / out_length, out_length, out) != 0) return fail(env, "out of memory for accumulators");
  return NULL;
}

/* What batch and group norm calls open with: exactly `count` arguments (at most NORM_MAX_ARGS) read into args, a CPU
 * the kernels run on, eps (argument eps_index) a finite number >= 0 and relu (the next one) a boolean. Returns 0
 * after throwing the JavaScript error. */
#define NORM_MAX_ARGS 13
static int norm_call_args(napi_env env, napi_callback_info info, const char *name, size_t count, napi_value *args,
                          size_t eps_index, double *eps, int *relu) {
  size_t argc = NORM_MAX_ARGS;
  char error[160];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != count) {
    snprintf(error, sizeof error, "%s expects %zu arguments", name, count);
    fail(env, error);
    return 0;
  }
  if (!conv_cpu_supported()) {
    fail(env, "this CPU lacks AVX2 or FMA; use the wasm kernels");
    return 0;
  }
  napi_valuetype type;
  if (napi_typeof(env, args[eps_index], &type) != napi_ok || type != napi_number ||
      napi_get_value_double(env, args[eps_index], eps) != napi_ok || !(*eps >= 0) || *eps > 1e30) {
    snprintf(error, sizeof error, "%s: eps (argument %zu) must be a finite number >= 0", name, eps_index + 1);
    fail(env, error);
    return 0;
  }
  bool flag;
  if (napi_typeof(env, args[eps_index + 1], &type) != napi_ok || type != napi_boolean ||
      napi_get_value_bool(env, args[eps_index + 1], &flag) != napi_ok) {
    snprintf(error, sizeof error, "%s: relu (argument %zu) must be a boolean", name, eps_index + 2);
    fail(env, error);
    return 0;
  }
  *relu = flag ? 1 : 0;
  return 1;
}

/* Batch norm (bn.h): Float32Arrays of [rows x C] activations and [C] channel vectors, eps a finite number >= 0 and
 * relu a boolean at the given positions. Returns 0 after throwing the JavaScript error. */
static int batch_norm_args(napi_env env, napi_callback_info info, const char *name, size_t count,
                           const int *is_activation, size_t eps_index, float **arrays, double *eps, int *relu,
                           size_t *rows, size_t *cols) {
  napi_value args[NORM_MAX_ARGS];
  char error[160];
  if (!norm_call_args(env, info, name, count, args, eps_index, eps, relu)) return 0;
  size_t lengths[11], positions[11], k = 0;
  for (size_t i = 0; i < count; i++) {
    if (i == eps_index || i == eps_index + 1) continue;
    if (!typed_array(env, args[i], napi_float32_array, (void **)&arrays[k], &lengths[k])) {
      snprintf(error, sizeof error, "%s: argument %zu must be a Float32Array", name, i + 1);
      fail(env, error);
      return 0;
    }
    positions[k++] = i + 1;
  }
  /* The first channel vector (gamma) gives the channels, the first array the activation's length. */
  size_t first_vector = 0;
  while (is_activation[first_vector]) first_vector++;
  *cols = lengths[first_vector];
  if (*cols == 0 || lengths[0] % *cols != 0) {
    snprintf(error, sizeof error, "%s: %zu values are not whole rows of %zu channels", name, lengths[0], *cols);
    fail(env, error);
    return 0;
  }
  *rows = lengths[0] / *cols;
  for (size_t i = 0; i < k; i++) {
    const size_t expected = is_activation[i] ? lengths[0] : *cols;
    if (lengths[i] != expected) {
      snprintf(error, sizeof error, "%s: argument %zu has %zu floats, expected %zu", name, positions[i], lengths[i],
               expected);
      fail(env, error);
      return 0;
    }
  }
  return 1;
}

static napi_value batch_norm_forward_js(napi_env env, napi_callback_info info) {
  /* (x, gamma, beta, eps, relu, y, mean, variance) */
  static const int activation[6] = {1, 0, 0, 1, 0, 0};
  float *a[6];
  double eps;
  int relu;
  size_t rows, cols;
  if (!batch_norm_args(env, info, "batchNormForward", 8, activation, 3, a, &eps, &relu, &rows, &cols)) return NULL;
  if (batch_norm_forward(a[0], a[1], a[2], eps, relu, rows, cols, a[3], a[4], a[5]) != 0) {
    return fail(env, "out of memory for partial sums");
  }
  return NULL;
}

static napi_value batch_norm_backward_js(napi_env env, napi_callback_info info) {
  /* (dy, x, gamma, beta, mean, variance, eps, relu, dx, dgamma, dbeta) */
  static const int activation[9] = {1, 1, 0, 0, 0, 0, 1, 0, 0};
  float *a[9];
  double eps;
  int relu;
  size_t rows, cols;
  if (!batch_norm_args(env, info, "batchNormBackward", 11, activation, 6, a, &eps, &relu, &rows, &cols)) return NULL;
  if (batch_norm_backward(a[0], a[1], a[2], a[3], a[4], a[5], eps, relu, rows, cols, a[6], a[7], a[8]) != 0) {
    return fail(env, "out of memory for partial sums");
  }
  return NULL;
}

/* copyColumns(src, srcCols, srcOffset, dst, dstCols, dstOffset, width): integers >= 0 (cols >= 1), both blocks
 * inside their rows, the same number of rows on both sides. */
static napi_value copy_columns_js(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value args[7];
  char error[160];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != 7) {
    return fail(env, "copyColumns expects (src, srcCols, srcOffset, dst, dstCols, dstOffset, width)");
  }
  float *arrays[2];
  size_t lengths[2];
  for (int i = 0; i < 2; i++) {
    if (!typed_array(env, args[i * 3], napi_float32_array, (void **)&arrays[i], &lengths[i])) {
      snprintf(error, sizeof error, "copyColumns: argument %d must be a Float32Array", i * 3 + 1);
      return fail(env, error);
    }
  }
  static const int positions[5] = {1, 2, 4, 5, 6};
  double values[5];
  for (int i = 0; i < 5; i++) {
    napi_valuetype type;
    double v;
    if (napi_typeof(env, args[positions[i]], &type) != napi_ok || type != napi_number ||
        napi_get_value_double(env, args[positions[i]], &v) != napi_ok || !(v >= 0) || v > 1e15 ||
        v != (double)(size_t)v) {
      snprintf(error, sizeof error, "copyColumns: argument %d must be an integer >= 0", positions[i] + 1);
      return fail(env, error);
    }
    values[i] = v;
  }
  const size_t src_cols = (size_t)values[0], src_offset = (size_t)values[1], dst_cols = (size_t)values[2];
  const size_t dst_offset = (size_t)values[3], width = (size_t)values[4];
  if (src_cols == 0 || dst_cols == 0 || lengths[0] % src_cols != 0 || lengths[1] % dst_cols != 0) {
    return fail(env, "copyColumns: each array must be whole rows of its column count (>= 1)");
  }
  const size_t rows = lengths[0] / src_cols;
  if (lengths[1] / dst_cols != rows) {
    snprintf(error, sizeof error, "copyColumns: src has %zu rows, dst %zu", rows, lengths[1] / dst_cols);
    return fail(env, error);
  }
  if (src_offset + width > src_cols || dst_offset + width > dst_cols) {
    return fail(env, "copyColumns: the block leaves the rows (offset + width > cols)");
  }
  copy_columns(arrays[0], src_cols, src_offset, arrays[1], dst_cols, dst_offset, width, rows);
  return NULL;
}

/* (geometry, x, dy, filterGrads, biasGrads or null, normSq): sizes from the batch geometry, see dp.h. */
static napi_value dp_conv_per_sample_js(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value args[6];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != 6) {
    return fail(env, "expected (geometry, x, dy, filterGrads, biasGrads or null, normSq)");
  }
  if (!conv_cpu_supported()) return fail(env, "this CPU lacks AVX2 or FMA; use the wasm kernels");
  char error[160];
  conv_geometry g;
  if (!read_fields(env, args[0], (int *)&g, CONV_GEOMETRY_FIELDS, 3, error, sizeof error)) return fail(env, error);
  const size_t batch = (size_t)g.batch;
  const size_t sizes[5] = {conv_input_size(&g), conv_output_size(&g), conv_filter_size(&g) * batch,
                           batch * (size_t)g.out_c, batch};
  float *arrays[5] = {NULL, NULL, NULL, NULL, NULL};
  for (int i = 0; i < 5; i++) {
    napi_valuetype type;
    if (i == 3 && napi_typeof(env, args[4], &type) == napi_ok && type == napi_null) continue;
    if (!float_arg(env, args, i + 1, "dpConvPerSample", sizes[i], &arrays[i], error, sizeof error)) {
      return fail(env, error);
    }
  }
  if (dp_conv_per_sample(&g, arrays[0], arrays[1], arrays[2], arrays[3], arrays[4]) != 0) {
    return fail(env, "out of memory for scratch buffers");
  }
  return NULL;
}

static napi_value dp_weighted_row_sum_js(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != 3) {
    return fail(env, "expected (m, factors, out)");
  }
  if (!conv_cpu_supported()) return fail(env, "this CPU lacks AVX2 or FMA; use the wasm kernels");
  float *arrays[3];
  size_t lengths[3];
  for (int i = 0; i < 3; i++) {
    if (!typed_array(env, args[i], napi_float32_array, (void **)&arrays[i], &lengths[i])) {
      return fail(env, "dpWeightedRowSum: m, factors and out must be Float32Arrays");
    }
  }
  if (lengths[1] == 0 || lengths[2] == 0 || lengths[0] != lengths[1] * lengths[2]) {
    char error[160];
    snprintf(error, sizeof error, "dpWeightedRowSum: m has %zu floats, not %zu rows (factors) of %zu (out)", lengths[0],
             lengths[1], lengths[2]);
    return fail(env, error);
  }
  dp_weighted_row_sum(arrays[0], arrays[1], lengths[1], lengths[2], arrays[2]);
  return NULL;
}

/* Reads `count` Float32Array arguments: the first and the others but the last-is-columns one are [rows x cols]. */
static int bias_relu_args(napi_env env, napi_callback_info info, const char *name, size_t count, float **arrays,
                          size_t cols_index, size_t *rows, size_t *cols) {
  napi_value args[4];
  size_t argc = 4, lengths[4];
  char error[160];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != count) {
    snprintf(error, sizeof error, "%s expects %zu Float32Arrays", name, count);
    fail(env, error);
    return 0;
  }
  if (!conv_cpu_supported()) {
    fail(env, "this CPU lacks AVX2 or FMA; use the wasm kernels");
    return 0;
  }
  for (size_t i = 0; i < count; i++) {
    if (!typed_array(env, args[i], napi_float32_array, (void **)&arrays[i], &lengths[i])) {
      snprintf(error, sizeof error, "%s: argument %zu must be a Float32Array", name, i + 1);
      fail(env, error);
      return 0;
    }
  }
  *cols = lengths[cols_index];
  if (*cols == 0 || lengths[0] % *cols != 0) {
    snprintf(error, sizeof error, "%s: %zu values are not whole rows of %zu channels", name, lengths[0], *cols);
    fail(env, error);
    return 0;
  }
  *rows = lengths[0] / *cols;
  for (size_t i = 1; i < count; i++) {
    if (i != cols_index && lengths[i] != lengths[0]) {
      snprintf(error, sizeof error, "%s: argument %zu has %zu floats, argument 1 has %zu", name, i + 1, lengths[i],
               lengths[0]);
      fail(env, error);
      return 0;
    }
  }
  return 1;
}

static napi_value bias_relu_forward_js(napi_env env, napi_callback_info info) {
  float *a[3];
  size_t rows, cols;
  if (!bias_relu_args(env, info, "biasReluForward", 3, a, 1, &rows, &cols)) return NULL;
  bias_relu_forward(a[0], a[1], a[2], rows, cols);
  return NULL;
}

static napi_value bias_add_forward_js(napi_env env, napi_callback_info info) {
  float *a[3];
  size_t rows, cols;
  if (!bias_relu_args(env, info, "biasAddForward", 3, a, 1, &rows, &cols)) return NULL;
  bias_add_forward(a[0], a[1], a[2], rows, cols);
  return NULL;
}

static napi_value bias_relu_backward_js(napi_env env, napi_callback_info info) {
  float *a[4];
  size_t rows, cols;
  if (!bias_relu_args(env, info, "biasReluBackward", 4, a, 3, &rows, &cols)) return NULL;
  if (bias_relu_backward(a[0], a[1], a[2], a[3], rows, cols) != 0) return fail(env, "out of memory for partial sums");
  return NULL;
}

/* (step, p, g, m, v, pOut, mOut, vOut): step is [beta1, 1 - beta1, beta2, 1 - beta2, sqrt(1 - beta2^t), eps,
 * lr / (1 - beta1^t), weight decay, 1 - lr * weight decay, mode (adam_decay_mode), first (0 or 1)]. */
#define ADAM_STEP_FIELDS 11
static napi_value adam_update_js(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value args[8];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != 8) {
    return fail(env, "adamUpdate expects (step, p, g, m, v, pOut, mOut, vOut)");
  }
  if (!conv_cpu_supported()) return fail(env, "this CPU lacks AVX2 or FMA; use the wasm kernels");
  double *fields;
  size_t count;
  if (!typed_array(env, args[0], napi_float64_array, (void **)&fields, &count) || count != ADAM_STEP_FIELDS) {
    return fail(env, "adamUpdate: step must be a Float64Array of 11 fields");
  }
  for (size_t i = 0; i < ADAM_STEP_FIELDS; i++) {
    if (!(fields[i] > -1e30 && fields[i] < 1e30)) return fail(env, "adamUpdate: step fields must be finite numbers");
  }
  const double mode = fields[9], first = fields[10];
  if (!(mode == ADAM_NO_DECAY || mode == ADAM_L2 || mode == ADAM_DECOUPLED) || !(first == 0 || first == 1)) {
    return fail(env, "adamUpdate: mode must be 0, 1 or 2 and first 0 or 1");
  }
  const adam_step step = {(float)fields[0], (float)fields[1], (float)fields[2], (float)fields[3], (float)fields[4],
                          (float)fields[5], (float)fields[6], (float)fields[7], (float)fields[8],
                          (adam_decay_mode)mode, (int)first};
  float *arrays[7] = {NULL};
  size_t n = 0;
  char error[160];
  for (size_t i = 0; i < 7; i++) {
    napi_valuetype type;
    const int moment = i == 2 || i == 3;
    if (moment && step.first && napi_typeof(env, args[i + 1], &type) == napi_ok && type == napi_null) continue;
    size_t length;
    if (!typed_array(env, args[i + 1], napi_float32_array, (void **)&arrays[i], &length)) {
      snprintf(error, sizeof error, "adamUpdate: argument %zu must be a Float32Array%s", i + 2,
               moment && step.first ? " or null" : "");
      return fail(env, error);
    }
    if (i == 0) n = length;
    if (length != n) {
      snprintf(error, sizeof error, "adamUpdate: argument %zu has %zu floats, p has %zu", i + 2, length, n);
      return fail(env, error);
    }
  }
  adam_update(&step, n, arrays[0], arrays[1], arrays[2], arrays[3], arrays[4], arrays[5], arrays[6]);
  return NULL;
}

/* `count` arguments, each a Float32Array of one common length (or null where `nullable` says so); returns 0 after
 * throwing the JavaScript error. */
static int same_length_arrays(napi_env env, napi_callback_info info, const char *name, size_t count,
                              const int *nullable, float **arrays, size_t *n) {
  napi_value args[5];
  size_t argc = 5;
  char error[160];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != count) {
    snprintf(error, sizeof error, "%s expects %zu arguments", name, count);
    fail(env, error);
    return 0;
  }
  if (!conv_cpu_supported()) {
    fail(env, "this CPU lacks AVX2 or FMA; use the wasm kernels");
    return 0;
  }
  for (size_t i = 0; i < count; i++) {
    napi_valuetype type;
    arrays[i] = NULL;
    if (nullable[i] && napi_typeof(env, args[i], &type) == napi_ok && type == napi_null) continue;
    size_t length;
    if (!typed_array(env, args[i], napi_float32_array, (void **)&arrays[i], &length)) {
      snprintf(error, sizeof error, "%s: argument %zu must be a Float32Array%s", name, i + 1, nullable[i] ? " or null" : "");
      fail(env, error);
      return 0;
    }
    if (i == 0) *n = length;
    if (length != *n) {
      snprintf(error, sizeof error, "%s: argument %zu has %zu floats, argument 1 has %zu", name, i + 1, length, *n);
      fail(env, error);
      return 0;
    }
  }
  return 1;
}

static napi_value bce_forward_js(napi_env env, napi_callback_info info) {
  static const int nullable[3] = {0, 0, 0};
  float *a[3];
  size_t n = 0;
  if (!same_length_arrays(env, info, "bceWithLogitsForward", 3, nullable, a, &n)) return NULL;
  bce_logits_forward(a[0], a[1], a[2], n);
  return NULL;
}

static napi_value bce_backward_js(napi_env env, napi_callback_info info) {
  static const int nullable[5] = {0, 0, 0, 1, 1};
  float *a[5];
  size_t n = 0;
  if (!same_length_arrays(env, info, "bceWithLogitsBackward", 5, nullable, a, &n)) return NULL;
  bce_logits_backward(a[0], a[1], a[2], a[3], a[4], n);
  return NULL;
}

static napi_value set_threads_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  int32_t threads = 0;
  napi_valuetype type;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc < 1 || argc > 2 ||
      napi_typeof(env, args[0], &type) != napi_ok || type != napi_number ||
      napi_get_value_int32(env, args[0], &threads) != napi_ok) {
    return fail(env, "setThreads expects a number");
  }
  double exact;
  napi_get_value_double(env, args[0], &exact);
  if (exact != (double)threads || threads < 1 || threads > PARALLEL_MAX_THREADS) {
    char error[96];
    snprintf(error, sizeof error, "setThreads: %g is not an integer from 1 to %d", exact, PARALLEL_MAX_THREADS);
    return fail(env, error);
  }
  size_t work = PARALLEL_DEFAULT_WORK_PER_THREAD;
  if (argc == 2) {
    double value;
    if (napi_typeof(env, args[1], &type) != napi_ok || type != napi_number ||
        napi_get_value_double(env, args[1], &value) != napi_ok || !(value >= 1) || value > 1e15 ||
        value != (double)(size_t)value) {
      return fail(env, "setThreads: workPerThread must be an integer >= 1");
    }
    work = (size_t)value;
  }
  parallel_set_threads(threads);
  parallel_set_work_per_thread(work);
  return NULL;
}

static napi_value threads_js(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_create_int32(env, parallel_threads(), &result);
  return result;
}

static void export_function(napi_env env, napi_value exports, const char *name, napi_callback callback) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}
/* Group norm (bn.h): `count` arguments, Float32Arrays except eps, relu, samples and groups (at eps_index and the
 * three after it); kinds[k] of the k-th array: 'a' activation, 'c' channel vector, 's' per sample and group. Returns 0
 * after throwing the JavaScript error. */
static int group_norm_args(napi_env env, napi_callback_info info, const char *name, size_t count, const char *kinds,
                           size_t eps_index, float **arrays, double *eps, int *relu, size_t *samples,
                           size_t *positions, size_t *cols, size_t *groups) {
  napi_value args[NORM_MAX_ARGS];
  char error[200];
  napi_valuetype type;
  if (!norm_call_args(env, info, name, count, args, eps_index, eps, relu)) return 0;
  double counts[2];
  for (size_t i = 0; i < 2; i++) {
    const size_t at = eps_index + 2 + i;
    if (napi_typeof(env, args[at], &type) != napi_ok || type != napi_number ||
        napi_get_value_double(env, args[at], &counts[i]) != napi_ok || !(counts[i] >= 1) ||
        counts[i] > FIELD_LIMIT * 64.0 || counts[i] != (double)(size_t)counts[i]) {
      snprintf(error, sizeof error, "%s: %s (argument %zu) must be an integer >= 1", name, i == 0 ? "samples" : "groups",
               at + 1);
      fail(env, error);
      return 0;
    }
  }
  *samples = (size_t)counts[0];
  *groups = (size_t)counts[1];
  size_t lengths[13], positions_of[13], k = 0;
  for (size_t i = 0; i < count; i++) {
    if (i >= eps_index && i <= eps_index + 3) continue;
    if (!typed_array(env, args[i], napi_float32_array, (void **)&arrays[k], &lengths[k])) {
      snprintf(error, sizeof error, "%s: argument %zu must be a Float32Array", name, i + 1);
      fail(env, error);
      return 0;
    }
    positions_of[k++] = i + 1;
  }
  size_t first_vector = 0;
  while (kinds[first_vector] != 'c') first_vector++;
  *cols = lengths[first_vector];
  if (*cols == 0 || *cols % *groups != 0) {
    snprintf(error, sizeof error, "%s: %zu groups do not divide %zu channels", name, *groups, *cols);
    fail(env, error);
    return 0;
  }
  if (lengths[0] == 0 || lengths[0] % (*samples * *cols) != 0) {
    snprintf(error, sizeof error, "%s: %zu values are not %zu samples of whole rows of %zu channels", name, lengths[0],
             *samples, *cols);
    fail(env, error);
    return 0;
  }
  *positions = lengths[0] / (*samples * *cols);
  for (size_t i = 0; i < k; i++) {
    const size_t expected = kinds[i] == 'a' ? lengths[0] : kinds[i] == 'c' ? *cols : *samples * *groups;
    if (lengths[i] != expected) {
      snprintf(error, sizeof error, "%s: argument %zu has %zu floats, expected %zu", name, positions_of[i], lengths[i],
               expected);
      fail(env, error);
      return 0;
    }
  }
  return 1;
}

static napi_value group_norm_forward_js(napi_env env, napi_callback_info info) {
  /* (x, gamma, beta, eps, relu, samples, groups, y, mean, variance) */
  float *a[6];
  double eps;
  int relu;
  size_t samples, positions, cols, groups;
  if (!group_norm_args(env, info, "groupNormForward", 10, "accass", 3, a, &eps, &relu, &samples, &positions, &cols,
                       &groups)) {
    return NULL;
  }
  if (group_norm_forward(a[0], a[1], a[2], eps, relu, samples, positions, cols, groups, a[3], a[4], a[5]) != 0) {
    return fail(env, "out of memory for partial sums");
  }
  return NULL;
}

static napi_value group_norm_backward_js(napi_env env, napi_callback_info info) {
  /* (dy, x, gamma, beta, mean, variance, eps, relu, samples, groups, dx, dgamma, dbeta) */
  float *a[9];
  double eps;
  int relu;
  size_t samples, positions, cols, groups;
  if (!group_norm_args(env, info, "groupNormBackward", 13, "aaccssacc", 6, a, &eps, &relu, &samples, &positions,
                       &cols, &groups)) {
    return NULL;
  }
  if (group_norm_backward(a[0], a[1], a[2], a[3], a[4], a[5], eps, relu, samples, positions, cols, groups, a[6], a[7],
                          a[8]) != 0) {
    return fail(env, "out of memory for partial sums");
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value version;
  napi_create_int32(env, FBTS_API_VERSION, &version);
  napi_set_named_property(env, exports, "apiVersion", version);
  napi_value supported;
  napi_get_boolean(env, conv_cpu_supported(), &supported);
  napi_set_named_property(env, exports, "supported", supported);
  napi_value avx512;
  napi_get_boolean(env, conv_cpu_supported() && conv_tiles_avx512(), &avx512);
  napi_set_named_property(env, exports, "avx512", avx512);
  export_function(env, exports, "convForward", conv_forward_js);
  export_function(env, exports, "convForwardBiasRelu", conv_forward_bias_relu_js);
  export_function(env, exports, "convBackpropFilter", conv_backprop_filter_js);
  export_function(env, exports, "convBackpropInput", conv_backprop_input_js);
  export_function(env, exports, "maxPoolForward", max_pool_forward_js);
  export_function(env, exports, "maxPoolBackprop", max_pool_backprop_js);
  export_function(env, exports, "sumLeadingAxes", sum_leading_axes_js);
  export_function(env, exports, "batchNormForward", batch_norm_forward_js);
  export_function(env, exports, "batchNormBackward", batch_norm_backward_js);
  export_function(env, exports, "groupNormForward", group_norm_forward_js);
  export_function(env, exports, "groupNormBackward", group_norm_backward_js);
  export_function(env, exports, "copyColumns", copy_columns_js);
  export_function(env, exports, "dpConvPerSample", dp_conv_per_sample_js);
  export_function(env, exports, "dpWeightedRowSum", dp_weighted_row_sum_js);
  export_function(env, exports, "biasReluForward", bias_relu_forward_js);
  export_function(env, exports, "biasAddForward", bias_add_forward_js);
  export_function(env, exports, "biasReluBackward", bias_relu_backward_js);
  export_function(env, exports, "adamUpdate", adam_update_js);
  export_function(env, exports, "bceWithLogitsForward", bce_forward_js);
  export_function(env, exports, "bceWithLogitsBackward", bce_backward_js);
  export_function(env, exports, "setThreads", set_threads_js);
  export_function(env, exports, "threads", threads_js);
  return exports;
}
