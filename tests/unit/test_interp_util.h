/*
** This file contains the helpers the interpreter tests share: a fixture
** with a module, building one-node (or small) functions from host values,
** running them in f32 or f64 mode and reading results back as doubles, and
** a deterministic random source.  Included by tests/unit/test_interp*.c.
*/
#ifndef NNC_TEST_INTERP_UTIL_H
#define NNC_TEST_INTERP_UTIL_H

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ir.h"

typedef struct Fx {
  IrModule *m;
  Arena *a;   /* outputs and host buffers */
  int nfunc;  /* for unique function names */
} Fx;

static int arena_setup(void **state) {
  Arena *a = arena_new();
  Fx *fx = ARENA_NEW(a, Fx);
  fx->m = ir_module_new("t");
  fx->a = a;
  *state = fx;
  return 0;
}

static int arena_teardown(void **state) {
  Fx *fx = *state;
  ir_module_free(fx->m);
  arena_free(fx->a); /* fx itself lives in this arena */
  return 0;
}

/* A deterministic uniform in [lo, hi) (xorshift64*). */
static double rnd(uint64_t *s, double lo, double hi) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  uint64_t r = *s * 0x2545F4914F6CDD1DULL;
  return lo + (hi - lo) * (double)(r >> 11) * 0x1p-53;
}

static double *rnd_vec(Fx *fx, uint64_t *s, int64_t n, double lo, double hi) {
  double *v = ARENA_ARRAY(fx->a, double, n ? n : 1);
  for (int64_t i = 0; i < n; i++) v[i] = rnd(s, lo, hi);
  return v;
}

static IrType ty(DType t, int rank, ...) {
  int64_t d[IR_MAX_RANK];
  va_list ap;
  va_start(ap, rank);
  for (int k = 0; k < rank; k++) d[k] = va_arg(ap, int64_t);
  va_end(ap);
  return ir_type_make(t, rank, d);
}
#define T0(t) ty(t, 0)
#define T1(t, a) ty(t, 1, (int64_t)(a))
#define T2(t, a, b) ty(t, 2, (int64_t)(a), (int64_t)(b))
#define T3(t, a, b, c) ty(t, 3, (int64_t)(a), (int64_t)(b), (int64_t)(c))
#define T4(t, a, b, c, d) \
  ty(t, 4, (int64_t)(a), (int64_t)(b), (int64_t)(c), (int64_t)(d))

/* A host tensor of type t holding v (converted to its storage). */
static IrTensor host(Fx *fx, IrType t, const double *v, bool f64) {
  IrTensor h = {t, NULL};
  int64_t n = ir_type_numel(&t);
  int sz = ir_interp_elem_size(t.dtype, f64);
  h.data = arena_zalloc(fx->a, (size_t)(n ? n : 1) * sz, 8);
  for (int64_t i = 0; i < n; i++) {
    double x = v ? v[i] : 0;
    if (sz == 8 && t.dtype != DT_I64) ((double *)h.data)[i] = x;
    else if (t.dtype == DT_I64) ((int64_t *)h.data)[i] = (int64_t)x;
    else if (t.dtype == DT_I32) ((int32_t *)h.data)[i] = (int32_t)x;
    else if (sz == 1) ((uint8_t *)h.data)[i] = (uint8_t)x;
    else ((float *)h.data)[i] = (float)x;
  }
  return h;
}

/* The values of a host tensor as doubles. */
static double *vals(Fx *fx, const IrTensor *h, bool f64) {
  int64_t n = ir_type_numel(&h->type);
  double *v = ARENA_ARRAY(fx->a, double, n ? n : 1);
  int sz = ir_interp_elem_size(h->type.dtype, f64);
  for (int64_t i = 0; i < n; i++) {
    if (sz == 8 && h->type.dtype != DT_I64) v[i] = ((double *)h->data)[i];
    else if (h->type.dtype == DT_I64) v[i] = (double)((int64_t *)h->data)[i];
    else if (h->type.dtype == DT_I32) v[i] = ((int32_t *)h->data)[i];
    else if (sz == 1) v[i] = ((uint8_t *)h->data)[i];
    else v[i] = ((float *)h->data)[i];
  }
  return v;
}

/* A function under construction. */
typedef struct Fn {
  IrFunc *f;
  IrBlock *b;
} Fn;

static Fn fn_new(Fx *fx) {
  char name[32];
  snprintf(name, sizeof name, "f%d", fx->nfunc++);
  Fn g;
  g.f = ir_func_new(fx->m, name);
  g.b = g.f->body;
  return g;
}

static IrValue *fn_arg(Fx *fx, Fn *g, IrType t) {
  return ir_block_add_arg(fx->m, g->b, t, NULL);
}

/* Append op(args) {attrs} : res to block b and return its result. */
static IrValue *nodeb(Fx *fx, IrBlock *b, IrOp op, int nargs, IrValue **args,
                      const IrAttrs *at, IrType res) {
  SrcLoc loc = {0};
  IrNode *n = ir_node_new(fx->m, b, op, nargs, args, 1, &res, loc);
  for (int i = 0; at && i < at->n; i++) ir_attr_set(fx->m, &n->attrs, &at->v[i]);
  return n->res[0];
}

static IrValue *node(Fx *fx, Fn *g, IrOp op, int nargs, IrValue **args,
                     const IrAttrs *at, IrType res) {
  return nodeb(fx, g->b, op, nargs, args, at, res);
}

/* Run g with the given returns; outs receives one tensor per return. */
static bool fn_run(Fx *fx, Fn *g, int nret, IrValue **rets,
                   const IrTensor *ins, IrTensor *outs, bool f64,
                   const char **err) {
  const char *names[8] = {"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"};
  ir_func_set_rets(fx->m, g->f, nret, rets, names);
  IrInterpOpts o = {.f64 = f64, .seed = 1, .step = 0};
  const char *e = NULL;
  bool ok = ir_interp(fx->m, g->f, ins, NULL, outs, &o, fx->a, &e);
  if (err) *err = e;
  else if (!ok) fail_msg("interpreter error: %s", e ? e : "?");
  return ok;
}

/* One operand of op1(). */
typedef struct In {
  IrType t;
  const double *v;
} In;

/* Build and run `op(inputs...) {at} : res`; the result as doubles (NULL and
** *err set on a run-time error when err is non-NULL). */
static double *op1(Fx *fx, IrOp op, int nin, const In *ins, const IrAttrs *at,
                   IrType res, bool f64, const char **err) {
  Fn g = fn_new(fx);
  IrValue *args[8];
  IrTensor hs[8], out;
  for (int i = 0; i < nin; i++) {
    args[i] = fn_arg(fx, &g, ins[i].t);
    hs[i] = host(fx, ins[i].t, ins[i].v, f64);
  }
  IrValue *r = node(fx, &g, op, nin, args, at, res);
  if (!fn_run(fx, &g, 1, &r, hs, &out, f64, err)) return NULL;
  return vals(fx, &out, f64);
}

static void assert_close(const double *got, const double *want, int64_t n,
                         double tol, const char *what) {
  for (int64_t i = 0; i < n; i++) {
    bool same_inf = isinf(got[i]) && isinf(want[i]) &&
                    (got[i] > 0) == (want[i] > 0);
    bool ok = same_inf || (isnan(got[i]) && isnan(want[i])) ||
              fabs(got[i] - want[i]) <= tol * (1 + fabs(want[i]));
    if (!ok)
      fail_msg("%s[%lld]: got %.9g, want %.9g", what, (long long)i, got[i],
               want[i]);
  }
}

#endif
