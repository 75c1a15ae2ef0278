/*
** This file contains `nnc gradcheck`: random inputs and parameters from a
** seeded generator, @loss_grad from the autodiff pass run by the f64
** interpreter, and for up to `samples` elements of each parameter the
** central difference (loss(p + eps) - loss(p - eps)) / 2 eps, compared with
** |analytic - numeric| <= tol * max(1, |analytic|, |numeric|).
*/
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ir/arena.h"
#include "../passes/pass.h"

enum { EXIT_INPUT = 1 };

/* A seeded generator (PCG-style LCG; normal values by Box-Muller). */
typedef struct GcRng {
  uint64_t s;
} GcRng;

static double gc_uniform(GcRng *r) {
  r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(r->s >> 11) * 0x1p-53;
}

static double gc_normal(GcRng *r) {
  double u = gc_uniform(r), v = gc_uniform(r);
  return sqrt(-2 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

static bool gc_has(IrValue *const *v, int n, const IrValue *x) {
  for (int i = 0; i < n; i++)
    if (v[i] == x) return true;
  return false;
}

/* The bound an integer use of a derived value sets (0: none): labels of a
** class op (last dim of the logits; 2 for binary ops), gather indices
** (rows of the table), one_hot (classes). */
static int64_t gc_use_bound(const IrNode *n, int i) {
  const IrType *a0 = n->nargs > 0 ? &n->args[0]->type : NULL;
  switch (n->op) {
  case IR_OP_CROSS_ENTROPY: case IR_OP_NLL: case IR_OP_SOFT_ACCURACY:
  case IR_OP_SOFT_F1: case IR_OP_ACCURACY: case IR_OP_F1: case IR_OP_TOP_K:
    if (i != 1) return 0;
    if (a0->rank == n->args[1]->type.rank) return 2;
    return a0->dim[a0->rank - 1];
  case IR_OP_GATHER: return i == 1 ? a0->dim[0] : 0;
  case IR_OP_ONE_HOT: return ir_attr_int(&n->attrs, "classes", 0);
  default: return 0;
  }
}

static bool gc_passes_through(const IrNode *n) {
  switch (n->op) {
  case IR_OP_RESHAPE: case IR_OP_TRANSPOSE: case IR_OP_SLICE:
  case IR_OP_BROADCAST: case IR_OP_CONCAT: case IR_OP_STACK: case IR_OP_PAD:
    return true;
  case IR_OP_CAST: return !ir_dtype_is_float(n->res[0]->type.dtype);
  default: return false;
  }
}

/* One sweep over block b: grow the derived set, lower *bound. */
static bool gc_sweep(const IrBlock *b, IrValue **set, int *n, int cap,
                     int64_t *bound) {
  bool changed = false;
  for (const IrNode *x = b->first; x; x = x->next) {
    for (int i = 0; i < x->nargs; i++) {
      if (!gc_has(set, *n, x->args[i])) continue;
      int64_t u = gc_use_bound(x, i);
      if (u > 0 && (*bound == 0 || u < *bound)) *bound = u;
      if (x->op == IR_OP_SCAN && x->body && *n < cap &&
          !gc_has(set, *n, x->body->args[i])) {
        set[(*n)++] = x->body->args[i];
        changed = true;
      }
      if (gc_passes_through(x) && *n < cap && !gc_has(set, *n, x->res[0])) {
        set[(*n)++] = x->res[0];
        changed = true;
      }
    }
    if (x->body) changed = gc_sweep(x->body, set, n, cap, bound) || changed;
  }
  return changed;
}

/* The range [0, bound) for integer input arg of f: the smallest bound of
** the uses of the values derived from it by shape ops; else 10 (256 for
** u8). */
static int64_t gc_int_range(Arena *ar, const IrFunc *f, IrValue *arg) {
  enum { CAP = 256 };
  IrValue **set = ARENA_ARRAY(ar, IrValue *, CAP);
  int n = 0;
  int64_t bound = 0;
  set[n++] = arg;
  for (int pass = 0; pass < 32 && gc_sweep(f->body, set, &n, CAP, &bound); pass++) {
  }
  if (bound > 0) return bound;
  return arg->type.dtype == DT_U8 ? 256 : 10;
}

/* A host tensor of type t (f64 interpreter layout), filled by kind:
** 0 random input, 1 parameter, 2 state (ones or zeros). */
static IrTensor gc_tensor(Arena *ar, const IrType *t, GcRng *r, int kind,
                          int64_t range, bool ones) {
  IrTensor x = {*t, NULL};
  int64_t n = ir_type_numel(t);
  x.data = arena_zalloc(ar, (size_t)(n > 0 ? n : 1) * 8, 8);
  double std = 0.5;
  if (t->rank >= 2) {
    int64_t big = t->dim[0] > t->dim[t->rank - 1] ? t->dim[0] : t->dim[t->rank - 1];
    double fan = (double)n / (double)(big > 0 ? big : 1);
    std = fmin(1.0, fmax(0.1, 1 / sqrt(fan)));
  }
  for (int64_t i = 0; i < n; i++) {
    if (ir_dtype_is_float(t->dtype)) {
      double v = kind == 2 ? (ones ? 1 : 0) : gc_normal(r) * (kind == 1 ? std : 1);
      ((double *)x.data)[i] = v;
      continue;
    }
    int64_t k = (int64_t)(gc_uniform(r) * (double)range);
    if (t->dtype == DT_BOOL) k = gc_uniform(r) < 0.5;
    switch (t->dtype) {
    case DT_I32: ((int32_t *)x.data)[i] = (int32_t)k; break;
    case DT_I64: ((int64_t *)x.data)[i] = k; break;
    default: ((uint8_t *)x.data)[i] = (uint8_t)k; break;
    }
  }
  return x;
}

typedef struct GcRun {
  const IrModule *m;
  const IrFunc *loss;
  IrTensor *in, *gl;
  IrInterpOpts io;
  Arena *tmp;   /* reset after every run of @loss */
  Arena *keep;
} GcRun;

static bool gc_loss(GcRun *g, double *out) {
  IrTensor *outs = ARENA_ARRAY(g->tmp, IrTensor, g->loss->body->nrets + 1);
  const char *err = NULL;
  bool ok = ir_interp(g->m, g->loss, g->in, g->gl, outs, &g->io, g->tmp, &err);
  if (!ok) fprintf(stderr, "nnc: error: gradcheck: @loss: %s\n", err ? err : "?");
  else *out = ((double *)outs[0].data)[0];
  arena_reset(g->tmp);
  return ok;
}

/* Check one parameter: returns 1 pass, 0 fail, -1 error. */
static int gc_param(GcRun *g, const IrGlobal *p, double *pd, const double *an,
                    const GcOpts *go, GcRng *r) {
  int64_t n = ir_type_numel(&p->type), k = n < go->samples ? n : go->samples;
  int64_t *idx = ARENA_ARRAY(g->keep, int64_t, k + 1);
  for (int64_t j = 0; j < k; j++) {
    bool dup;
    do {
      idx[j] = k == n ? j : (int64_t)(gc_uniform(r) * (double)n);
      dup = false;
      for (int64_t q = 0; q < j; q++) dup = dup || idx[q] == idx[j];
    } while (dup);
  }
  double max_abs = 0, max_rel = 0;
  bool pass = true;
  for (int64_t j = 0; j < k; j++) {
    int64_t i = idx[j];
    double v = pd[i], lp, lm;
    pd[i] = v + go->eps;
    bool ok = gc_loss(g, &lp);
    pd[i] = v - go->eps;
    ok = ok && gc_loss(g, &lm);
    pd[i] = v;
    if (!ok) return -1;
    double num = (lp - lm) / (2 * go->eps), e = fabs(an[i] - num);
    double den = fmax(fabs(an[i]), fabs(num));
    max_abs = fmax(max_abs, e);
    max_rel = fmax(max_rel, den > 0 ? e / den : 0);
    if (!(e <= go->tol * fmax(1, den))) pass = false;
  }
  char ty[64];
  int at = snprintf(ty, sizeof ty, "%s[", ir_dtype_name(p->type.dtype));
  for (int d = 0; d < p->type.rank && at < (int)sizeof ty - 24; d++)
    at += snprintf(ty + at, sizeof ty - (size_t)at, "%s%lld", d ? "," : "",
                   (long long)p->type.dim[d]);
  snprintf(ty + at, sizeof ty - (size_t)at, "]");
  printf("  %-4s  %-28s %-16s %3lld checked  max abs err %.3g  max rel err %.3g\n",
         pass ? "PASS" : "FAIL", p->name, ty, (long long)k, max_abs, max_rel);
  return pass ? 1 : 0;
}

int nnc_gradcheck(Diag *d, const char *input, const GcOpts *opts, IrModule *m) {
  GcOpts go = *opts;
  if (go.eps <= 0) go.eps = 1e-6;
  if (go.tol <= 0) go.tol = 1e-5;
  if (go.seed == 0) go.seed = 1;
  if (go.samples <= 0) go.samples = 20;
  Arena *scratch = arena_new(), *ar = arena_new();
  PassOpts po = {.verify = true};
  PassCtx cx = {.scratch = scratch, .diag = d, .opt = &po};
  IrFunc *loss = ir_func_find(m, "loss");
  int rc = 0;
  if (!loss) {
    fprintf(stderr, "nnc: error: %s: the model has no loss (nothing to check)\n",
            input);
    rc = EXIT_INPUT;
  } else if (!pass_run_pipeline(m, "autodiff", &cx)) {
    rc = EXIT_INPUT;
  }
  IrFunc *lg = rc ? NULL : ir_func_find(m, "loss_grad");
  if (!rc && !lg) rc = EXIT_INPUT;
  if (rc) {
    arena_free(scratch);
    arena_free(ar);
    return rc;
  }
  GcRng r = {go.seed * 0x9e3779b97f4a7c15ULL + 1};
  int nin = loss->body->nargs, ng = 0, np = 0;
  IrTensor *in = ARENA_ARRAY(ar, IrTensor, nin + 1);
  for (int i = 0; i < nin; i++) {
    IrValue *a = loss->body->args[i];
    int64_t range = ir_dtype_is_float(a->type.dtype) ? 0 : gc_int_range(ar, loss, a);
    in[i] = gc_tensor(ar, &a->type, &r, 0, range, false);
  }
  for (IrGlobal *g = m->globals; g; g = g->next) {
    ng++;
    np += g->kind == IRG_PARAM;
  }
  IrTensor *gl = ARENA_ARRAY(ar, IrTensor, ng + 1);
  int gi = 0;
  for (IrGlobal *g = m->globals; g; g = g->next, gi++) {
    bool ones = g->init && strstr(g->init, "ones");
    gl[gi] = gc_tensor(ar, &g->type, &r, g->kind == IRG_PARAM ? 1 : 2, 0, ones);
  }
  GcRun run = {.m = m, .loss = loss, .in = in, .gl = gl,
               .io = {.f64 = true, .training = true, .seed = go.seed, .step = 0},
               .tmp = scratch, .keep = ar};
  IrTensor *outs = ARENA_ARRAY(ar, IrTensor, lg->body->nrets + 1);
  const char *err = NULL;
  if (!ir_interp(m, lg, in, gl, outs, &run.io, ar, &err)) {
    fprintf(stderr, "nnc: error: gradcheck: @loss_grad: %s\n", err ? err : "?");
    arena_free(scratch);
    arena_free(ar);
    return EXIT_INPUT;
  }
  printf("gradcheck %s: %d parameters, loss %.6g, eps %g, tol %g, seed %llu, "
         "up to %d elements each\n", input, np, ((double *)outs[0].data)[0],
         go.eps, go.tol, (unsigned long long)go.seed, go.samples);
  int passed = 0, failed = 0, k = loss->body->nrets;
  gi = 0;
  for (IrGlobal *g = m->globals; g; g = g->next, gi++) {
    if (g->kind != IRG_PARAM) continue;
    int res = gc_param(&run, g, gl[gi].data, outs[k++].data, &go, &r);
    if (res < 0) {
      rc = EXIT_INPUT;
      break;
    }
    if (res) passed++;
    else failed++;
  }
  if (!rc) {
    printf("gradcheck: %d passed, %d failed\n", passed, failed);
    rc = failed ? EXIT_INPUT : 0;
  }
  arena_free(scratch);
  arena_free(ar);
  return rc;
}
