/*
** This file contains the built-in operations of .nn: one table row per
** name with its parameters (tensor operands and compile-time options, in
** positional order, each also accepted by name) and the function that
** lowers a call to one IR op or a short expansion.  Shapes and dtypes are
** checked by ir_infer through sema_build, never here.
**
** Parameter strings: space-separated names; a trailing '!' marks a
** required one.
*/
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "sema.h"

#define MAXP 10

typedef struct Builtin Builtin;

/* The matched arguments of one call. */
typedef struct BArgs {
  const Builtin *b;
  AstNode *call;
  int np;
  const char *names[MAXP];
  bool req[MAXP];
  Value *v[MAXP];
  AstNode *n[MAXP];
  bool ok;
} BArgs;

typedef Value *BFn(Lower *L, BArgs *a);

struct Builtin {
  const char *name;
  IrOp op;
  BFn *fn;
  const char *params;
};

/* ------------------------------------------------------ arg helpers */

static Sema *SS(Lower *L) { return L->S; }

static int pidx(BArgs *a, const char *name) {
  for (int i = 0; i < a->np; i++)
    if (!strcmp(a->names[i], name)) return i;
  return -1;
}

static Value *arg(BArgs *a, const char *name) {
  int i = pidx(a, name);
  return i >= 0 ? a->v[i] : NULL;
}

static SrcLoc arg_loc(BArgs *a, const char *name) {
  int i = pidx(a, name);
  return i >= 0 && a->n[i] ? a->n[i]->loc : a->call->loc;
}

static AstNode *arg_node(BArgs *a, const char *name) {
  int i = pidx(a, name);
  return i >= 0 ? a->n[i] : NULL;
}

static Value *bad(Lower *L, BArgs *a, SrcLoc loc, const char *fmt,
                  const char *x) {
  diag_error(SS(L)->d, loc, fmt, a->b->name, x);
  a->ok = false;
  return sema_poison(SS(L));
}

/* A tensor argument (numbers become constants of dtype dt). */
static Value *targ(Lower *L, BArgs *a, const char *name, DType dt) {
  Value *v = arg(a, name);
  if (!v) return NULL;
  if (v->k == V_TENSOR || v->k == V_POISON) return v;
  if (sema_is_num(v) || v->k == V_BOOL)
    return sema_as_tensor(L, v, dt, arg_loc(a, name));
  diag_error(SS(L)->d, arg_loc(a, name), "argument '%s' of '%s' must be a "
             "tensor, got %s", name, a->b->name, sema_kind_name(v));
  a->ok = false;
  return sema_poison(SS(L));
}

static bool get_int(Lower *L, BArgs *a, const char *name, int64_t *out) {
  Value *v = arg(a, name);
  if (!v) return false;
  if (v->k != V_INT) {
    diag_error(SS(L)->d, arg_loc(a, name), "argument '%s' of '%s' must be a "
               "compile-time int, got %s", name, a->b->name,
               v->k == V_TENSOR ? "a tensor" : sema_kind_name(v));
    a->ok = false;
    return false;
  }
  *out = v->i;
  return true;
}

static bool get_float(Lower *L, BArgs *a, const char *name, double *out) {
  Value *v = arg(a, name);
  if (!v) return false;
  if (!sema_is_num(v)) {
    diag_error(SS(L)->d, arg_loc(a, name), "argument '%s' of '%s' must be a "
               "compile-time number, got %s", name, a->b->name,
               v->k == V_TENSOR ? "a tensor" : sema_kind_name(v));
    a->ok = false;
    return false;
  }
  *out = sema_num(v);
  return true;
}

static bool get_bool(Lower *L, BArgs *a, const char *name, bool *out) {
  Value *v = arg(a, name);
  if (!v) return false;
  if (v->k != V_BOOL) {
    diag_error(SS(L)->d, arg_loc(a, name), "argument '%s' of '%s' must be a "
               "compile-time bool, got %s", name, a->b->name,
               sema_kind_name(v));
    a->ok = false;
    return false;
  }
  *out = v->i;
  return true;
}

/* An int or a list of ints; an int is repeated `rep` times (rep 0: once). */
static int get_ints(Lower *L, BArgs *a, const char *name, int64_t *out,
                    int rep) {
  Value *v = arg(a, name);
  if (!v) return 0;
  if (v->k == V_INT) {
    int n = rep ? rep : 1;
    for (int i = 0; i < n; i++) out[i] = v->i;
    return n;
  }
  if (v->k == V_LIST && v->n <= IR_MAX_RANK * 2) {
    for (int i = 0; i < v->n; i++) {
      if (v->elems[i]->k != V_INT) goto fail;
      out[i] = v->elems[i]->i;
    }
    if (rep && v->n != rep) {
      diag_error(SS(L)->d, arg_loc(a, name), "argument '%s' of '%s' needs %d "
                 "values, got %d", name, a->b->name, rep, v->n);
      a->ok = false;
      return -1;
    }
    return v->n;
  }
fail:
  diag_error(SS(L)->d, arg_loc(a, name), "argument '%s' of '%s' must be an "
             "int or a list of ints", name, a->b->name);
  a->ok = false;
  return -1;
}

/* Set attribute `name` from argument `name` when given (kind by value). */
static void attr_num(Lower *L, BArgs *a, IrAttrs *at, const char *name,
                     const char *attr, bool as_int) {
  if (!arg(a, name)) return;
  if (as_int) {
    int64_t i;
    if (get_int(L, a, name, &i)) ir_attr_set_int(L->m, at, attr, i);
  } else {
    double f;
    if (get_float(L, a, name, &f)) ir_attr_set_float(L->m, at, attr, f);
  }
}

static Value *build1(Lower *L, BArgs *a, IrOp op, Value *x, const char *xn,
                     const IrAttrs *at) {
  if (!a->ok || x->k == V_POISON) return sema_poison(SS(L));
  AstNode *nd = arg_node(a, xn);
  return sema_build(L, op, 1, &x, &nd, at, NULL, a->call->loc);
}

/* A shape from a list value: sizes with the symbols of bound dimension
** variables; one -1 is allowed when numel is given (>= 0). */
static bool shape_of(Lower *L, BArgs *a, const char *name, DType dt,
                     int64_t numel, IrType *out) {
  Value *v = arg(a, name);
  SrcLoc loc = arg_loc(a, name);
  if (v && v->k == V_TENSOR) {
    diag_error(SS(L)->d, loc, "a shape must be a list of compile-time ints");
    return false;
  }
  if (v && v->k == V_LIST && v->n == 1 && v->elems[0]->k == V_LIST)
    v = v->elems[0];
  if (!v || (v->k != V_LIST && v->k != V_INT)) {
    diag_error(SS(L)->d, loc, "a shape must be a list of compile-time ints");
    return false;
  }
  int n = v->k == V_INT ? 1 : v->n;
  if (n > IR_MAX_RANK) {
    diag_error(SS(L)->d, loc, "rank %d exceeds the maximum of %d", n,
               IR_MAX_RANK);
    return false;
  }
  memset(out, 0, sizeof *out);
  out->dtype = dt;
  out->rank = n;
  int infer = -1;
  int64_t prod = 1;
  for (int i = 0; i < n; i++) {
    Value *e = v->k == V_INT ? v : v->elems[i];
    out->sym[i] = IR_NO_SYM;
    if (e->k != V_INT || (e->i < 0 && !(e->i == -1 && numel >= 0))) {
      diag_error(SS(L)->d, loc, "a shape must be a list of compile-time "
                 "ints%s", numel >= 0 ? " (one may be -1)" : "");
      return false;
    }
    if (e->i == -1) {
      if (infer >= 0) {
        diag_error(SS(L)->d, loc, "only one dimension may be -1");
        return false;
      }
      infer = i;
      continue;
    }
    out->dim[i] = e->i;
    out->sym[i] = (int16_t)e->sym;
    prod *= e->i;
  }
  if (infer >= 0) {
    if (prod == 0 || numel % prod) {
      diag_error(SS(L)->d, loc, "cannot infer the -1 dimension: %" PRId64
                 " elements do not divide by %" PRId64, numel, prod);
      return false;
    }
    out->dim[infer] = numel / prod;
  }
  return true;
}

/* --------------------------------------------------- elementwise */

static bool fold_unary(IrOp op, double x, double *r) {
  switch (op) {
  case IR_OP_NEG: *r = -x; return true;
  case IR_OP_EXP: *r = exp(x); return true;
  case IR_OP_LOG: *r = log(x); return true;
  case IR_OP_SQRT: *r = sqrt(x); return true;
  case IR_OP_RSQRT: *r = 1 / sqrt(x); return true;
  case IR_OP_ABS: *r = fabs(x); return true;
  case IR_OP_SIN: *r = sin(x); return true;
  case IR_OP_COS: *r = cos(x); return true;
  case IR_OP_TANH: *r = tanh(x); return true;
  case IR_OP_SIGMOID: *r = 1 / (1 + exp(-x)); return true;
  case IR_OP_ERF: *r = erf(x); return true;
  default: return false;
  }
}

static Value *b_unary(Lower *L, BArgs *a) {
  Value *x = arg(a, "x");
  double r;
  if (sema_is_num(x) && a->np == 1 && fold_unary(a->b->op, sema_num(x), &r))
    return sema_float(SS(L), r);
  x = targ(L, a, "x", DT_F32);
  IrAttrs at = {0};
  for (int i = 1; i < a->np; i++) {
    const char *nm = a->names[i];
    if (!a->v[i]) continue;
    if (!strcmp(nm, "axis"))
      attr_num(L, a, &at, nm, "axis", true);
    else if (!strcmp(nm, "min") || !strcmp(nm, "lo"))
      attr_num(L, a, &at, nm, "lo", false);
    else if (!strcmp(nm, "max") || !strcmp(nm, "hi"))
      attr_num(L, a, &at, nm, "hi", false);
    else
      attr_num(L, a, &at, nm, nm, false);
  }
  return build1(L, a, a->b->op, x, "x", &at);
}

static Value *b_where(Lower *L, BArgs *a) {
  Value *c = targ(L, a, "c", DT_BOOL);
  Value *x = arg(a, "a"), *y = arg(a, "b");
  DType dt = x->k == V_TENSOR ? x->t->type.dtype
             : y->k == V_TENSOR ? y->t->type.dtype
                                : DT_F32;
  x = targ(L, a, "a", dt);
  y = targ(L, a, "b", dt);
  if (!a->ok) return sema_poison(SS(L));
  Value *v[3] = {c, x, y};
  AstNode *n[3] = {a->n[0], a->n[1], a->n[2]};
  return sema_build(L, IR_OP_WHERE, 3, v, n, NULL, NULL, a->call->loc);
}

/* ------------------------------------------------------ reductions */

static Value *reduce(Lower *L, BArgs *a, IrOp op) {
  Value *x = targ(L, a, "x", DT_F32);
  IrAttrs at = {0};
  int64_t axes[IR_MAX_RANK * 2];
  int n = get_ints(L, a, "axis", axes, 0);
  bool kd;
  if (op == IR_OP_ARGMAX) {
    if (n > 1) return bad(L, a, arg_loc(a, "axis"), "%s takes one axis%s", "");
    if (n == 1) ir_attr_set_int(L->m, &at, "axis", axes[0]);
  } else if (n > 0) {
    ir_attr_set_ints(L->m, &at, "axes", n, axes);
  }
  if (get_bool(L, a, "keepdims", &kd)) ir_attr_set_bool(L->m, &at, "keepdims", kd);
  attr_num(L, a, &at, "correction", "correction", true);
  return build1(L, a, op, x, "x", &at);
}

static Value *b_reduce(Lower *L, BArgs *a) { return reduce(L, a, a->b->op); }

/* min/max: two operands -> elementwise, one -> reduction. */
static Value *b_minmax(Lower *L, BArgs *a) {
  bool is_max = a->b->op == IR_OP_MAX;
  Value *x = arg(a, "x"), *y = arg(a, "y");
  if (!y) return reduce(L, a, a->b->op);
  if (arg(a, "axis") || arg(a, "keepdims"))
    return bad(L, a, a->call->loc, "%s of two operands takes no axis%s", "");
  if (sema_is_num(x) && sema_is_num(y)) {
    double p = sema_num(x), q = sema_num(y);
    bool first = is_max ? p >= q : p <= q;
    return first ? x : y;
  }
  DType dt = x->k == V_TENSOR ? x->t->type.dtype : y->t->type.dtype;
  x = targ(L, a, "x", dt);
  y = targ(L, a, "y", dt);
  if (!a->ok) return sema_poison(SS(L));
  Value *v[2] = {x, y};
  AstNode *n[2] = {a->n[0], a->n[1]};
  return sema_build(L, is_max ? IR_OP_MAXIMUM : IR_OP_MINIMUM, 2, v, n, NULL,
                    NULL, a->call->loc);
}

static Value *b_softmax(Lower *L, BArgs *a) {
  Value *x = targ(L, a, "x", DT_F32);
  IrAttrs at = {0};
  attr_num(L, a, &at, "axis", "axis", true);
  return build1(L, a, a->b->op, x, "x", &at);
}

/* ------------------------------------------------------------ shape */

static Value *b_reshape(Lower *L, BArgs *a) {
  Value *x = targ(L, a, "x", DT_F32);
  if (!a->ok || x->k == V_POISON) return sema_poison(SS(L));
  IrType t;
  if (!shape_of(L, a, "shape", x->t->type.dtype, ir_type_numel(&x->t->type),
                &t))
    return sema_poison(SS(L));
  AstNode *n = a->n[0];
  return sema_build(L, IR_OP_RESHAPE, 1, &x, &n, NULL, &t, a->call->loc);
}

static Value *b_broadcast(Lower *L, BArgs *a) {
  Value *x = targ(L, a, "x", DT_F32);
  if (!a->ok || x->k == V_POISON) return sema_poison(SS(L));
  IrType t;
  if (!shape_of(L, a, "shape", x->t->type.dtype, -1, &t))
    return sema_poison(SS(L));
  AstNode *n = a->n[0];
  return sema_build(L, IR_OP_BROADCAST, 1, &x, &n, NULL, &t, a->call->loc);
}

static Value *b_transpose(Lower *L, BArgs *a) {
  Value *x = targ(L, a, "x", DT_F32);
  if (!a->ok || x->k == V_POISON) return sema_poison(SS(L));
  int r = x->t->type.rank;
  int64_t p = -2, q = -1;
  get_int(L, a, "a", &p);
  get_int(L, a, "b", &q);
  if (arg(a, "a") && !arg(a, "b"))
    return bad(L, a, a->call->loc, "%s takes no axis or two axes%s", "");
  int pa, qa;
  if (r < 2 && !arg(a, "a"))
    return bad(L, a, arg_loc(a, "x"), "%s needs a tensor of rank >= 2%s", "");
  if (!ir_axis(p, r, &pa) || !ir_axis(q, r, &qa))
    return bad(L, a, a->call->loc, "%s: axis out of range%s", "");
  int64_t perm[IR_MAX_RANK];
  for (int i = 0; i < r; i++) perm[i] = i;
  perm[pa] = qa;
  perm[qa] = pa;
  IrAttrs at = {0};
  ir_attr_set_ints(L->m, &at, "perm", r, perm);
  return build1(L, a, IR_OP_TRANSPOSE, x, "x", &at);
}

static Value *b_permute(Lower *L, BArgs *a) {
  Value *x = targ(L, a, "x", DT_F32);
  int64_t perm[IR_MAX_RANK * 2];
  int n = get_ints(L, a, "perm", perm, 0);
  if (n < 0) return sema_poison(SS(L));
  IrAttrs at = {0};
  ir_attr_set_ints(L->m, &at, "perm", n, perm);
  return build1(L, a, IR_OP_TRANSPOSE, x, "x", &at);
}

/* concat/stack: a list of tensors. */
static Value *b_join(Lower *L, BArgs *a) {
  Value *l = arg(a, "xs");
  if (l->k != V_LIST || l->n == 0 || l->n > 16)
    return bad(L, a, arg_loc(a, "xs"), "%s takes a list of 1 to 16 tensors%s",
               "");
  AstNode *ln = arg_node(a, "xs");
  AstNode *nodes[16];
  DType dt = DT_F32;
  for (int i = 0; i < l->n; i++)
    if (l->elems[i]->k == V_TENSOR) dt = l->elems[i]->t->type.dtype;
  Value *vals[16];
  for (int i = 0; i < l->n; i++) {
    nodes[i] = ln && ln->kind == AST_LIST && i < ln->list.n ? ln->list.v[i] : ln;
    vals[i] = sema_as_tensor(L, l->elems[i], dt, nodes[i] ? nodes[i]->loc
                                                          : a->call->loc);
    if (vals[i]->k == V_POISON) return vals[i];
  }
  int64_t axis = 0;
  get_int(L, a, "axis", &axis);
  if (!a->ok) return sema_poison(SS(L));
  IrAttrs at = {0};
  ir_attr_set_int(L->m, &at, "axis", axis);
  return sema_build(L, a->b->op, l->n, vals, nodes, &at, NULL, a->call->loc);
}

static Value *slice1(Lower *L, Value *x, AstNode *xn, int axis, int64_t s,
                     int64_t e, int64_t step, SrcLoc loc) {
  IrAttrs at = {0};
  ir_attr_set_int(L->m, &at, "axis", axis);
  ir_attr_set_int(L->m, &at, "start", s);
  ir_attr_set_int(L->m, &at, "end", e);
  if (step != 1) ir_attr_set_int(L->m, &at, "step", step);
  return sema_build(L, IR_OP_SLICE, 1, &x, &xn, &at, NULL, loc);
}

static Value *b_split(Lower *L, BArgs *a) {
  Value *x = targ(L, a, "x", DT_F32);
  int64_t axis = 0;
  get_int(L, a, "axis", &axis);
  if (!a->ok || x->k == V_POISON) return sema_poison(SS(L));
  int ax;
  const IrType *t = &x->t->type;
  if (!ir_axis(axis, t->rank, &ax))
    return bad(L, a, arg_loc(a, "axis"), "%s: axis out of range%s", "");
  int64_t size = t->dim[ax], sizes[64];
  Value *p = arg(a, "parts");
  int n;
  if (p->k == V_INT) {
    if (p->i <= 0 || p->i > 64)
      return bad(L, a, arg_loc(a, "parts"), "%s: the number of parts must be "
                 "between 1 and 64%s", "");
    if (size % p->i) {
      diag_error(SS(L)->d, arg_loc(a, "parts"), "split: %" PRId64 " (axis %d "
                 "of %s) does not divide into %" PRId64 " equal parts", size,
                 ax, sema_type_str(L, t), p->i);
      return sema_poison(SS(L));
    }
    n = (int)p->i;
    for (int i = 0; i < n; i++) sizes[i] = size / n;
  } else {
    n = get_ints(L, a, "parts", sizes, 0);
    if (n <= 0 || n > 64) return sema_poison(SS(L));
    int64_t tot = 0;
    for (int i = 0; i < n; i++) tot += sizes[i];
    if (tot != size) {
      diag_error(SS(L)->d, arg_loc(a, "parts"), "split: sizes add up to %"
                 PRId64 " but axis %d of %s is %" PRId64, tot, ax,
                 sema_type_str(L, t), size);
      return sema_poison(SS(L));
    }
  }
  Value *l = sema_list(SS(L), n, true);
  int64_t s = 0;
  for (int i = 0; i < n; i++) {
    l->elems[i] = slice1(L, x, a->n[0], ax, s, s + sizes[i], 1, a->call->loc);
    s += sizes[i];
  }
  return l;
}

static Value *b_slice(Lower *L, BArgs *a) {
  Value *x = targ(L, a, "x", DT_F32);
  int64_t axis = 0, s = 0, e = INT64_MAX, step = 1;
  get_int(L, a, "axis", &axis);
  get_int(L, a, "start", &s);
  get_int(L, a, "end", &e);
  get_int(L, a, "step", &step);
  if (!a->ok || x->k == V_POISON) return sema_poison(SS(L));
  int ax;
  if (!ir_axis(axis, x->t->type.rank, &ax))
    return bad(L, a, arg_loc(a, "axis"), "%s: axis out of range%s", "");
  int64_t size = x->t->type.dim[ax];
  if (s < 0) s += size;
  if (e == INT64_MAX) e = size;
  if (e < 0) e += size;
  return slice1(L, x, a->n[0], ax, s, e, step, a->call->loc);
}

static Value *b_pad(Lower *L, BArgs *a) {
  Value *x = targ(L, a, "x", DT_F32);
  int64_t pads[IR_MAX_RANK * 2];
  int n = get_ints(L, a, "pads", pads, 0);
  if (!a->ok || n < 0 || x->k == V_POISON) return sema_poison(SS(L));
  int r = x->t->type.rank;
  if (n % 2 || n > 2 * r)
    return bad(L, a, arg_loc(a, "pads"), "%s needs pairs [lo, hi] for at "
               "most every axis%s", "");
  /* pairs given for the trailing axes, in axis order */
  int64_t full[IR_MAX_RANK * 2] = {0};
  for (int i = 0; i < n; i++) full[2 * r - n + i] = pads[i];
  IrAttrs at = {0};
  ir_attr_set_ints(L->m, &at, "pads", 2 * r, full);
  attr_num(L, a, &at, "value", "value", false);
  return build1(L, a, IR_OP_PAD, x, "x", &at);
}

static Value *b_one_hot(Lower *L, BArgs *a) {
  Value *x = targ(L, a, "x", DT_I32);
  IrAttrs at = {0};
  attr_num(L, a, &at, "classes", "classes", true);
  return build1(L, a, IR_OP_ONE_HOT, x, "x", &at);
}

static Value *b_causal_mask(Lower *L, BArgs *a) {
  Value *t = arg(a, "T");
  if (t->k != V_INT || t->i <= 0)
    return bad(L, a, arg_loc(a, "T"), "%s needs a positive compile-time int%s",
               "");
  IrType ty = ir_type_scalar(DT_F32);
  ty.rank = 2;
  ty.dim[0] = ty.dim[1] = t->i;
  ty.sym[0] = ty.sym[1] = (int16_t)t->sym;
  return sema_build(L, IR_OP_CAUSAL_MASK, 0, NULL, NULL, NULL, &ty,
                    a->call->loc);
}

/* zeros/ones/full/rand: a tensor of the given shape. */
static Value *b_fill(Lower *L, BArgs *a) {
  IrType t;
  if (!shape_of(L, a, "shape", DT_F32, -1, &t)) return sema_poison(SS(L));
  IrAttrs at = {0};
  const char *nm = a->b->name;
  if (!strcmp(nm, "rand")) {
    ir_attr_set_int(L->m, &at, "seed", L->rand_count++);
    return sema_build(L, IR_OP_RAND, 0, NULL, NULL, &at, &t, a->call->loc);
  }
  double v = !strcmp(nm, "ones") ? 1.0 : 0.0;
  if (!strcmp(nm, "full") && !get_float(L, a, "value", &v))
    return sema_poison(SS(L));
  ir_attr_set_float(L->m, &at, "value", v);
  return sema_build(L, IR_OP_CONSTANT, 0, NULL, NULL, &at, &t, a->call->loc);
}

/* ------------------------------------------------ linear algebra */

static Value *b_attention(Lower *L, BArgs *a) {
  Value *v[4] = {targ(L, a, "q", DT_F32), targ(L, a, "k", DT_F32),
                 targ(L, a, "v", DT_F32), NULL};
  int n = 3;
  if (arg(a, "mask")) v[n++] = targ(L, a, "mask", DT_F32);
  IrAttrs at = {0};
  bool c;
  if (get_bool(L, a, "causal", &c) && c) ir_attr_set_bool(L->m, &at, "causal", c);
  attr_num(L, a, &at, "scale", "scale", false);
  if (!a->ok) return sema_poison(SS(L));
  AstNode *nodes[4] = {a->n[0], a->n[1], a->n[2], arg_node(a, "mask")};
  return sema_build(L, IR_OP_ATTENTION, n, v, nodes, &at, NULL, a->call->loc);
}

/* ---------------------------------------------------------- vision */

static int spatial_rank(IrOp op) { return op == IR_OP_CONV1D ? 1 : 2; }

static void ints_attr(Lower *L, BArgs *a, IrAttrs *at, const char *name,
                      int rank) {
  int64_t v[IR_MAX_RANK * 2];
  int n = get_ints(L, a, name, v, rank);
  if (n > 0) ir_attr_set_ints(L->m, at, name, n, v);
}

static Value *b_conv(Lower *L, BArgs *a) {
  IrOp op = a->b->op;
  int sr = spatial_rank(op);
  Value *v[3] = {targ(L, a, "x", DT_F32), targ(L, a, "w", DT_F32), NULL};
  int n = 2;
  if (arg(a, "b")) v[n++] = targ(L, a, "b", DT_F32);
  IrAttrs at = {0};
  ints_attr(L, a, &at, "stride", sr);
  ints_attr(L, a, &at, "padding", sr);
  ints_attr(L, a, &at, "dilation", sr);
  if (op == IR_OP_CONV_TRANSPOSE2D) ints_attr(L, a, &at, "output_padding", sr);
  attr_num(L, a, &at, "groups", "groups", true);
  if (!a->ok) return sema_poison(SS(L));
  AstNode *nodes[3] = {a->n[0], a->n[1], arg_node(a, "b")};
  return sema_build(L, op, n, v, nodes, &at, NULL, a->call->loc);
}

static Value *b_pool(Lower *L, BArgs *a) {
  Value *x = targ(L, a, "x", DT_F32);
  IrAttrs at = {0};
  ints_attr(L, a, &at, "kernel", 2);
  ints_attr(L, a, &at, "stride", 2);
  ints_attr(L, a, &at, "padding", 2);
  ints_attr(L, a, &at, "dilation", 2);
  bool b;
  if (get_bool(L, a, "count_include_pad", &b))
    ir_attr_set_bool(L->m, &at, "count_include_pad", b);
  return build1(L, a, a->b->op, x, "x", &at);
}

static Value *b_upsample(Lower *L, BArgs *a) {
  Value *x = targ(L, a, "x", DT_F32);
  if (!a->ok || x->k == V_POISON) return sema_poison(SS(L));
  IrAttrs at = {0};
  int64_t size[2];
  const IrType *t = &x->t->type;
  Value *sc = arg(a, "scale");
  if (arg(a, "size")) {
    if (get_ints(L, a, "size", size, 2) != 2) return sema_poison(SS(L));
  } else if (sc) {
    double f[2];
    if (sc->k == V_LIST && sc->n == 2 && sema_is_num(sc->elems[0]) &&
        sema_is_num(sc->elems[1])) {
      f[0] = sema_num(sc->elems[0]);
      f[1] = sema_num(sc->elems[1]);
    } else if (sema_is_num(sc)) {
      f[0] = f[1] = sema_num(sc);
    } else {
      return bad(L, a, arg_loc(a, "scale"), "%s: scale must be a number or "
                 "two numbers%s", "");
    }
    if (t->rank != 4)
      return bad(L, a, arg_loc(a, "x"), "%s needs an NCHW tensor%s", "");
    size[0] = (int64_t)floor((double)t->dim[2] * f[0]);
    size[1] = (int64_t)floor((double)t->dim[3] * f[1]);
  } else {
    return bad(L, a, a->call->loc, "%s needs scale: or size:%s", "");
  }
  ir_attr_set_ints(L->m, &at, "size", 2, size);
  bool ac;
  if (get_bool(L, a, "align_corners", &ac))
    ir_attr_set_bool(L->m, &at, "align_corners", ac);
  return build1(L, a, a->b->op, x, "x", &at);
}

static Value *b_pixel(Lower *L, BArgs *a) {
  Value *x = targ(L, a, "x", DT_F32);
  IrAttrs at = {0};
  attr_num(L, a, &at, "r", "r", true);
  return build1(L, a, a->b->op, x, "x", &at);
}

/* ------------------------------------------------- losses, metrics */

static Value *b_loss(Lower *L, BArgs *a) {
  Value *x = targ(L, a, "x", DT_F32);
  Value *y = targ(L, a, "y", DT_F32);
  IrAttrs at = {0};
  for (int i = 2; i < a->np; i++)
    if (a->v[i])
      attr_num(L, a, &at, a->names[i], a->names[i], !strcmp(a->names[i], "k"));
  if (!a->ok) return sema_poison(SS(L));
  Value *v[2] = {x, y};
  AstNode *n[2] = {a->n[0], a->n[1]};
  return sema_build(L, a->b->op, 2, v, n, &at, NULL, a->call->loc);
}

/* ---------------------------------------------- lr schedules (f32[]) */

static Value *ar(Lower *L, AstOp op, Value *x, Value *y, BArgs *a) {
  return sema_binop(L, op, x, y, a->call, a->call, a->call->loc);
}

static Value *num(Lower *L, double v) { return sema_float(L->S, v); }

static Value *fun(Lower *L, IrOp op, Value *x, BArgs *a) {
  if (sema_is_num(x)) {
    double r;
    if (fold_unary(op, sema_num(x), &r)) return sema_float(L->S, r);
    x = sema_as_tensor(L, x, DT_F32, a->call->loc);
  }
  return sema_unop_ir(L, op, x, a->call, a->call->loc);
}

static Value *sel(Lower *L, Value *c, Value *x, Value *y, BArgs *a) {
  if (c->k == V_BOOL) return c->i ? x : y;
  Value *v[3] = {c, sema_as_tensor(L, x, DT_F32, a->call->loc),
                 sema_as_tensor(L, y, DT_F32, a->call->loc)};
  return sema_build(L, IR_OP_WHERE, 3, v, NULL, NULL, NULL, a->call->loc);
}

static Value *clamp01(Lower *L, Value *x, BArgs *a) {
  if (sema_is_num(x)) {
    double v = sema_num(x);
    return num(L, v < 0 ? 0 : v > 1 ? 1 : v);
  }
  IrAttrs at = {0};
  ir_attr_set_float(L->m, &at, "lo", 0.0);
  ir_attr_set_float(L->m, &at, "hi", 1.0);
  return sema_build(L, IR_OP_CLAMP, 1, &x, NULL, &at, NULL, a->call->loc);
}

static Value *sched_arg(Lower *L, BArgs *a, const char *name) {
  Value *v = arg(a, name);
  if (v->k == V_TENSOR || sema_is_num(v)) {
    if (v->k == V_TENSOR) return sema_cast(L, v, DT_F32, arg_loc(a, name));
    return num(L, sema_num(v));
  }
  return bad(L, a, arg_loc(a, name), "%s: '%s' must be a number or a scalar "
             "tensor", name);
}

/* warmup_cosine(step, warmup, total):
**   (step + 1) / warmup                              if step < warmup
**   0.5 * (1 + cos(pi * clamp((step - warmup) / (total - warmup), 0, 1)))
*/
static Value *b_warmup_cosine(Lower *L, BArgs *a) {
  Value *s = sched_arg(L, a, "step"), *w = sched_arg(L, a, "warmup"),
        *t = sched_arg(L, a, "total");
  if (!a->ok) return sema_poison(L->S);
  Value *warm = ar(L, AOP_DIV, ar(L, AOP_ADD, s, num(L, 1), a), w, a);
  Value *den = ar(L, AOP_SUB, t, w, a);
  if (sema_is_num(den) && sema_num(den) <= 0) den = num(L, 1);
  Value *p = clamp01(L, ar(L, AOP_DIV, ar(L, AOP_SUB, s, w, a), den, a), a);
  Value *cosv = fun(L, IR_OP_COS, ar(L, AOP_MUL, num(L, M_PI), p, a), a);
  Value *dec = ar(L, AOP_MUL, num(L, 0.5), ar(L, AOP_ADD, num(L, 1), cosv, a), a);
  return sel(L, ar(L, AOP_LT, s, w, a), warm, dec, a);
}

/* linear_decay(step, total) = clamp(1 - step / total, 0, 1) */
static Value *b_linear_decay(Lower *L, BArgs *a) {
  Value *s = sched_arg(L, a, "step"), *t = sched_arg(L, a, "total");
  if (!a->ok) return sema_poison(L->S);
  return clamp01(L, ar(L, AOP_SUB, num(L, 1), ar(L, AOP_DIV, s, t, a), a), a);
}

/* step_decay(step, every, gamma) = gamma ** floor(step / every) */
static Value *b_step_decay(Lower *L, BArgs *a) {
  Value *s = sched_arg(L, a, "step"), *e = sched_arg(L, a, "every"),
        *g = sched_arg(L, a, "gamma");
  if (!a->ok) return sema_poison(L->S);
  Value *q = ar(L, AOP_DIV, s, e, a);
  if (sema_is_num(q))
    q = num(L, floor(sema_num(q)));
  else /* q >= 0: truncation is floor */
    q = sema_cast(L, sema_cast(L, q, DT_I32, a->call->loc), DT_F32,
                  a->call->loc);
  return ar(L, AOP_POW, g, q, a);
}

/* inverse_sqrt(step, warmup):
**   (step + 1) / warmup  if step < warmup,  else sqrt(warmup / step) */
static Value *b_inverse_sqrt(Lower *L, BArgs *a) {
  Value *s = sched_arg(L, a, "step"), *w = sched_arg(L, a, "warmup");
  if (!a->ok) return sema_poison(L->S);
  Value *warm = ar(L, AOP_DIV, ar(L, AOP_ADD, s, num(L, 1), a), w, a);
  Value *dec = fun(L, IR_OP_SQRT,
                   ar(L, AOP_DIV, w, ar(L, AOP_ADD, s, num(L, 1e-12), a), a), a);
  return sel(L, ar(L, AOP_LT, s, w, a), warm, dec, a);
}

/* ------------------------------------------------------------ table */

#define UN(name, OP) {name, IR_OP_##OP, b_unary, "x!"}

static const Builtin builtins[] = {
    UN("neg", NEG), UN("exp", EXP), UN("log", LOG), UN("sqrt", SQRT),
    UN("rsqrt", RSQRT), UN("abs", ABS), UN("sign", SIGN), UN("sin", SIN),
    UN("cos", COS), UN("erf", ERF),
    {"clamp", IR_OP_CLAMP, b_unary, "x! lo hi min max"},
    {"where", IR_OP_WHERE, b_where, "c! a! b!"},
    {"step", IR_OP_STEP, b_unary, "x! threshold"},
    UN("sigmoid", SIGMOID), UN("tanh", TANH), UN("relu", RELU),
    UN("relu6", RELU6),
    {"leaky_relu", IR_OP_LEAKY_RELU, b_unary, "x! alpha"},
    {"elu", IR_OP_ELU, b_unary, "x! alpha"},
    UN("selu", SELU), UN("gelu", GELU), UN("gelu_tanh", GELU_TANH),
    UN("silu", SILU), UN("mish", MISH),
    {"softplus", IR_OP_SOFTPLUS, b_unary, "x! beta threshold"},
    UN("softsign", SOFTSIGN), UN("hard_sigmoid", HARD_SIGMOID),
    UN("hard_swish", HARD_SWISH),
    {"glu", IR_OP_GLU, b_unary, "x! axis"},
    {"swiglu", IR_OP_SWIGLU, b_unary, "x! axis"},
    {"geglu", IR_OP_GEGLU, b_unary, "x! axis"},
    {"sum", IR_OP_SUM, b_reduce, "x! axis keepdims"},
    {"mean", IR_OP_MEAN, b_reduce, "x! axis keepdims"},
    {"max", IR_OP_MAX, b_minmax, "x! y axis keepdims"},
    {"min", IR_OP_MIN, b_minmax, "x! y axis keepdims"},
    {"logsumexp", IR_OP_LOGSUMEXP, b_reduce, "x! axis keepdims"},
    {"var", IR_OP_VAR, b_reduce, "x! axis keepdims correction"},
    {"argmax", IR_OP_ARGMAX, b_reduce, "x! axis keepdims"},
    {"reshape", IR_OP_RESHAPE, b_reshape, "x! shape!"},
    {"transpose", IR_OP_TRANSPOSE, b_transpose, "x! a b"},
    {"permute", IR_OP_TRANSPOSE, b_permute, "x! perm!"},
    {"broadcast", IR_OP_BROADCAST, b_broadcast, "x! shape!"},
    {"concat", IR_OP_CONCAT, b_join, "xs! axis"},
    {"stack", IR_OP_STACK, b_join, "xs! axis"},
    {"split", IR_OP_SLICE, b_split, "x! parts! axis"},
    {"slice", IR_OP_SLICE, b_slice, "x! axis start end step"},
    {"pad", IR_OP_PAD, b_pad, "x! pads! value"},
    {"one_hot", IR_OP_ONE_HOT, b_one_hot, "x! classes!"},
    {"causal_mask", IR_OP_CAUSAL_MASK, b_causal_mask, "T!"},
    {"rand", IR_OP_RAND, b_fill, "shape!"},
    {"zeros", IR_OP_CONSTANT, b_fill, "shape!"},
    {"ones", IR_OP_CONSTANT, b_fill, "shape!"},
    {"full", IR_OP_CONSTANT, b_fill, "shape! value!"},
    {"softmax", IR_OP_SOFTMAX, b_softmax, "x! axis"},
    {"log_softmax", IR_OP_LOG_SOFTMAX, b_softmax, "x! axis"},
    {"attention", IR_OP_ATTENTION, b_attention, "q! k! v! causal scale mask"},
    {"conv1d", IR_OP_CONV1D, b_conv, "x! w! b stride padding dilation groups"},
    {"conv2d", IR_OP_CONV2D, b_conv, "x! w! b stride padding dilation groups"},
    {"conv_transpose2d", IR_OP_CONV_TRANSPOSE2D, b_conv,
     "x! w! b stride padding dilation groups output_padding"},
    {"max_pool2d", IR_OP_MAX_POOL2D, b_pool, "x! kernel! stride padding dilation"},
    {"avg_pool2d", IR_OP_AVG_POOL2D, b_pool,
     "x! kernel! stride padding count_include_pad"},
    {"upsample_nearest", IR_OP_UPSAMPLE_NEAREST, b_upsample, "x! scale size"},
    {"upsample_bilinear", IR_OP_UPSAMPLE_BILINEAR, b_upsample,
     "x! scale size align_corners"},
    {"pixel_shuffle", IR_OP_PIXEL_SHUFFLE, b_pixel, "x! r!"},
    {"pixel_unshuffle", IR_OP_PIXEL_UNSHUFFLE, b_pixel, "x! r!"},
    {"cross_entropy", IR_OP_CROSS_ENTROPY, b_loss, "x! y! label_smoothing"},
    {"nll", IR_OP_NLL, b_loss, "x! y!"},
    {"bce_with_logits", IR_OP_BCE_WITH_LOGITS, b_loss, "x! y!"},
    {"mse", IR_OP_MSE, b_loss, "x! y!"},
    {"l1", IR_OP_L1, b_loss, "x! y!"},
    {"huber", IR_OP_HUBER, b_loss, "x! y! delta"},
    {"soft_accuracy", IR_OP_SOFT_ACCURACY, b_loss, "x! y!"},
    {"soft_f1", IR_OP_SOFT_F1, b_loss, "x! y!"},
    {"accuracy", IR_OP_ACCURACY, b_loss, "x! y!"},
    {"f1", IR_OP_F1, b_loss, "x! y!"},
    {"top_k", IR_OP_TOP_K, b_loss, "x! y! k"},
    {"warmup_cosine", IR_OP_COUNT, b_warmup_cosine, "step! warmup! total!"},
    {"linear_decay", IR_OP_COUNT, b_linear_decay, "step! total!"},
    {"step_decay", IR_OP_COUNT, b_step_decay, "step! every! gamma!"},
    {"inverse_sqrt", IR_OP_COUNT, b_inverse_sqrt, "step! warmup!"},
};

static const Builtin *find(const char *name) {
  for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
    if (!strcmp(builtins[i].name, name)) return &builtins[i];
  return NULL;
}

bool sema_builtin_exists(const char *name) { return find(name) != NULL; }

static void parse_params(Sema *S, BArgs *a) {
  const char *p = a->b->params;
  while (*p && a->np < MAXP) {
    while (*p == ' ') p++;
    const char *q = p;
    while (*q && *q != ' ' && *q != '!') q++;
    if (q == p) break;
    a->names[a->np] = arena_strndup(S->a, p, (size_t)(q - p));
    a->req[a->np] = *q == '!';
    a->np++;
    p = *q == '!' ? q + 1 : q;
  }
}

static const char *param_list(Sema *S, BArgs *a) {
  char buf[256];
  int n = 0;
  for (int i = 0; i < a->np; i++)
    n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%s", i ? ", " : "",
                  a->names[i]);
  return arena_strdup(S->a, buf);
}

Value *sema_builtin_call(Lower *L, const char *name, AstNode *call,
                         Value **args, int nargs) {
  Sema *S = L->S;
  BArgs a;
  memset(&a, 0, sizeof a);
  a.b = find(name);
  a.call = call;
  a.ok = true;
  NNC_ASSERT(a.b);
  parse_params(S, &a);
  if (nargs < 0) { /* index form: zeros[B, H] */
    if (strcmp(name, "zeros") && strcmp(name, "ones") && strcmp(name, "rand")) {
      diag_error(S->d, call->loc, "'%s' cannot be indexed", name);
      return sema_poison(S);
    }
    a.v[0] = args[0];
    a.n[0] = call;
    return a.b->fn(L, &a);
  }
  int pos = 0;
  for (int i = 0; i < nargs; i++) {
    AstNode *an = call->list.v[i];
    int slot;
    if (an->kind == AST_NAMED_ARG) {
      slot = pidx(&a, an->name);
      if (slot < 0) {
        diag_error(S->d, an->name_loc.file ? an->name_loc : an->loc,
                   "'%s' has no argument named '%s'", name, an->name);
        diag_note(S->d, (SrcLoc){0}, "arguments of '%s': %s", name,
                  param_list(S, &a));
        return sema_poison(S);
      }
      a.n[slot] = an->a;
    } else {
      if (pos >= a.np) {
        diag_error(S->d, an->loc, "'%s' takes at most %d argument%s, got %d",
                   name, a.np, a.np == 1 ? "" : "s", nargs);
        diag_note(S->d, (SrcLoc){0}, "arguments of '%s': %s", name,
                  param_list(S, &a));
        return sema_poison(S);
      }
      slot = pos++;
      a.n[slot] = an;
    }
    if (a.v[slot]) {
      diag_error(S->d, an->loc, "argument '%s' of '%s' given twice",
                 a.names[slot], name);
      return sema_poison(S);
    }
    a.v[slot] = args[i];
  }
  for (int i = 0; i < a.np; i++) {
    if (a.req[i] && !a.v[i]) {
      diag_error(S->d, call->loc, "missing argument '%s' of '%s'", a.names[i],
                 name);
      diag_note(S->d, (SrcLoc){0}, "arguments of '%s': %s", name,
                param_list(S, &a));
      return sema_poison(S);
    }
  }
  return a.b->fn(L, &a);
}
