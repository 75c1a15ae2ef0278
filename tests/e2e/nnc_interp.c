/*
** This file contains the reference side of the end-to-end tests: a small
** tool that runs a function of a model through the reference interpreter
** (ir_interp) on the same files an executable made by nnc reads, so the
** two can be compared.  It links the compiler's libraries and libnnrt's
** readers; it is a test tool, not part of nnc.
**
**   nnc_interp gen FILE.nn [-D N=V]... DIR [SEED]
**       write DIR/NAME.npy, random inputs of @forward: floats uniform in
**       [-1, 1), u8 in [0, 256), other integers in [0, bound) where bound
**       is the smallest gather table or one_hot class count of @forward
**   nnc_interp npy OUT.npy DTYPE D0 D1 ... [pattern]
**       write a random tensor of that type (for malformed-input tests), or
**       with `pattern` element i = (i % 7) * 0.25 - 0.75 (examples/embed)
**   nnc_interp print A.npy
**       print the elements, one per line (%.9g)
**   nnc_interp run FILE.nn [-D N=V]... --weights W.safetensors
**       --input NAME=F.npy... --output OUT.npy...
**       run @forward with the parameters of W; outputs in order
**   nnc_interp cmp A.npy B.npy RTOL ATOL
**       compare two tensors: |a - b| <= ATOL + RTOL |b| everywhere;
**       prints the worst element and exits 1 when they differ
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
  fprintf(stderr, "nnc_interp: ");
  fprintf(stderr, fmt, a);
  fputc('\n', stderr);
  return 1;
}

/* Compile a .nn file with -D values from argv (consumed: set to NULL). */
static IrModule *load(Arena *a, const char *path, int argc, char **argv) {
  const char **defs = ARENA_ARRAY(a, const char *, argc + 1);
  int nd = 0;
  for (int i = 0; i + 1 < argc; i++)
    if (argv[i] && strcmp(argv[i], "-D") == 0) {
      defs[nd++] = argv[i + 1];
      argv[i] = argv[i + 1] = NULL;
    }
  const char *inc[] = {NNC_SOURCE_DIR "/std"};
  FrontendOpts fo = {.incdirs = inc, .nincdirs = 1, .defines = defs, .ndefines = nd};
  Diag *d = diag_new(stderr);
  IrModule *m = frontend_compile(d, path, &fo);
  if (m) {
    Arena *s = arena_new();
    PassOpts po = {.verify = true};
    PassCtx cx = {.scratch = s, .diag = d, .opt = &po};
    if (!pass_run_pipeline(m, "canonicalize", &cx)) m = NULL;
    arena_free(s);
  }
  diag_free(d);
  return m;
}

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Fill t (interpreter layout of dtype t->dtype) with random values. */
static void fill(NnrtTensor *t, int64_t bound, uint64_t *s) {
  int64_t n = nnrt_numel(t->dims, t->rank);
  for (int64_t i = 0; i < n; i++) {
    uint64_t r = rng_next(s);
    double u = (double)(r >> 11) * 0x1p-53;
    switch (t->dtype) {
    case NNRT_F32: ((float *)t->data)[i] = (float)(2 * u - 1); break;
    case NNRT_F64: ((double *)t->data)[i] = 2 * u - 1; break;
    case NNRT_I32: ((int32_t *)t->data)[i] = (int32_t)(r % (uint64_t)bound); break;
    case NNRT_I64: ((int64_t *)t->data)[i] = (int64_t)(r % (uint64_t)bound); break;
    case NNRT_U8: ((uint8_t *)t->data)[i] = (uint8_t)(r % 256); break;
    case NNRT_BOOL: ((uint8_t *)t->data)[i] = (uint8_t)(r & 1); break;
    default: break;
    }
  }
}

static int write_random(const char *path, NnrtDType dt, int rank,
                        const int64_t *dims, int64_t bound, uint64_t *seed) {
  NnrtTensor t = {.dtype = dt, .rank = rank};
  memcpy(t.dims, dims, sizeof(int64_t) * (size_t)rank);
  t.nbytes = (size_t)nnrt_numel(dims, rank) * nnrt_dtype_size(dt);
  t.data = calloc(t.nbytes + 1, 1);
  fill(&t, bound, seed);
  NnrtErr e;
  int rc = nnrt_npy_write(path, &t, &e);
  free(t.data);
  if (rc) return die("%s", e.msg);
  return 0;
}

/* Smallest gather table or one_hot class count in b (recursively). */
static int64_t int_bound(const IrBlock *b, int64_t best) {
  for (const IrNode *n = b->first; n; n = n->next) {
    int64_t c = -1;
    if (n->op == IR_OP_GATHER) c = n->args[0]->type.dim[0];
    if (n->op == IR_OP_ONE_HOT) c = ir_attr_int(&n->attrs, "classes", -1);
    if (c > 0 && (best < 0 || c < best)) best = c;
    if (n->body) best = int_bound(n->body, best);
  }
  return best;
}

static int cmd_gen(Arena *a, int argc, char **argv) {
  if (argc < 2) return die("%s", "gen FILE.nn [-D N=V]... DIR [SEED]");
  IrModule *m = load(a, argv[0], argc - 1, argv + 1);
  if (!m) return 1;
  const char *pos[2] = {NULL, NULL};
  int np = 0;
  for (int i = 1; i < argc; i++)
    if (argv[i] && np < 2) pos[np++] = argv[i];
  if (!pos[0]) return die("%s", "gen: no DIR");
  uint64_t seed = pos[1] ? strtoull(pos[1], NULL, 10) : 1;
  seed = seed * 0x9E3779B97F4A7C15ull + 1;
  const IrFunc *f = ir_func_find(m, "forward");
  if (!f) return die("%s", "gen: no @forward");
  int64_t bound = int_bound(f->body, -1);
  if (bound < 1) bound = 2;
  for (int i = 0; i < f->body->nargs; i++) {
    const IrValue *v = f->body->args[i];
    char *path = arena_printf(a, "%s/%s.npy", pos[0], v->name);
    if (write_random(path, (NnrtDType)v->type.dtype, v->type.rank, v->type.dim,
                     bound, &seed))
      return 1;
  }
  ir_module_free(m);
  return 0;
}

static int cmd_npy(int argc, char **argv) {
  if (argc < 2) return die("%s", "npy OUT.npy DTYPE DIMS...");
  DType dt;
  if (!ir_dtype_parse(argv[1], &dt)) return die("npy: bad dtype '%s'", argv[1]);
  int64_t dims[8];
  int rank = 0;
  bool pattern = strcmp(argv[argc - 1], "pattern") == 0;
  for (int i = 2; i < argc - pattern && rank < 8; i++) dims[rank++] = atoll(argv[i]);
  uint64_t seed = 12345;
  if (!pattern) return write_random(argv[0], (NnrtDType)dt, rank, dims, 2, &seed);
  if (dt != DT_F32) return die("%s", "npy: pattern needs f32");
  NnrtTensor t = {.dtype = NNRT_F32, .rank = rank};
  memcpy(t.dims, dims, sizeof(int64_t) * (size_t)rank);
  int64_t n = nnrt_numel(dims, rank);
  t.nbytes = (size_t)n * 4;
  float *x = calloc((size_t)n + 1, 4);
  for (int64_t i = 0; i < n; i++) x[i] = (float)(i % 7) * 0.25f - 0.75f;
  t.data = x;
  NnrtErr e;
  int rc = nnrt_npy_write(argv[0], &t, &e);
  free(x);
  return rc ? die("%s", e.msg) : 0;
}

/* An interpreter tensor from a file tensor of the same type. */
static bool to_host(Arena *a, const NnrtTensor *t, const IrType *want,
                    IrTensor *out, const char *what) {
  if ((int)t->dtype != (int)want->dtype || t->rank != want->rank ||
      memcmp(t->dims, want->dim, sizeof(int64_t) * (size_t)t->rank) != 0) {
    fprintf(stderr, "nnc_interp: %s: type differs from the model's\n", what);
    return false;
  }
  if (want->dtype == DT_F16 || want->dtype == DT_BF16) {
    fprintf(stderr, "nnc_interp: %s: f16/bf16 not handled\n", what);
    return false;
  }
  out->type = *want;
  out->data = arena_memdup(a, t->data, t->nbytes ? t->nbytes : 1);
  return true;
}

static int cmd_run(Arena *a, int argc, char **argv) {
  if (argc < 1) return die("%s", "run FILE.nn ...");
  IrModule *m = load(a, argv[0], argc - 1, argv + 1);
  if (!m) return 1;
  const IrFunc *f = ir_func_find(m, "forward");
  if (!f) return die("%s", "run: no @forward");
  const char *weights = NULL;
  const char **infile = ARENA_ARRAY(a, const char *, f->body->nargs + 1);
  const char **outfile = ARENA_ARRAY(a, const char *, argc + 1);
  int nout = 0;
  for (int i = 1; i < argc; i++) {
    if (!argv[i]) continue;
    if (strcmp(argv[i], "--weights") == 0 && i + 1 < argc) weights = argv[++i];
    else if (strcmp(argv[i], "--output") == 0 && i + 1 < argc) outfile[nout++] = argv[++i];
    else if (strcmp(argv[i], "--input") == 0 && i + 1 < argc) {
      const char *s = argv[++i], *eq = strchr(s, '=');
      for (int k = 0; eq && k < f->body->nargs; k++)
        if (strlen(f->body->args[k]->name) == (size_t)(eq - s) &&
            !memcmp(s, f->body->args[k]->name, (size_t)(eq - s)))
          infile[k] = eq + 1;
    } else return die("run: unexpected '%s'", argv[i]);
  }
  NnrtErr e;
  NnrtTensorFile w;
  if (!weights || nnrt_st_read(weights, &w, &e)) return die("%s", weights ? e.msg : "no --weights");
  int ng = 0;
  for (const IrGlobal *g = m->globals; g; g = g->next) ng++;
  IrTensor *globals = ARENA_ARRAY(a, IrTensor, ng + 1);
  int gi = 0;
  for (const IrGlobal *g = m->globals; g; g = g->next, gi++) {
    const NnrtTensor *t = nnrt_tf_find(&w, g->name);
    if (!t) return die("run: '%s' not in the weights", g->name);
    if (!to_host(a, t, &g->type, &globals[gi], g->name)) return 1;
  }
  nnrt_tf_free(&w);
  IrTensor *in = ARENA_ARRAY(a, IrTensor, f->body->nargs + 1);
  for (int k = 0; k < f->body->nargs; k++) {
    NnrtTensor t;
    if (!infile[k]) return die("run: no --input %s=FILE", f->body->args[k]->name);
    if (nnrt_npy_read(infile[k], &t, &e)) return die("%s", e.msg);
    bool ok = to_host(a, &t, &f->body->args[k]->type, &in[k], infile[k]);
    nnrt_tensor_free(&t);
    if (!ok) return 1;
  }
  IrTensor *outs = ARENA_ARRAY(a, IrTensor, f->body->nrets + 1);
  IrInterpOpts io = {0};
  const char *err = NULL;
  if (!ir_interp(m, f, in, globals, outs, &io, a, &err)) return die("interp: %s", err);
  for (int k = 0; k < nout && k < f->body->nrets; k++) {
    NnrtTensor t = {.dtype = (NnrtDType)outs[k].type.dtype, .rank = outs[k].type.rank,
                    .data = outs[k].data};
    memcpy(t.dims, outs[k].type.dim, sizeof(int64_t) * (size_t)t.rank);
    t.nbytes = (size_t)nnrt_numel(t.dims, t.rank) * nnrt_dtype_size(t.dtype);
    if (nnrt_npy_write(outfile[k], &t, &e)) return die("%s", e.msg);
  }
  ir_module_free(m);
  return 0;
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

static int cmd_cmp(int argc, char **argv) {
  if (argc < 4) return die("%s", "cmp A.npy B.npy RTOL ATOL");
  NnrtTensor x, y;
  NnrtErr e;
  if (nnrt_npy_read(argv[0], &x, &e) || nnrt_npy_read(argv[1], &y, &e))
    return die("%s", e.msg);
  double rtol = atof(argv[2]), atol = atof(argv[3]);
  int64_t n = nnrt_numel(x.dims, x.rank);
  if (x.dtype != y.dtype || x.rank != y.rank ||
      memcmp(x.dims, y.dims, sizeof(int64_t) * (size_t)x.rank))
    return die("cmp: %s: types differ", argv[0]);
  int64_t worst = -1, bad = 0;
  double wr = 0;
  for (int64_t i = 0; i < n; i++) {
    double a = elem(&x, i), b = elem(&y, i), d = fabs(a - b);
    double r = d / (atol + rtol * fabs(b));
    if (!(d <= atol + rtol * fabs(b)) && !(isnan(a) && isnan(b))) bad++;
    if (worst < 0 || r > wr || isnan(r)) worst = i, wr = r;
  }
  if (worst >= 0)
    printf("%lld elements, %lld outside tolerance; worst [%lld]: %.9g vs %.9g\n",
           (long long)n, (long long)bad, (long long)worst, elem(&x, worst),
           elem(&y, worst));
  nnrt_tensor_free(&x);
  nnrt_tensor_free(&y);
  return bad ? 1 : 0;
}

static int cmd_print(int argc, char **argv) {
  NnrtTensor x;
  NnrtErr e;
  if (argc < 1 || nnrt_npy_read(argv[0], &x, &e)) return die("%s", argc ? e.msg : "print A.npy");
  int64_t n = nnrt_numel(x.dims, x.rank);
  for (int64_t i = 0; i < n; i++) printf("%.9g\n", elem(&x, i));
  nnrt_tensor_free(&x);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) return die("%s", "usage: nnc_interp gen|npy|run|cmp ...");
  Arena *a = arena_new();
  int rc;
  if (strcmp(argv[1], "gen") == 0) rc = cmd_gen(a, argc - 2, argv + 2);
  else if (strcmp(argv[1], "npy") == 0) rc = cmd_npy(argc - 2, argv + 2);
  else if (strcmp(argv[1], "run") == 0) rc = cmd_run(a, argc - 2, argv + 2);
  else if (strcmp(argv[1], "cmp") == 0) rc = cmd_cmp(argc - 2, argv + 2);
  else if (strcmp(argv[1], "print") == 0) rc = cmd_print(argc - 2, argv + 2);
  else rc = die("unknown command '%s'", argv[1]);
  arena_free(a);
  return rc;
}
