/*
** bench/train/harness.c: times one training step (forward, loss,
** backward, optimiser update) of a model compiled by nnc, linked as an
** object file through its generated header.
**
**   nnc build M.nn --emit=obj -o M.o         (M.o and M.h)
**   cc -O2 -DMODEL=M -DMODEL_H='"M.h"' -I. -I RUNTIME harness.c M.o \
**      RUNTIME/libnnrt.a -fopenmp -lz -lm -o harness
**   ./harness THREADS ITERS [MAX_SECONDS]
**
** The header has no train_step wrapper, so the harness calls the
** descriptor's entry point (runtime/nnrt.h, "Training fields (ABI 2)"):
** train_step(&inst, {train inputs..., &epoch, &total_steps}, {&loss,
** &lr, metrics...}), with inst.step set to the steps done before each
** call, as the executable's `train` does.  Parameters come from the
** model's initialisers (seed 1); the data is NBATCH random batches used
** in turn (u8 pixels uniform in [0, 256), integer inputs uniform in
** [0, limit) with the descriptor's train_input_limits, else [0, 2); f32
** inputs in [-1, 1]).  Three untimed steps, then ITERS timed ones (fewer
** when MAX_SECONDS has passed and at least 5 are done).  Prints one line:
** "MODEL threads=T steps=N median_ms=... min_ms=... loss0=... loss=...".
** Exit status 3 when the model has no train_step (an ABI 1 descriptor or
** no train block).
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

enum { NBATCH = 4, MAXIO = 16 };

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* One batch of train input d; integer values in [0, limit). */
static void *random_tensor(const NnrtTensorDesc *d, int64_t limit, unsigned *seed) {
  int64_t n = nnrt_numel(d->dims, d->rank);
  size_t es = nnrt_dtype_size(d->dtype);
  unsigned char *p = nnrt_arena_new((size_t)n * es);
  if (limit <= 0) limit = 2;
  for (int64_t i = 0; p && i < n; i++) {
    *seed = *seed * 1103515245u + 12345u;
    unsigned r = *seed >> 8;
    switch (d->dtype) {
    case NNRT_F32: ((float *)p)[i] = (float)(r % 2001) / 1000.0f - 1.0f; break;
    case NNRT_I32: ((int32_t *)p)[i] = (int32_t)(r % (unsigned)limit); break;
    case NNRT_I64: ((int64_t *)p)[i] = (int64_t)(r % (unsigned)limit); break;
    case NNRT_U8: p[i] = (unsigned char)r; break;
    default: break; /* zeros */
    }
  }
  return p;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  int iters = argc > 2 ? atoi(argv[2]) : 20;
  double max_ms = argc > 3 ? atof(argv[3]) * 1e3 : 1e30;
  if (threads < 1 || iters < 1) {
    fprintf(stderr, "usage: harness THREADS ITERS [MAX_SECONDS]\n");
    return 2;
  }
  NnrtModel full;
  const NnrtModel *d = nnrt_model_upgrade(&M_DESC, &full);
  if (d->abi_version < 2 || !d->train_step || d->ntrain_inputs < 1 ||
      d->ntrain_inputs + 2 > MAXIO || 2 + d->nmetrics > MAXIO) {
    fprintf(stderr, "harness: model '%s' has no train_step (descriptor ABI %d)\n",
            d->name, M_DESC.abi_version);
    return 3;
  }
  nnrt_set_threads(threads);
  CAT(MODEL, _model) *m = M_NEW();
  if (!m || M_INIT(m, 1)) {
    fprintf(stderr, "harness: %s\n", m ? M_ERROR(m) : "out of memory");
    return 1;
  }
  int nin = d->ntrain_inputs, nout = 2 + (d->train_metrics ? d->nmetrics : 0);
  int64_t batch = d->train_inputs[0].dims[0];
  unsigned seed = 1;
  void *data[NBATCH][MAXIO], *in[MAXIO], *out[MAXIO];
  for (int b = 0; b < NBATCH; b++)
    for (int i = 0; i < nin; i++) {
      int64_t lim = d->train_input_limits ? d->train_input_limits[i] : 0;
      if (!(data[b][i] = random_tensor(&d->train_inputs[i], lim, &seed))) return 1;
    }
  /* the scalars epoch and total_steps, and the scalar outputs */
  float *epoch = nnrt_arena_new(64), *total = nnrt_arena_new(64);
  for (int i = 0; i < nout; i++)
    if (!(out[i] = nnrt_arena_new(64))) return 1;
  if (!epoch || !total) return 1;
  *epoch = 0;
  *total = (float)(60000 / batch); /* one Fashion-MNIST epoch */
  in[nin] = epoch;
  in[nin + 1] = total;

  double *t = calloc((size_t)iters, sizeof *t);
  if (!t) return 1;
  float loss0 = 0;
  int done = 0;
  double start = now_ms();
  for (int s = 0; s < 3 + iters; s++) {
    for (int i = 0; i < nin; i++) in[i] = data[s % NBATCH][i];
    m->inst.step = (uint64_t)s;
    double t0 = now_ms();
    int st = d->train_step(&m->inst, in, out);
    double dt = now_ms() - t0;
    if (st) {
      fprintf(stderr, "harness: train_step failed at step %d (status %d)\n", s, st);
      return 1;
    }
    if (s == 0) loss0 = *(float *)out[0];
    if (s < 3) {
      start = now_ms();
      continue;
    }
    t[done++] = dt;
    if (done >= 5 && now_ms() - start > max_ms) break;
  }
  qsort(t, (size_t)done, sizeof *t, cmp_double);
  printf("%s threads=%d steps=%d median_ms=%.4f min_ms=%.4f loss0=%.4f loss=%.4f\n",
         d->name, threads, done, t[done / 2], t[0], loss0, *(float *)out[0]);
  free(t);
  for (int b = 0; b < NBATCH; b++)
    for (int i = 0; i < nin; i++) nnrt_arena_free(data[b][i]);
  for (int i = 0; i < nout; i++) nnrt_arena_free(out[i]);
  nnrt_arena_free(epoch);
  nnrt_arena_free(total);
  M_FREE(m);
  return 0;
}
