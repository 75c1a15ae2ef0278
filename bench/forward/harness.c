/*
** bench/forward/harness.c: times the forward pass of a model compiled by
** nnc, linked as an object file through its generated header.
**
**   nnc build M.nn --emit=obj -o M.o         (M.o and M.h)
**   cc -O2 -DMODEL=M -DMODEL_H='"M.h"' -I. -I RUNTIME harness.c M.o \
**      RUNTIME/libnnrt.a -fopenmp -lz -lm -o harness
**   ./harness THREADS ITERS
**
** Parameters come from the model's initialisers (seed 1), inputs are
** random (integers within [0, 2) so any gather stays in range).  Prints
** one line: "MODEL threads=T median_ms=... min_ms=... gflops=...".
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include MODEL_H

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define M_NEW CAT(MODEL, _new)
#define M_INIT CAT(MODEL, _init)
#define M_FREE CAT(MODEL, _free)
#define M_ERROR CAT(MODEL, _error)
#define M_DESC CAT(MODEL, _desc)

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void *random_tensor(const NnrtTensorDesc *d, unsigned *seed) {
  int64_t n = nnrt_numel(d->dims, d->rank);
  size_t es = nnrt_dtype_size(d->dtype);
  unsigned char *p = nnrt_arena_new((size_t)n * es);
  for (int64_t i = 0; p && i < n; i++) {
    *seed = *seed * 1103515245u + 12345u;
    unsigned r = *seed >> 8;
    if (d->dtype == NNRT_F32) ((float *)p)[i] = (float)(r % 2001) / 1000.0f - 1.0f;
    else if (d->dtype == NNRT_I32) ((int *)p)[i] = (int)(r % 2);
    else if (d->dtype == NNRT_U8) p[i] = (unsigned char)r;
  }
  return p;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  int iters = argc > 2 ? atoi(argv[2]) : 20;
  nnrt_set_threads(threads);
  CAT(MODEL, _model) *m = M_NEW();
  if (!m || M_INIT(m, 1)) {
    fprintf(stderr, "harness: %s\n", M_ERROR(m));
    return 1;
  }
  const NnrtModel *d = &M_DESC;
  unsigned seed = 1;
  void *in[16], *out[16];
  for (int i = 0; i < d->ninputs; i++) in[i] = random_tensor(&d->inputs[i], &seed);
  for (int i = 0; i < d->noutputs; i++) out[i] = random_tensor(&d->outputs[i], &seed);
  for (int i = 0; i < 3; i++) d->forward(&m->inst, in, out); /* warm up */
  double *t = calloc((size_t)iters, sizeof *t);
  for (int i = 0; i < iters; i++) {
    double t0 = now_ms();
    if (d->forward(&m->inst, in, out)) {
      fprintf(stderr, "harness: forward failed\n");
      return 1;
    }
    t[i] = now_ms() - t0;
  }
  qsort(t, (size_t)iters, sizeof *t, cmp_double);
  double med = t[iters / 2];
  printf("%s threads=%d median_ms=%.4f min_ms=%.4f gflops=%.2f\n", d->name, threads,
         med, t[0], (double)d->flops_forward / (med * 1e6));
  free(t);
  for (int i = 0; i < d->ninputs; i++) nnrt_arena_free(in[i]);
  for (int i = 0; i < d->noutputs; i++) nnrt_arena_free(out[i]);
  M_FREE(m);
  return 0;
}
