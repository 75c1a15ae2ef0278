/*
** idx.c: IDX files, the format of MNIST and Fashion-MNIST: a magic word
** 0x0000TTRR (TT the element type, RR the rank), RR big-endian 32-bit
** dimensions, then big-endian data.  Files may be gzip-compressed (read
** through zlib, detected by the gzip magic).  The data is read in growing
** chunks, never trusting the dimensions for an allocation larger than
** what the file holds, and a short file is reported with both counts.
*/
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <zlib.h>

/* IDX type code -> dtype (-1 unsupported). */
static int idx_dtype(int code) {
  switch (code) {
  case 0x08: return NNRT_U8;
  case 0x0C: return NNRT_I32;
  case 0x0D: return NNRT_F32;
  case 0x0E: return NNRT_F64;
  default: return -1;
  }
}

static int idx_code(NnrtDType t) {
  switch (t) {
  case NNRT_U8: return 0x08;
  case NNRT_I32: return 0x0C;
  case NNRT_F32: return 0x0D;
  case NNRT_F64: return 0x0E;
  default: return -1;
  }
}

/* Reads up to n bytes; returns the count (less at the end), -1 on error. */
static int64_t gz_read_all(gzFile g, uint8_t *p, uint64_t n) {
  uint64_t got = 0;
  while (got < n) {
    unsigned chunk = n - got > (1u << 30) ? 1u << 30 : (unsigned)(n - got);
    int r = gzread(g, p + got, chunk), zerr = Z_OK;
    if (r < 0) {
      gzerror(g, &zerr);
      if (zerr == Z_BUF_ERROR) break; /* gzip stream cut short */
      return -1;
    }
    if (r == 0) break;
    got += (uint64_t)r;
  }
  return (int64_t)got;
}

/* "60000 images of 28x28" style description of a header. */
static void describe(char *s, size_t n, const int64_t *dims, int rank) {
  if (rank == 0) {
    snprintf(s, n, "a scalar");
    return;
  }
  size_t k = (size_t)snprintf(s, n, "%lld %s", (long long)dims[0],
                              rank == 1 ? "items" : rank == 3 ? "images" : "rows");
  for (int i = 1; i < rank && k < n; i++)
    k += (size_t)snprintf(s + k, n - k, i == 1 ? " of %lld" : "x%lld",
                          (long long)dims[i]);
}

static int idx_body(gzFile g, const char *path, NnrtTensor *out, NnrtErr *e) {
  uint8_t h[4 + 4 * 255];
  int64_t got = gz_read_all(g, h, 4);
  if (got < 0) return nnrt_err_set(e, NNRT_E_FORMAT, "%s: corrupt gzip data", path);
  if (got < 4)
    return nnrt_err_set(e, NNRT_E_TRUNCATED, "%s: truncated: %lld bytes, no "
                        "IDX header", path, (long long)got);
  int dt = idx_dtype(h[2]), rank = h[3];
  if (h[0] || h[1] || dt < 0 || rank > NNRT_MAX_RANK)
    return nnrt_err_set(e, NNRT_E_FORMAT, "%s: not an IDX file: bad magic "
                        "0x%02x%02x%02x%02x (expected 0x000008RR for u8 data, "
                        "e.g. 0x00000801 labels, 0x00000803 images)", path, h[0],
                        h[1], h[2], h[3]);
  got = gz_read_all(g, h + 4, 4u * (unsigned)rank);
  if (got != 4 * rank)
    return nnrt_err_set(e, NNRT_E_TRUNCATED, "%s: truncated: header needs %d "
                        "dimensions, file ends after %lld bytes", path, rank,
                        (long long)(got < 0 ? 0 : got) + 4);
  int64_t dims[NNRT_MAX_RANK];
  for (int i = 0; i < rank; i++) dims[i] = nnrt_rd_be32(h + 4 + 4 * i);
  if (nnrt_tensor_shape(out, (NnrtDType)dt, dims, rank))
    return nnrt_err_set(e, NNRT_E_FORMAT, "%s: IDX dimensions too large", path);
  uint64_t want = out->nbytes, have = 0, cap = 0;
  uint8_t *p = NULL;
  while (have < want) {
    uint64_t ncap = cap ? cap * 2 : 1u << 20;
    if (ncap > want) ncap = want;
    uint8_t *q = realloc(p, ncap);
    if (!q) {
      free(p);
      return nnrt_err_set(e, NNRT_E_NOMEM, "%s: out of memory", path);
    }
    p = q;
    cap = ncap;
    got = gz_read_all(g, p + have, cap - have);
    if (got < 0) {
      free(p);
      return nnrt_err_set(e, NNRT_E_FORMAT, "%s: corrupt gzip data after %llu "
                          "bytes of data", path, (unsigned long long)have);
    }
    have += (uint64_t)got;
    if (have < cap) break;
  }
  char s[200];
  describe(s, sizeof s, dims, rank);
  if (have < want) {
    free(p);
    return nnrt_err_set(e, NNRT_E_TRUNCATED, "%s: truncated: header says %s, "
                        "file holds %llu bytes of data (%llu expected)", path, s,
                        (unsigned long long)have, (unsigned long long)want);
  }
  uint8_t extra;
  if (gz_read_all(g, &extra, 1) == 1) {
    free(p);
    return nnrt_err_set(e, NNRT_E_FORMAT, "%s: trailing bytes after %s", path, s);
  }
  size_t w = nnrt_dtype_size(out->dtype);
  for (uint64_t i = 0; w > 1 && i < want; i += w) /* big-endian -> native */
    for (size_t a = 0, b = w - 1; a < b; a++, b--) {
      uint8_t t = p[i + a];
      p[i + a] = p[i + b];
      p[i + b] = t;
    }
  out->owned = p ? p : malloc(1);
  out->data = out->owned;
  return 0;
}

int nnrt_idx_read(const char *path, NnrtTensor *out, NnrtErr *e) {
  memset(out, 0, sizeof *out);
  errno = 0;
  gzFile g = gzopen(path, "rb"); /* reads plain files transparently */
  if (!g)
    return nnrt_err_set(e, NNRT_E_IO, "%s: %s", path,
                        errno ? strerror(errno) : "cannot open");
  int rc = idx_body(g, path, out, e);
  gzclose(g);
  if (rc) nnrt_tensor_free(out);
  return rc;
}

int nnrt_idx_write(const char *path, const NnrtTensor *t, NnrtErr *e) {
  int code = idx_code(t->dtype);
  int64_t numel = nnrt_numel(t->dims, t->rank);
  if (code < 0)
    return nnrt_err_set(e, NNRT_E_UNSUPPORTED, "%s: IDX has no %s type", path,
                        nnrt_dtype_name(t->dtype));
  if (numel < 0 || (uint64_t)numel * nnrt_dtype_size(t->dtype) != t->nbytes)
    return nnrt_err_set(e, NNRT_E_ARG, "%s: malformed tensor", path);
  for (int i = 0; i < t->rank; i++)
    if (t->dims[i] > UINT32_MAX)
      return nnrt_err_set(e, NNRT_E_ARG, "%s: dimension too large", path);
  NnrtAtomic a;
  int rc = nnrt_atomic_open(&a, path, e);
  if (rc) return rc;
  uint8_t h[4] = {0, 0, (uint8_t)code, (uint8_t)t->rank};
  nnrt_atomic_write(&a, h, 4);
  for (int i = 0; i < t->rank; i++) {
    uint32_t d = (uint32_t)t->dims[i];
    uint8_t b[4] = {(uint8_t)(d >> 24), (uint8_t)(d >> 16), (uint8_t)(d >> 8),
                    (uint8_t)d};
    nnrt_atomic_write(&a, b, 4);
  }
  size_t w = nnrt_dtype_size(t->dtype);
  const uint8_t *p = t->data;
  uint8_t buf[4096];
  for (size_t i = 0; i < t->nbytes;) { /* native -> big-endian */
    size_t k = 0;
    for (; k + w <= sizeof buf && i < t->nbytes; i += w, k += w)
      for (size_t j = 0; j < w; j++) buf[k + j] = p[i + w - 1 - j];
    nnrt_atomic_write(&a, buf, k);
  }
  return nnrt_atomic_commit(&a, e);
}

int nnrt_idx_check_pair(const NnrtTensor *x, const char *xpath,
                        const NnrtTensor *y, const char *ypath, NnrtErr *e) {
  if (x->rank < 1 || y->rank < 1 || x->dims[0] != y->dims[0])
    return nnrt_err_set(e, NNRT_E_MISMATCH, "%s holds %lld labels but %s holds "
                        "%lld images", ypath,
                        (long long)(y->rank ? y->dims[0] : 1), xpath,
                        (long long)(x->rank ? x->dims[0] : 1));
  return 0;
}
