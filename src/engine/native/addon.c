/*
 * Node-API binding of the native convolution kernels. Every call checks its arguments (types, geometry, buffer
 * lengths) before a kernel touches memory, and reports problems as JavaScript errors: a wrong call can never read
 * or write outside the arrays it was given.
 *
 * JavaScript API:
 *   supported: boolean            (AVX2 + FMA present)
 *   convForward(geometry: Int32Array, x, w, y: Float32Array): void
 *   convBackpropFilter(geometry, x, dy, dw): void
 *   convBackpropInput(geometry, dy, w, dx): void
 */
#include <node_api.h>
#include <stdio.h>

#include "conv.h"

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

static int read_geometry(napi_env env, napi_value value, conv_geometry *g, char *error, size_t error_size) {
  int32_t *fields;
  size_t length;
  if (!typed_array(env, value, napi_int32_array, (void **)&fields, &length) || length != CONV_GEOMETRY_FIELDS) {
    snprintf(error, error_size, "geometry must be an Int32Array of %d fields", CONV_GEOMETRY_FIELDS);
    return 0;
  }
  int *out = (int *)g;
  for (int i = 0; i < CONV_GEOMETRY_FIELDS; i++) {
    /* Sizes, filter taps, strides and dilations are positive. The three paddings may be zero or even negative
     * (tfjs's 'same' gives -1 for a 1-tap filter with stride 2 over an even size: it shifts the window). The
     * kernels bounds-check every tap, so no value can make them leave the arrays; the cap keeps index
     * arithmetic far from int overflow. */
    const int padding = i >= CONV_GEOMETRY_FIELDS - 3;
    const int minimum = padding ? -FIELD_LIMIT : 1;
    if (fields[i] < minimum || fields[i] > FIELD_LIMIT) {
      snprintf(error, error_size, "geometry field %d is %d, must be in [%d, %d]", i, fields[i], minimum, FIELD_LIMIT);
      return 0;
    }
    out[i] = fields[i];
  }
  return 1;
}

typedef int (*conv_kernel)(const conv_geometry *, const float *, const float *, float *);
typedef size_t (*conv_size)(const conv_geometry *);

/* Shared body of the three entry points: (geometry, in0, in1, out) with the sizes each must have. */
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
  if (!read_geometry(env, args[0], &g, error, sizeof error)) return fail(env, error);
  float *arrays[3];
  const conv_size sizes[3] = {size0, size1, size_out};
  for (int i = 0; i < 3; i++) {
    size_t length;
    if (!typed_array(env, args[i + 1], napi_float32_array, (void **)&arrays[i], &length)) {
      snprintf(error, sizeof error, "%s: argument %d must be a Float32Array", name, i + 2);
      return fail(env, error);
    }
    if (length != sizes[i](&g)) {
      snprintf(error, sizeof error, "%s: argument %d has %zu floats, the geometry needs %zu", name, i + 2, length,
               sizes[i](&g));
      return fail(env, error);
    }
  }
  if (kernel(&g, arrays[0], arrays[1], arrays[2]) != 0) return fail(env, "out of memory for scratch buffers");
  return NULL;
}

static napi_value conv_forward_js(napi_env env, napi_callback_info info) {
  return run(env, info, "convForward", conv_forward, conv_input_size, conv_filter_size, conv_output_size);
}

static napi_value conv_backprop_filter_js(napi_env env, napi_callback_info info) {
  return run(env, info, "convBackpropFilter", conv_backprop_filter, conv_input_size, conv_output_size,
             conv_filter_size);
}

static napi_value conv_backprop_input_js(napi_env env, napi_callback_info info) {
  return run(env, info, "convBackpropInput", conv_backprop_input, conv_output_size, conv_filter_size,
             conv_input_size);
}

static void export_function(napi_env env, napi_value exports, const char *name, napi_callback callback) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

NAPI_MODULE_INIT() {
  napi_value supported;
  napi_get_boolean(env, conv_cpu_supported(), &supported);
  napi_set_named_property(env, exports, "supported", supported);
  export_function(env, exports, "convForward", conv_forward_js);
  export_function(env, exports, "convBackpropFilter", conv_backprop_filter_js);
  export_function(env, exports, "convBackpropInput", conv_backprop_input_js);
  return exports;
}
