/*
** internal.h: helpers shared by the files of libnnrt and not exported to
** generated code: whole-file reading, the atomic writer, byte order.
*/
#ifndef NNRT_INTERNAL_H
#define NNRT_INTERNAL_H

#include "nnrt.h"

#include <stdbool.h>
#include <string.h>

/* Reads a whole file into a malloc'd buffer (plus a terminating NUL not
** counted in *n). */
int nnrt_read_file(const char *path, uint8_t **buf, size_t *n, NnrtErr *e);

/* An atomic writer: PATH.tmp.XXXXXX in the folder of PATH. */
typedef struct NnrtAtomic {
  FILE *f;
  char *tmp;        /* temporary path */
  const char *path; /* final path */
  int failed;       /* set by the first failed write */
  int err;          /* errno of that write */
} NnrtAtomic;

int nnrt_atomic_open(NnrtAtomic *a, const char *path, NnrtErr *e);
/* fwrite that records the first failure (checked by commit). */
void nnrt_atomic_write(NnrtAtomic *a, const void *p, size_t n);
/* Flush, fsync, close, rename; on failure removes the temporary file. */
int nnrt_atomic_commit(NnrtAtomic *a, NnrtErr *e);
/* Closes and removes the temporary file. */
void nnrt_atomic_abort(NnrtAtomic *a);

static inline uint32_t nnrt_rd_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}
static inline uint16_t nnrt_rd_le16(const uint8_t *p) {
  return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint64_t nnrt_rd_le64(const uint8_t *p) {
  return (uint64_t)nnrt_rd_le32(p) | (uint64_t)nnrt_rd_le32(p + 4) << 32;
}
static inline uint32_t nnrt_rd_be32(const uint8_t *p) {
  return (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 |
         (uint32_t)p[0] << 24;
}
static inline void nnrt_wr_le16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static inline void nnrt_wr_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void nnrt_wr_le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Fills t's name/dtype/rank/dims and nbytes; -1 on overflow. */
int nnrt_tensor_shape(NnrtTensor *t, NnrtDType dt, const int64_t *dims,
                      int rank);
/* strdup that returns NULL on failure. */
char *nnrt_strdup(const char *s);
/* Base name of a path (pointer into it). */
const char *nnrt_basename(const char *path);

#endif
