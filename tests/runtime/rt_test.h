/*
** rt_test.h: helpers of the libnnrt tests: a fresh temporary folder per
** test, writing and reading whole files, and message checks.
*/
#ifndef RT_TEST_H
#define RT_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nnrt.h"

/* A temporary folder, removed (with its files) by tmp_teardown. */
typedef struct Tmp {
  char dir[64];
  char path[8][256];
  int np;
} Tmp;

static inline int tmp_setup(void **state) {
  Tmp *t = calloc(1, sizeof *t);
  if (!t) return -1;
  /* tmpfs when there is one: the tests write thousands of small files */
  snprintf(t->dir, sizeof t->dir, "/dev/shm/nnrt_test.XXXXXX");
  if (!mkdtemp(t->dir)) {
    snprintf(t->dir, sizeof t->dir, "/tmp/nnrt_test.XXXXXX");
    if (!mkdtemp(t->dir)) return -1;
  }
  *state = t;
  return 0;
}

static inline int tmp_teardown(void **state) {
  Tmp *t = *state;
  DIR *d = opendir(t->dir);
  struct dirent *de;
  char p[512];
  while (d && (de = readdir(d)))
    if (de->d_name[0] != '.') {
      snprintf(p, sizeof p, "%s/%s", t->dir, de->d_name);
      unlink(p);
    }
  if (d) closedir(d);
  rmdir(t->dir);
  free(t);
  return 0;
}

/* "DIR/name" (kept in a ring of 8 buffers). */
static inline const char *tpath(Tmp *t, const char *name) {
  char *p = t->path[t->np++ % 8];
  size_t a = strlen(t->dir), b = strlen(name);
  assert_true(a + 1 + b < sizeof t->path[0]);
  memcpy(p, t->dir, a);
  p[a] = '/';
  memcpy(p + a + 1, name, b + 1);
  return p;
}

/* Number of entries in the folder (to check no temporary file is left). */
static inline int tmp_count(Tmp *t) {
  int n = 0;
  DIR *d = opendir(t->dir);
  struct dirent *de;
  while (d && (de = readdir(d))) n += de->d_name[0] != '.';
  if (d) closedir(d);
  return n;
}

static inline void write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

/* Whole file, NUL-terminated; *n its size. */
static inline char *read_bytes(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc((size_t)sz + 1);
  assert_int_equal(fread(p, 1, (size_t)sz, f), (size_t)sz);
  fclose(f);
  p[sz] = 0;
  if (n) *n = (size_t)sz;
  return p;
}

/* What one run of an executable's command line printed. */
typedef struct Run {
  int status;
  char *out, *err;
} Run;

/* The whole of f (a tmpfile at its end), closed. */
static inline char *slurp(FILE *f) {
  long n = ftell(f);
  char *p = calloc((size_t)n + 1, 1);
  rewind(f);
  assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  return p;
}

/* nnrt_main_io of model m on "argv0 args..." (args NULL-terminated, at
** most 46), capturing stdout and stderr. */
static inline Run run_main(const NnrtModel *m, const char *argv0, const char **args) {
  char *argv[48];
  int argc = 0;
  argv[argc++] = (char *)argv0;
  for (; args[argc - 1] && argc < 47; argc++) argv[argc] = (char *)args[argc - 1];
  argv[argc] = NULL;
  FILE *out = tmpfile(), *err = tmpfile();
  Run r;
  r.status = nnrt_main_io(m, argc, argv, out, err);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

static inline void run_free(Run *r) {
  free(r->out);
  free(r->err);
}

/* Fails (printing both) unless hay contains needle. */
#define assert_contains(hay, needle)                                        \
  do {                                                                      \
    const char *h_ = (hay), *n_ = (needle);                                 \
    if (!strstr(h_, n_)) fail_msg("'%s'\n  does not contain '%s'", h_, n_); \
  } while (0)

#endif
