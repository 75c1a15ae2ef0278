/*
** err.c: the error convention of libnnrt (NnrtErr: a status and a message
** owned by the caller, no globals), dtype tables, tensor records and
** shapes, and float conversions to the other dtypes.
*/
#include "internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

int nnrt_err_set(NnrtErr *e, int code, const char *fmt, ...) {
  if (!e) return code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  e->code = code;
  return code;
}

void nnrt_err_append(NnrtErr *e, const char *fmt, ...) {
  if (!e) return;
  size_t n = strlen(e->msg);
  if (n + 2 >= sizeof e->msg) return;
  if (n) e->msg[n++] = '\n';
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg + n, sizeof e->msg - n, fmt, ap);
  va_end(ap);
}

void nnrt_err_clear(NnrtErr *e) {
  if (!e) return;
  e->code = 0;
  e->msg[0] = 0;
}

const char *nnrt_strerror(int code) {
  static const char *const names[NNRT_E_COUNT] = {
      [NNRT_OK] = "ok",
      [NNRT_E_NOMEM] = "out of memory",
      [NNRT_E_IO] = "i/o error",
      [NNRT_E_FORMAT] = "malformed file",
      [NNRT_E_TRUNCATED] = "truncated file",
      [NNRT_E_MISMATCH] = "mismatch",
      [NNRT_E_NOTFOUND] = "not found",
      [NNRT_E_ARG] = "bad argument",
      [NNRT_E_UNSUPPORTED] = "unsupported"};
  return code >= 0 && code < NNRT_E_COUNT ? names[code] : "unknown error";
}

/* ORDER DTYPE: as NnrtDType. */
static const struct {
  const char *name;
  size_t size;
} dtypes[NNRT_DTYPE_COUNT] = {
    {"f32", 4}, {"f16", 2}, {"bf16", 2}, {"f64", 8},
    {"i32", 4}, {"i64", 8}, {"u8", 1},   {"bool", 1}};

size_t nnrt_dtype_size(NnrtDType t) {
  return (unsigned)t < NNRT_DTYPE_COUNT ? dtypes[t].size : 0;
}

const char *nnrt_dtype_name(NnrtDType t) {
  return (unsigned)t < NNRT_DTYPE_COUNT ? dtypes[t].name : "?";
}

int64_t nnrt_numel(const int64_t *dims, int rank) {
  int64_t n = 1;
  if (rank < 0 || rank > NNRT_MAX_RANK) return -1;
  for (int i = 0; i < rank; i++) {
    if (dims[i] < 0) return -1;
    if (dims[i] && n > INT64_MAX / dims[i]) return -1;
    n *= dims[i];
  }
  return n;
}

char *nnrt_shape_str(char *buf, size_t n, const int64_t *dims, int rank) {
  size_t k = 0;
  if (!n) return buf;
  buf[0] = 0;
  k += (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < rank && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld",
                          (long long)dims[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

int nnrt_tensor_shape(NnrtTensor *t, NnrtDType dt, const int64_t *dims,
                      int rank) {
  int64_t n = nnrt_numel(dims, rank);
  size_t sz = nnrt_dtype_size(dt);
  if (n < 0 || !sz || (uint64_t)n > SIZE_MAX / sz) return -1;
  t->dtype = dt;
  t->rank = rank;
  for (int i = 0; i < rank; i++) t->dims[i] = dims[i];
  t->nbytes = (size_t)n * sz;
  return 0;
}

void nnrt_tensor_free(NnrtTensor *t) {
  if (!t) return;
  free(t->owned);
  memset(t, 0, sizeof *t);
}

char *nnrt_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

const char *nnrt_basename(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

const NnrtTensor *nnrt_tf_find(const NnrtTensorFile *f, const char *name) {
  for (int i = 0; i < f->n; i++)
    if (!strcmp(f->t[i].name, name)) return &f->t[i];
  return NULL;
}

const char *nnrt_tf_meta(const NnrtTensorFile *f, const char *key) {
  for (int i = 0; i < f->nmeta; i++)
    if (!strcmp(f->meta_key[i], key)) return f->meta_val[i];
  return NULL;
}

void nnrt_tf_free(NnrtTensorFile *f) {
  if (!f) return;
  for (int i = 0; i < f->n; i++) {
    free((char *)f->t[i].name);
    free(f->t[i].owned);
  }
  for (int i = 0; i < f->nmeta; i++) {
    free(f->meta_key[i]);
    free(f->meta_val[i]);
  }
  free(f->t);
  free(f->meta_key);
  free(f->meta_val);
  nnrt_arena_free(f->buf);
  memset(f, 0, sizeof *f);
}

/* f32 -> f16, round to nearest even (NaN stays NaN, overflow to inf). */
static uint16_t f32_to_f16(float x) {
  uint32_t b;
  memcpy(&b, &x, 4);
  uint32_t sign = (b >> 16) & 0x8000u, exp = (b >> 23) & 0xff,
           man = b & 0x7fffffu;
  if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0));
  int e = (int)exp - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return (uint16_t)sign;
    man |= 0x800000u;
    int shift = 14 - e;
    uint32_t h = man >> shift, rem = man & ((1u << shift) - 1),
             half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) h++;
    return (uint16_t)(sign | h);
  }
  uint32_t h = (uint32_t)e << 10 | man >> 13, rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
  return (uint16_t)(sign | h);
}

static uint16_t f32_to_bf16(float x) {
  uint32_t b;
  memcpy(&b, &x, 4);
  if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(b >> 16 | 0x40);
  b += 0x7fffu + ((b >> 16) & 1);
  return (uint16_t)(b >> 16);
}

static int64_t sat(double x, double lo, double hi) {
  if (isnan(x)) return 0;
  return (int64_t)(x < lo ? lo : x > hi ? hi : x);
}

void nnrt_from_f32(void *dst, NnrtDType t, const float *src, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float x = src[i];
    switch (t) {
    case NNRT_F32: ((float *)dst)[i] = x; break;
    case NNRT_F64: ((double *)dst)[i] = x; break;
    case NNRT_F16: ((uint16_t *)dst)[i] = f32_to_f16(x); break;
    case NNRT_BF16: ((uint16_t *)dst)[i] = f32_to_bf16(x); break;
    case NNRT_I32:
      ((int32_t *)dst)[i] = (int32_t)sat(x, INT32_MIN, INT32_MAX);
      break;
    case NNRT_I64:
      ((int64_t *)dst)[i] = sat(x, -0x1p63, 0x1p63 - 1024);
      break;
    case NNRT_U8: ((uint8_t *)dst)[i] = (uint8_t)sat(x, 0, 255); break;
    case NNRT_BOOL: ((uint8_t *)dst)[i] = x != 0; break;
    default: break;
    }
  }
}
