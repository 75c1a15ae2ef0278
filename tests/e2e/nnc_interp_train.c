/*
** This file contains the reference side of the training end-to-end tests
** (tests/e2e/train.sh): a small tool that runs @train_step through the
** reference interpreter on the batches an executable made by nnc draws,
** so that the native training step can be compared with it.  It links the
** compiler's libraries and libnnrt's readers; it is a test tool, not part
** of nnc.
**
**   nnc_interp_train run FILE.nn DATA.csv W0.safetensors STEPS SEED
**       OUT.safetensors
**       a model whose train inputs are filled by one CSV file (columns in
**       input order); starting from the params and states of W0, runs
**       STEPS steps of @train_step (total_steps = STEPS) on the batches of
**       the runtime's shuffle (nnrt_shuffle(N, SEED, epoch), last partial
**       batch dropped), writes the @X results back after each step,
**       prints `step S loss L lr R` per step (%.9g) and saves the params
**       and states to OUT
**   nnc_interp_train cmp A.safetensors B.safetensors RTOL ATOL
**       every tensor of A against B's of the same name: |a - b| <= ATOL +
**       RTOL |b|; prints the worst element and exits 1 when they differ
*/
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../frontend/frontend.h"
#include "../../ir/arena.h"
#include "../../ir/diag.h"
#include "../../ir/ir.h"
#include "../../passes/pass.h"
#include "nnrt.h"

#ifndef NNC_SOURCE_DIR
#define NNC_SOURCE_DIR "."
#endif

static int die(const char *fmt, const char *a) {
  fprintf(stderr, "nnc_interp_train: ");
  fprintf(stderr, fmt, a);
  fputc('\n', stderr);
  return 1;
}

/* Compile a .nn file through the default pipeline. */
static IrModule *load(const char *path) {
  const char *inc[] = {NNC_SOURCE_DIR "/std"};
  FrontendOpts fo = {.incdirs = inc, .nincdirs = 1};
  Diag *d = diag_new(stderr);
  IrModule *m = frontend_compile(d, path, &fo);
  if (m) {
    Arena *s = arena_new();
    PassOpts po = {.verify = true};
    PassCtx cx = {.scratch = s, .diag = d, .opt = &po};
    if (!pass_run_pipeline(m, pass_default_pipeline, &cx)) m = NULL;
    arena_free(s);
  }
  diag_free(d);
  return m;
}

static double elem(const NnrtTensor *t, int64_t i) {
  switch (t->dtype) {
  case NNRT_F32: { float v; memcpy(&v, (char *)t->data + 4 * i, 4); return v; }
  case NNRT_F64: { double v; memcpy(&v, (char *)t->data + 8 * i, 8); return v; }
  case NNRT_I32: { int32_t v; memcpy(&v, (char *)t->data + 4 * i, 4); return v; }
  case NNRT_I64: { int64_t v; memcpy(&v, (char *)t->data + 8 * i, 8); return (double)v; }
  case NNRT_U8:
  case NNRT_BOOL: return ((uint8_t *)t->data)[i];
  default: return NAN;
  }
}

/* Stores v as element i of a host tensor of dtype dt (f32 mode). */
static void put(void *data, DType dt, int64_t i, double v) {
  switch (dt) {
  case DT_F32: ((float *)data)[i] = (float)v; break;
  case DT_F64: ((double *)data)[i] = v; break;
  case DT_I32: ((int32_t *)data)[i] = (int32_t)v; break;
  case DT_I64: ((int64_t *)data)[i] = (int64_t)v; break;
  default: ((uint8_t *)data)[i] = (uint8_t)v; break;
  }
}

static size_t host_bytes(const IrType *t) {
  return (size_t)ir_type_numel(t) * (size_t)ir_interp_elem_size(t->dtype, false);
}

static int cmd_run(Arena *a, int argc, char **argv) {
  if (argc < 6) return die("%s", "run FILE.nn DATA.csv W0 STEPS SEED OUT");
  IrModule *m = load(argv[0]);
  if (!m) return 1;
  const IrFunc *f = ir_func_find(m, "train_step");
  if (!f) return die("%s", "no @train_step");
  int64_t steps = atoll(argv[3]);
  uint64_t seed = strtoull(argv[4], NULL, 10);
  int ni = f->body->nargs - 2;
  NnrtErr e;
  NnrtCsv csv;
  if (nnrt_csv_read(argv[1], 0, &csv, &e)) return die("%s", e.msg);
  /* Columns per input: the product of its dims after the batch axis. */
  int64_t *col0 = ARENA_ARRAY(a, int64_t, ni + 1), used = 0;
  for (int k = 0; k < ni; k++) {
    const IrType *t = &f->body->args[k]->type;
    col0[k] = used;
    used += t->dim[0] ? ir_type_numel(t) / t->dim[0] : 0;
  }
  if (used != csv.cols) return die("%s: column count differs from the inputs", argv[1]);
  int64_t B = f->body->args[0]->type.dim[0], N = csv.rows, spe = N / B;
  if (spe < 1) return die("%s", "fewer samples than a batch");

  NnrtTensorFile w;
  if (nnrt_st_read(argv[2], &w, &e)) return die("%s", e.msg);
  int ng = 0;
  for (const IrGlobal *g = m->globals; g; g = g->next) ng++;
  IrTensor *globals = ARENA_ARRAY(a, IrTensor, ng + 1);
  int gi = 0;
  for (const IrGlobal *g = m->globals; g; g = g->next, gi++) {
    const NnrtTensor *t = nnrt_tf_find(&w, g->name);
    if (!t || (int)t->dtype != (int)g->type.dtype || t->nbytes != host_bytes(&g->type))
      return die("'%s' missing or mistyped in the weights", g->name);
    globals[gi].type = g->type;
    globals[gi].data = arena_memdup(a, t->data, t->nbytes ? t->nbytes : 1);
  }
  nnrt_tf_free(&w);

  IrTensor *in = ARENA_ARRAY(a, IrTensor, ni + 2);
  for (int k = 0; k < ni + 2; k++) {
    in[k].type = f->body->args[k]->type;
    in[k].data = arena_alloc(a, host_bytes(&in[k].type) + 8, 64);
  }
  int64_t *perm = ARENA_ARRAY(a, int64_t, N);
  IrTensor *outs = ARENA_ARRAY(a, IrTensor, f->body->nrets + 1);
  for (int64_t s = 0; s < steps; s++) {
    int64_t ep = s / spe, p = s % spe;
    nnrt_shuffle(perm, N, seed, (uint64_t)ep);
    for (int k = 0; k < ni; k++) {
      int64_t per = ir_type_numel(&in[k].type) / B;
      for (int64_t r = 0; r < B; r++)
        for (int64_t c = 0; c < per; c++)
          put(in[k].data, in[k].type.dtype, r * per + c,
              csv.data[perm[p * B + r] * csv.cols + col0[k] + c]);
    }
    *(float *)in[ni].data = (float)ep;
    *(float *)in[ni + 1].data = (float)steps;
    IrInterpOpts io = {.training = true, .seed = seed, .step = (uint64_t)s};
    const char *err = NULL;
    if (!ir_interp(m, f, in, globals, outs, &io, a, &err)) return die("interp: %s", err);
    printf("step %lld loss %.9g lr %.9g\n", (long long)s + 1, *(float *)outs[0].data,
           *(float *)outs[1].data);
    for (int r = 0; r < f->body->nrets; r++) {
      const char *nm = f->ret_names[r];
      if (!nm || nm[0] != '@') continue;
      gi = 0;
      for (const IrGlobal *g = m->globals; g; g = g->next, gi++)
        if (strcmp(g->name, nm + 1) == 0)
          memcpy(globals[gi].data, outs[r].data, host_bytes(&g->type));
    }
  }
  nnrt_csv_free(&csv);
  NnrtTensor *t = ARENA_ARRAY(a, NnrtTensor, ng + 1);
  gi = 0;
  for (const IrGlobal *g = m->globals; g; g = g->next, gi++) {
    t[gi] = (NnrtTensor){.name = g->name, .dtype = (NnrtDType)g->type.dtype,
                         .rank = g->type.rank, .data = globals[gi].data,
                         .nbytes = host_bytes(&g->type)};
    memcpy(t[gi].dims, g->type.dim, sizeof(int64_t) * (size_t)g->type.rank);
  }
  if (nnrt_st_write(argv[5], t, ng, NULL, 0, &e)) return die("%s", e.msg);
  ir_module_free(m);
  return 0;
}

static int cmd_cmp(int argc, char **argv) {
  if (argc < 4) return die("%s", "cmp A.safetensors B.safetensors RTOL ATOL");
  NnrtTensorFile x, y;
  NnrtErr e;
  if (nnrt_st_read(argv[0], &x, &e)) return die("%s", e.msg);
  if (nnrt_st_read(argv[1], &y, &e)) return die("%s", e.msg);
  double rtol = atof(argv[2]), atol = atof(argv[3]);
  int64_t bad = 0;
  for (int k = 0; k < x.n; k++) {
    const NnrtTensor *a = &x.t[k], *b = nnrt_tf_find(&y, a->name);
    if (!b || a->dtype != b->dtype || a->nbytes != b->nbytes) {
      printf("%s: absent or of another type in %s\n", a->name, argv[1]);
      bad++;
      continue;
    }
    int64_t n = nnrt_numel(a->dims, a->rank), worst = -1, nb = 0;
    double wr = 0;
    for (int64_t i = 0; i < n; i++) {
      double u = elem(a, i), v = elem(b, i), d = fabs(u - v);
      double r = d / (atol + rtol * fabs(v));
      if (!(d <= atol + rtol * fabs(v))) nb++;
      if (worst < 0 || r > wr || isnan(r)) worst = i, wr = r;
    }
    if (worst >= 0)
      printf("%s: %lld elements, %lld outside tolerance; worst [%lld]: %.9g vs %.9g\n",
             a->name, (long long)n, (long long)nb, (long long)worst, elem(a, worst),
             elem(b, worst));
    bad += nb;
  }
  if (x.n != y.n) {
    printf("%s has %d tensors, %s %d\n", argv[0], x.n, argv[1], y.n);
    bad++;
  }
  nnrt_tf_free(&x);
  nnrt_tf_free(&y);
  return bad ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc < 2) return die("%s", "usage: nnc_interp_train run|cmp ...");
  Arena *a = arena_new();
  int rc;
  if (strcmp(argv[1], "run") == 0) rc = cmd_run(a, argc - 2, argv + 2);
  else if (strcmp(argv[1], "cmp") == 0) rc = cmd_cmp(argc - 2, argv + 2);
  else rc = die("unknown command '%s'", argv[1]);
  arena_free(a);
  return rc;
}
