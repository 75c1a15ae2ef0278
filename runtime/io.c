/*
** io.c: whole-file reading and the atomic writer shared by every format:
** data goes to PATH.tmp.XXXXXX in the same folder, is fsync'ed, then
** renamed over PATH; any failure removes the temporary file, so PATH is
** either the old file or the complete new one.
*/
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int nnrt_read_file(const char *path, uint8_t **buf, size_t *n, NnrtErr *e) {
  *buf = NULL;
  *n = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return nnrt_err_set(e, NNRT_E_IO, "%s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
    fclose(f);
    return nnrt_err_set(e, NNRT_E_IO, "%s: not a regular file", path);
  }
  size_t sz = (size_t)st.st_size;
  uint8_t *p = malloc(sz + 1);
  if (!p) {
    fclose(f);
    return nnrt_err_set(e, NNRT_E_NOMEM, "%s: out of memory (%zu bytes)",
                        path, sz);
  }
  size_t got = fread(p, 1, sz, f);
  int bad = ferror(f);
  fclose(f);
  if (bad || got != sz) {
    free(p);
    return nnrt_err_set(e, NNRT_E_IO, "%s: read error", path);
  }
  p[sz] = 0;
  *buf = p;
  *n = sz;
  return 0;
}

int nnrt_atomic_open(NnrtAtomic *a, const char *path, NnrtErr *e) {
  memset(a, 0, sizeof *a);
  a->path = path;
  size_t n = strlen(path);
  a->tmp = malloc(n + 12);
  if (!a->tmp) return nnrt_err_set(e, NNRT_E_NOMEM, "%s: out of memory", path);
  memcpy(a->tmp, path, n);
  memcpy(a->tmp + n, ".tmp.XXXXXX", 12);
  int fd = mkstemp(a->tmp);
  if (fd < 0) {
    int err = errno;
    free(a->tmp);
    a->tmp = NULL;
    return nnrt_err_set(e, NNRT_E_IO, "%s: cannot create a temporary file: %s",
                        path, strerror(err));
  }
  a->f = fdopen(fd, "wb");
  if (!a->f) {
    close(fd);
    unlink(a->tmp);
    free(a->tmp);
    a->tmp = NULL;
    return nnrt_err_set(e, NNRT_E_IO, "%s: %s", path, strerror(errno));
  }
  return 0;
}

void nnrt_atomic_write(NnrtAtomic *a, const void *p, size_t n) {
  if (a->failed || !n) return;
  if (fwrite(p, 1, n, a->f) != n) {
    a->failed = 1;
    a->err = errno ? errno : EIO;
  }
}

void nnrt_atomic_abort(NnrtAtomic *a) {
  if (a->f) fclose(a->f);
  if (a->tmp) {
    unlink(a->tmp);
    free(a->tmp);
  }
  a->f = NULL;
  a->tmp = NULL;
}

int nnrt_atomic_commit(NnrtAtomic *a, NnrtErr *e) {
  errno = 0;
  if (!a->failed && fflush(a->f)) a->failed = 1, a->err = errno;
  if (!a->failed && fsync(fileno(a->f))) a->failed = 1, a->err = errno;
  int c = fclose(a->f);
  a->f = NULL;
  if (!a->failed && c) a->failed = 1, a->err = errno;
  if (!a->failed && rename(a->tmp, a->path)) a->failed = 1, a->err = errno;
  if (a->failed) {
    int err = a->err ? a->err : EIO;
    nnrt_atomic_abort(a);
    return nnrt_err_set(e, NNRT_E_IO, "%s: write failed: %s", a->path,
                        strerror(err));
  }
  free(a->tmp);
  a->tmp = NULL;
  return 0;
}
