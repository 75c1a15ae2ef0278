/*
** This file contains the gradient rule of every differentiable op, in one
** table indexed by op (grad_rules[], checked against ops.def by
** tests/unit/test_autodiff.c), for the autodiff pass (autodiff.c).  Every
** rule builds ordinary IR from existing ops (max_pool2d's gradient is an
** op of its own, max_pool2d_grad):
**
**   matmul      dA = dY B^T, dB = A^T dY (batch dims summed back)
**   broadcasting ops: the gradient is summed over the broadcast axes
**               (ad_unbroadcast)
**   conv2d      dx = conv_transpose2d(dy, w); dw = conv2d over the permuted
**               x [C,N,H,W] and dy [O,N,OH,OW] (stride and dilation
**               swapped), one per group
**   conv_transpose2d  dx = conv2d(dy, w); dw like conv2d's, roles swapped
**   max_pool2d  max_pool2d_grad(x, dy): the first maximum of each window
**               (the interpreter's choice) takes the gradient
**   avg_pool2d  conv_transpose2d of dy with a ones kernel over the divisor
**   upsample    dx = Ah^T dy Aw with the interpolation matrices Ah [OH,H],
**               Aw [OW,W] built from iota
**   gather      a one-hot matrix product (scatter-add)
**   max/min reductions: ties share the gradient evenly (torch.amax)
**   relu at 0, abs at 0, step-like kinks: 0 (PyTorch)
**
** Conventions where PyTorch has a choice: maximum/minimum give half to each
** side on ties; clamp passes the gradient where lo <= x <= hi; pow's
** exponent gradient is 0 where the base is 0.
*/
#include <math.h>
#include <string.h>

#include "autodiff_int.h"

/* ------------------------------------------------------------ helpers */

static IrValue *C(Ad *ad, double v, const IrValue *like) {
  return ad_scalar(ad, v, like->type.dtype);
}
static IrValue *mul(Ad *ad, IrValue *a, IrValue *b) { return ad_bin(ad, IR_OP_MUL, a, b); }
static IrValue *add(Ad *ad, IrValue *a, IrValue *b) { return ad_bin(ad, IR_OP_ADD, a, b); }
static IrValue *sub(Ad *ad, IrValue *a, IrValue *b) { return ad_bin(ad, IR_OP_SUB, a, b); }
static IrValue *dvd(Ad *ad, IrValue *a, IrValue *b) { return ad_bin(ad, IR_OP_DIV, a, b); }
static IrValue *mulc(Ad *ad, IrValue *a, double c) { return mul(ad, a, C(ad, c, a)); }
static IrValue *addc(Ad *ad, IrValue *a, double c) { return add(ad, a, C(ad, c, a)); }
/* c - a */
static IrValue *rsubc(Ad *ad, double c, IrValue *a) { return sub(ad, C(ad, c, a), a); }
static IrValue *cmpc(Ad *ad, IrOp op, IrValue *a, double c) {
  return ad_bin(ad, op, a, C(ad, c, a));
}
/* where(c, g, 0) */
static IrValue *mask(Ad *ad, IrValue *c, IrValue *g) {
  return ad_where(ad, c, g, C(ad, 0, g));
}
static IrValue *un(Ad *ad, IrOp op, IrValue *x) { return ad_un(ad, op, x); }
static IrValue *op_a(Ad *ad, IrOp op, IrValue *x, IrAttrs *at) {
  return ad_op(ad, op, 1, &x, at, NULL);
}

static int64_t numel(const IrValue *v) { return ir_type_numel(&v->type); }

/* Int-or-ints attribute as n values. */
static void ivec(const IrNode *n, const char *name, int cnt, int64_t dflt,
                 int64_t *out) {
  const IrAttr *a = ir_attr_get(&n->attrs, name);
  for (int k = 0; k < cnt; k++) out[k] = dflt;
  if (!a) return;
  for (int k = 0; k < cnt; k++)
    out[k] = a->kind == ATTR_INT ? a->i : (k < a->n ? a->ints[k] : dflt);
}

static int axis_of(const IrNode *n, const char *name, int64_t dflt, int rank) {
  int64_t a = ir_attr_int(&n->attrs, name, dflt);
  return (int)(a < 0 ? a + rank : a);
}

/* ---------------------------------------------------- elementwise unary */

/* dx = dy * f'(x): each rule computes f'(x) (or the whole product). */
static bool unary(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  IrValue *x = n->args[0], *y = n->res[0], *g = dy[0], *d = NULL;
  const IrAttrs *at = &n->attrs;
  switch (n->op) {
  case IR_OP_NEG: dx[0] = un(ad, IR_OP_NEG, g); return true;
  case IR_OP_EXP: d = y; break;
  case IR_OP_LOG: dx[0] = dvd(ad, g, x); return true;
  case IR_OP_SQRT: dx[0] = dvd(ad, mulc(ad, g, 0.5), y); return true;
  case IR_OP_RSQRT: d = mulc(ad, dvd(ad, y, x), -0.5); break;
  case IR_OP_ABS: d = un(ad, IR_OP_SIGN, x); break;
  case IR_OP_SIN: d = un(ad, IR_OP_COS, x); break;
  case IR_OP_COS: d = un(ad, IR_OP_NEG, un(ad, IR_OP_SIN, x)); break;
  case IR_OP_ERF:
    d = mulc(ad, un(ad, IR_OP_EXP, un(ad, IR_OP_NEG, mul(ad, x, x))),
             2 / sqrt(M_PI));
    break;
  case IR_OP_SIGMOID: d = mul(ad, y, rsubc(ad, 1, y)); break;
  case IR_OP_TANH: d = rsubc(ad, 1, mul(ad, y, y)); break;
  case IR_OP_RELU: dx[0] = mask(ad, cmpc(ad, IR_OP_GT, x, 0), g); return true;
  case IR_OP_RELU6:
    dx[0] = mask(ad, ad_bin(ad, IR_OP_AND, cmpc(ad, IR_OP_GT, x, 0),
                            cmpc(ad, IR_OP_LT, x, 6)), g);
    return true;
  case IR_OP_LEAKY_RELU:
    dx[0] = ad_where(ad, cmpc(ad, IR_OP_GT, x, 0), g,
                     mulc(ad, g, ir_attr_float(at, "alpha", 0.01)));
    return true;
  case IR_OP_ELU: {
    double al = ir_attr_float(at, "alpha", 1.0);
    dx[0] = ad_where(ad, cmpc(ad, IR_OP_GT, x, 0), g,
                     mul(ad, g, mulc(ad, un(ad, IR_OP_EXP, x), al)));
    return true;
  }
  case IR_OP_SELU: {
    const double al = 1.6732632423543772848170429916717;
    const double sc = 1.0507009873554804934193349852946;
    d = ad_where(ad, cmpc(ad, IR_OP_GT, x, 0), C(ad, sc, x),
                 mulc(ad, un(ad, IR_OP_EXP, x), sc * al));
    break;
  }
  case IR_OP_GELU: {
    IrValue *cdf = mulc(ad, addc(ad, un(ad, IR_OP_ERF, mulc(ad, x, 1 / sqrt(2.0))), 1), 0.5);
    IrValue *pdf = mulc(ad, un(ad, IR_OP_EXP, mulc(ad, mul(ad, x, x), -0.5)),
                        1 / sqrt(2 * M_PI));
    d = add(ad, cdf, mul(ad, x, pdf));
    break;
  }
  case IR_OP_GELU_TANH: {
    double k = sqrt(2 / M_PI), c = 0.044715;
    IrValue *x2 = mul(ad, x, x);
    IrValue *u = mulc(ad, mul(ad, x, addc(ad, mulc(ad, x2, c), 1)), k);
    IrValue *t = un(ad, IR_OP_TANH, u);
    IrValue *du = mulc(ad, addc(ad, mulc(ad, x2, 3 * c), 1), k);
    d = add(ad, mulc(ad, addc(ad, t, 1), 0.5),
            mul(ad, mulc(ad, x, 0.5), mul(ad, rsubc(ad, 1, mul(ad, t, t)), du)));
    break;
  }
  case IR_OP_SILU: {
    IrValue *s = un(ad, IR_OP_SIGMOID, x);
    d = mul(ad, s, addc(ad, mul(ad, x, rsubc(ad, 1, s)), 1));
    break;
  }
  case IR_OP_MISH: {
    IrAttrs sp = {0};
    IrValue *t = un(ad, IR_OP_TANH, op_a(ad, IR_OP_SOFTPLUS, x, &sp));
    IrValue *dsp = ad_where(ad, cmpc(ad, IR_OP_GT, x, 20), C(ad, 1, x),
                            un(ad, IR_OP_SIGMOID, x));
    d = add(ad, t, mul(ad, mul(ad, x, rsubc(ad, 1, mul(ad, t, t))), dsp));
    break;
  }
  case IR_OP_SOFTPLUS: {
    double beta = ir_attr_float(at, "beta", 1), thr = ir_attr_float(at, "threshold", 20);
    IrValue *bx = mulc(ad, x, beta);
    d = ad_where(ad, cmpc(ad, IR_OP_GT, bx, thr), C(ad, 1, x),
                 un(ad, IR_OP_SIGMOID, bx));
    break;
  }
  case IR_OP_SOFTSIGN: {
    IrValue *q = addc(ad, un(ad, IR_OP_ABS, x), 1);
    dx[0] = dvd(ad, g, mul(ad, q, q));
    return true;
  }
  case IR_OP_HARD_SIGMOID:
    d = ad_where(ad, ad_bin(ad, IR_OP_AND, cmpc(ad, IR_OP_GT, x, -3),
                            cmpc(ad, IR_OP_LT, x, 3)),
                 C(ad, 1.0 / 6, x), C(ad, 0, x));
    break;
  case IR_OP_HARD_SWISH:
    d = ad_where(ad, cmpc(ad, IR_OP_LT, x, -3), C(ad, 0, x),
                 ad_where(ad, cmpc(ad, IR_OP_LE, x, 3),
                          addc(ad, mulc(ad, x, 1.0 / 3), 0.5), C(ad, 1, x)));
    break;
  default: return ad_fail(ad, "no unary rule for %s", ir_op_info[n->op].name);
  }
  dx[0] = mul(ad, g, d);
  return true;
}

/* cast: float -> float passes the gradient back in the source dtype. */
static bool grad_cast(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  if (ir_dtype_is_float(n->args[0]->type.dtype) &&
      ir_dtype_is_float(n->res[0]->type.dtype))
    dx[0] = ad_cast(ad, dy[0], n->args[0]->type.dtype);
  return true;
}

/* clamp: the gradient passes where lo <= x <= hi. */
static bool grad_clamp(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  IrValue *x = n->args[0], *c = NULL;
  if (ir_attr_get(&n->attrs, "lo"))
    c = cmpc(ad, IR_OP_GE, x, ir_attr_float(&n->attrs, "lo", 0));
  if (ir_attr_get(&n->attrs, "hi")) {
    IrValue *h = cmpc(ad, IR_OP_LE, x, ir_attr_float(&n->attrs, "hi", 0));
    c = c ? ad_bin(ad, IR_OP_AND, c, h) : h;
  }
  dx[0] = c ? mask(ad, c, dy[0]) : dy[0];
  return true;
}

/* glu / swiglu / geglu: halves a, b of x along axis; dx = concat(da, db). */
static bool grad_glu(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  IrValue *x = n->args[0], *g = dy[0];
  int ax = axis_of(n, "axis", -1, x->type.rank);
  int64_t h = x->type.dim[ax] / 2;
  IrValue *a = ad_slice(ad, x, ax, 0, h, 1), *b = ad_slice(ad, x, ax, h, 2 * h, 1);
  IrValue *da, *db;
  if (n->op == IR_OP_GLU) {
    IrValue *s = un(ad, IR_OP_SIGMOID, b);
    da = mul(ad, g, s);
    db = mul(ad, mul(ad, g, a), mul(ad, s, rsubc(ad, 1, s)));
  } else {
    IrOp f = n->op == IR_OP_SWIGLU ? IR_OP_SILU : IR_OP_GELU;
    IrValue *fa = un(ad, f, a);
    /* f'(a) through the unary rule with a unit gradient */
    IrNode tmp = {.op = f, .nargs = 1, .args = &a, .nres = 1, .res = &fa};
    IrValue *one = ad_const(ad, 1, &a->type), *fp = NULL;
    IrValue *g1[1] = {one};
    if (!unary(ad, &tmp, g1, &fp)) return false;
    da = mul(ad, mul(ad, g, b), fp);
    db = mul(ad, g, fa);
  }
  IrValue *parts[2] = {da, db};
  IrAttrs at = {0};
  ir_attr_set_int(ad->m, &at, "axis", ax);
  dx[0] = ad_op(ad, IR_OP_CONCAT, 2, parts, &at, NULL);
  return true;
}

/* --------------------------------------------------------------- binary */

static bool grad_binary(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  IrValue *a = n->args[0], *b = n->args[1], *g = dy[0], *y = n->res[0];
  IrValue *da = NULL, *db = NULL;
  switch (n->op) {
  case IR_OP_ADD: da = g; db = g; break;
  case IR_OP_SUB: da = g; db = un(ad, IR_OP_NEG, g); break;
  case IR_OP_MUL:
    if (ad_active(ad, a)) da = mul(ad, g, b);
    if (ad_active(ad, b)) db = mul(ad, g, a);
    break;
  case IR_OP_DIV:
    da = dvd(ad, g, b);
    if (ad_active(ad, b)) db = un(ad, IR_OP_NEG, dvd(ad, mul(ad, g, y), b));
    break;
  case IR_OP_POW:
    if (ad_active(ad, a))
      da = mul(ad, g, mul(ad, b, ad_bin(ad, IR_OP_POW, a, addc(ad, b, -1))));
    if (ad_active(ad, b)) {
      IrValue *z = cmpc(ad, IR_OP_EQ, a, 0);
      IrValue *l = mul(ad, y, un(ad, IR_OP_LOG, a));
      db = mul(ad, g, ad_where(ad, z, C(ad, 0, y), l));
    }
    break;
  case IR_OP_MAXIMUM:
  case IR_OP_MINIMUM: {
    IrOp win = n->op == IR_OP_MAXIMUM ? IR_OP_GT : IR_OP_LT;
    IrValue *half = mulc(ad, g, 0.5), *eq = ad_bin(ad, IR_OP_EQ, a, b);
    IrValue *zero = C(ad, 0, g);
    da = ad_where(ad, ad_bin(ad, win, a, b), g, ad_where(ad, eq, half, zero));
    db = ad_where(ad, ad_bin(ad, win, b, a), g, ad_where(ad, eq, half, zero));
    break;
  }
  default: return ad_fail(ad, "no binary rule for %s", ir_op_info[n->op].name);
  }
  if (da && ad_active(ad, a)) {
    if (!ir_shape_eq(&da->type, &y->type)) da = ad_broadcast(ad, da, &y->type);
    dx[0] = ad_unbroadcast(ad, da, &a->type);
  }
  if (db && ad_active(ad, b)) {
    if (!ir_shape_eq(&db->type, &y->type)) db = ad_broadcast(ad, db, &y->type);
    dx[1] = ad_unbroadcast(ad, db, &b->type);
  }
  return true;
}

static bool grad_where(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  IrValue *c = n->args[0], *g = dy[0], *z = C(ad, 0, g);
  const IrType *yt = &n->res[0]->type;
  if (ad_active(ad, n->args[1])) {
    IrValue *d = ad_where(ad, c, g, z);
    if (!ir_shape_eq(&d->type, yt)) d = ad_broadcast(ad, d, yt);
    dx[1] = ad_unbroadcast(ad, d, &n->args[1]->type);
  }
  if (ad_active(ad, n->args[2])) {
    IrValue *d = ad_where(ad, c, z, g);
    if (!ir_shape_eq(&d->type, yt)) d = ad_broadcast(ad, d, yt);
    dx[2] = ad_unbroadcast(ad, d, &n->args[2]->type);
  }
  return true;
}

/* ----------------------------------------------------------- reductions */

/* The reduced axes of n over type t: red[k] set; returns the count of
** reduced elements and fills keep (t with reduced dims 1). */
static int64_t reduced(const IrNode *n, const IrType *t, bool *red, IrType *keep,
                       int64_t *axes, int *nax) {
  const IrAttr *a = ir_attr_get(&n->attrs, "axes");
  for (int k = 0; k < t->rank; k++) red[k] = a == NULL;
  if (a) {
    int m = a->kind == ATTR_INTS ? a->n : 1;
    for (int j = 0; j < m; j++) {
      int64_t v = a->kind == ATTR_INTS ? a->ints[j] : a->i;
      red[v < 0 ? v + t->rank : v] = true;
    }
  }
  *keep = *t;
  int64_t cnt = 1;
  *nax = 0;
  for (int k = 0; k < t->rank; k++)
    if (red[k]) {
      cnt *= t->dim[k];
      keep->dim[k] = 1;
      keep->sym[k] = IR_NO_SYM;
      axes[(*nax)++] = k;
    }
  return cnt;
}

static bool grad_reduce(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  IrValue *x = n->args[0], *y = n->res[0];
  bool red[IR_MAX_RANK];
  IrType kt;
  int64_t axes[IR_MAX_RANK];
  int nax;
  int64_t cnt = reduced(n, &x->type, red, &kt, axes, &nax);
  IrValue *gk = ad_reshape(ad, dy[0], &kt);  /* dy with keepdims */
  IrValue *yk = NULL;
  if (n->op == IR_OP_MAX || n->op == IR_OP_MIN || n->op == IR_OP_LOGSUMEXP)
    yk = ad_reshape(ad, y, &kt);
  switch (n->op) {
  case IR_OP_SUM: dx[0] = ad_broadcast(ad, gk, &x->type); return true;
  case IR_OP_MEAN:
    dx[0] = ad_broadcast(ad, mulc(ad, gk, 1.0 / (double)cnt), &x->type);
    return true;
  case IR_OP_MAX:
  case IR_OP_MIN: {
    IrValue *m = ad_cast(ad, ad_bin(ad, IR_OP_EQ, x, yk), x->type.dtype);
    IrValue *c = ad_sum(ad, m, nax, axes, true);
    dx[0] = mul(ad, m, dvd(ad, gk, c));
    return true;
  }
  case IR_OP_LOGSUMEXP:
    dx[0] = mul(ad, gk, un(ad, IR_OP_EXP, sub(ad, x, yk)));
    return true;
  case IR_OP_VAR: {
    double corr = ir_attr_float(&n->attrs, "correction", 1);
    IrAttrs at = {0};
    ir_attr_set_ints(ad->m, &at, "axes", nax, axes);
    ir_attr_set_bool(ad->m, &at, "keepdims", true);
    IrValue *mu = op_a(ad, IR_OP_MEAN, x, &at);
    double den = fmax(0.0, (double)cnt - corr);
    dx[0] = mul(ad, mulc(ad, sub(ad, x, mu), 2 / den), gk);
    return true;
  }
  default: return ad_fail(ad, "no reduction rule");
  }
}

/* ----------------------------------------------------------- shape ops */

static bool grad_reshape(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  dx[0] = ad_reshape(ad, dy[0], &n->args[0]->type);
  return true;
}

static bool grad_broadcast(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  dx[0] = ad_unbroadcast(ad, dy[0], &n->args[0]->type);
  return true;
}

static bool grad_transpose(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  int r = n->args[0]->type.rank;
  int64_t inv[IR_MAX_RANK];
  const IrAttr *a = ir_attr_get(&n->attrs, "perm");
  for (int k = 0; k < r; k++) {
    int64_t p = a ? a->ints[k] : r - 1 - k;
    if (p < 0) p += r;
    inv[p] = k;
  }
  dx[0] = ad_transpose(ad, dy[0], r, inv);
  return true;
}

static bool grad_concat(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  int ax = axis_of(n, "axis", 0, n->res[0]->type.rank);
  int64_t at = 0;
  for (int j = 0; j < n->nargs; j++) {
    int64_t len = n->args[j]->type.dim[ax];
    if (ad_active(ad, n->args[j])) dx[j] = ad_slice(ad, dy[0], ax, at, at + len, 1);
    at += len;
  }
  return true;
}

/* Python slice bounds (as the interpreter computes them). */
static int64_t slice_bounds(int64_t start, int64_t end, int64_t step,
                            int64_t len, int64_t *first) {
  if (start < 0) start += len;
  if (end < 0) end += len;
  if (step > 0) {
    start = start < 0 ? 0 : start > len ? len : start;
    end = end < 0 ? 0 : end > len ? len : end;
    *first = start;
    return end > start ? (end - start + step - 1) / step : 0;
  }
  start = start < -1 ? -1 : start > len - 1 ? len - 1 : start;
  end = end < -1 ? -1 : end > len - 1 ? len - 1 : end;
  *first = start;
  return start > end ? (start - end - step - 1) / -step : 0;
}

/* The adjoint of a slice: g (cnt positions along axis) placed at
** first + j*step in a zero tensor with len positions. */
static IrValue *unslice(Ad *ad, IrValue *g, int axis, int64_t first,
                        int64_t step, int64_t cnt, int64_t len) {
  int r = g->type.rank;
  NNC_ASSERT(step > 0);
  int64_t span = cnt;
  if (step > 1) {
    IrValue **parts = ARENA_ARRAY(ad->a, IrValue *, step);
    parts[0] = g;
    IrValue *z = ad_const(ad, 0, &g->type);
    for (int64_t s = 1; s < step; s++) parts[s] = z;
    IrAttrs at = {0};
    ir_attr_set_int(ad->m, &at, "axis", axis + 1);
    IrValue *st = ad_op(ad, IR_OP_STACK, (int)step, parts, &at, NULL);
    IrType t = g->type;
    t.dim[axis] = cnt * step;
    t.sym[axis] = IR_NO_SYM;
    g = ad_reshape(ad, st, &t);
    span = cnt * step;
  }
  int64_t pads[2 * IR_MAX_RANK] = {0};
  pads[2 * axis] = first;
  pads[2 * axis + 1] = len - first - span;
  return ad_pad(ad, g, 2 * r, pads);
}

static bool grad_slice(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  IrValue *x = n->args[0];
  int ax = axis_of(n, "axis", 0, x->type.rank);
  int64_t step = ir_attr_int(&n->attrs, "step", 1), first;
  int64_t len = x->type.dim[ax];
  int64_t cnt = slice_bounds(ir_attr_int(&n->attrs, "start", 0),
                             ir_attr_int(&n->attrs, "end", INT64_MAX / 2), step,
                             len, &first);
  if (cnt == 0) {
    dx[0] = ad_const(ad, 0, &x->type);
    return true;
  }
  dx[0] = unslice(ad, dy[0], ax, first, step, cnt, len);
  return true;
}

/* pad's adjoint is the pad with the opposite widths (ad_pad crops the
** negative ones). */
static bool grad_pad(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  const IrAttr *a = ir_attr_get(&n->attrs, "pads");
  int64_t p[2 * IR_MAX_RANK] = {0};
  int cnt = a ? a->n : 0;
  for (int k = 0; k < cnt; k++) p[k] = -a->ints[k];
  dx[0] = ad_pad(ad, dy[0], cnt, p);
  return true;
}

static bool grad_stack(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  int ax = axis_of(n, "axis", 0, n->res[0]->type.rank);
  for (int j = 0; j < n->nargs; j++)
    if (ad_active(ad, n->args[j]))
      dx[j] = ad_reshape(ad, ad_slice(ad, dy[0], ax, j, j + 1, 1), &n->args[j]->type);
  return true;
}

/* gather: table[N, rest] rows by idx; the gradient is the scatter-add
** onehot(idx)^T dy, as a matrix product [N, M] x [M, R]. */
static bool grad_gather(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  IrValue *tab = n->args[0], *idx = n->args[1];
  int64_t N = tab->type.dim[0], M = numel(idx), R = numel(tab) / (N ? N : 1);
  IrAttrs at = {0};
  ir_attr_set_int(ad->m, &at, "classes", N);
  IrValue *oh = ad_cast(ad, op_a(ad, IR_OP_ONE_HOT, idx, &at), tab->type.dtype);
  int64_t d1[2] = {M, N}, d2[2] = {M, R};
  IrType t1 = ir_type_make(tab->type.dtype, 2, d1), t2 = ir_type_make(tab->type.dtype, 2, d2);
  IrValue *ohT = ad_mT(ad, ad_reshape(ad, oh, &t1));
  IrValue *g = ad_reshape(ad, dy[0], &t2);
  dx[0] = ad_reshape(ad, ad_bin(ad, IR_OP_MATMUL, ohT, g), &tab->type);
  return true;
}

/* ------------------------------------------------------- linear algebra */

/* t with the batch shape of the matmul result and the last two dims r, c. */
static bool grad_matmul(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  IrValue *a = n->args[0], *b = n->args[1];
  IrValue *A = a, *B = b;
  if (a->type.rank == 1) {
    int64_t d[2] = {1, a->type.dim[0]};
    IrType t = ir_type_make(a->type.dtype, 2, d);
    A = ad_reshape(ad, a, &t);
  }
  if (b->type.rank == 1) {
    int64_t d[2] = {b->type.dim[0], 1};
    IrType t = ir_type_make(b->type.dtype, 2, d);
    B = ad_reshape(ad, b, &t);
  }
  IrValue *full = ad_bin(ad, IR_OP_MATMUL, A, B);  /* only for its type */
  IrType yt = full->type;
  ir_node_remove(full->def);
  IrValue *G = ad_reshape(ad, dy[0], &yt);
  if (ad_active(ad, a)) {
    IrValue *d = ad_bin(ad, IR_OP_MATMUL, G, ad_mT(ad, B));
    dx[0] = ad_reshape(ad, ad_unbroadcast(ad, d, &A->type), &a->type);
  }
  if (ad_active(ad, b)) {
    IrValue *d = ad_bin(ad, IR_OP_MATMUL, ad_mT(ad, A), G);
    dx[1] = ad_reshape(ad, ad_unbroadcast(ad, d, &B->type), &b->type);
  }
  return true;
}

static bool grad_softmax(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  IrValue *y = n->res[0], *g = dy[0];
  int64_t ax = axis_of(n, "axis", -1, y->type.rank);
  if (n->op == IR_OP_SOFTMAX) {
    IrValue *s = ad_sum(ad, mul(ad, g, y), 1, &ax, true);
    dx[0] = mul(ad, y, sub(ad, g, s));
  } else {
    IrValue *s = ad_sum(ad, g, 1, &ax, true);
    dx[0] = sub(ad, g, mul(ad, un(ad, IR_OP_EXP, y), s));
  }
  return true;
}

/* attention, written out: s = q k^T scale (+ mask, causal), p = softmax(s),
** y = p v.  A fully masked row (0 in the interpreter) gives NaN here. */
static bool grad_attention(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  IrValue *q = n->args[0], *k = n->args[1], *v = n->args[2];
  IrValue *mk = n->nargs > 3 ? n->args[3] : NULL, *g = dy[0];
  int64_t D = q->type.dim[q->type.rank - 1];
  double scale = ir_attr_float(&n->attrs, "scale", 1 / sqrt((double)D));
  IrValue *s = mulc(ad, ad_bin(ad, IR_OP_MATMUL, q, ad_mT(ad, k)), scale);
  if (mk && mk->type.dtype == DT_BOOL)
    s = ad_where(ad, mk, s, C(ad, -INFINITY, s));
  else if (mk)
    s = add(ad, s, mk);
  if (ir_attr_bool(&n->attrs, "causal", false)) {
    int64_t Tq = s->type.dim[s->type.rank - 2], Tk = s->type.dim[s->type.rank - 1];
    int64_t T = Tq > Tk ? Tq : Tk, d[2] = {T, T};
    IrType ct = ir_type_make(s->type.dtype, 2, d);
    IrValue *cm = ad_op(ad, IR_OP_CAUSAL_MASK, 0, NULL, NULL, &ct);
    if (Tq != T) cm = ad_slice(ad, cm, 0, 0, Tq, 1);
    if (Tk != T) cm = ad_slice(ad, cm, 1, 0, Tk, 1);
    s = add(ad, s, cm);
  }
  IrValue *p = un(ad, IR_OP_SOFTMAX, s);
  if (ad_active(ad, v))
    dx[2] = ad_unbroadcast(ad, ad_bin(ad, IR_OP_MATMUL, ad_mT(ad, p), g), &v->type);
  IrValue *dp = ad_bin(ad, IR_OP_MATMUL, g, ad_mT(ad, v));
  int64_t last = -1;
  IrValue *ds = mul(ad, p, sub(ad, dp, ad_sum(ad, mul(ad, dp, p), 1, &last, true)));
  if (ad_active(ad, q))
    dx[0] = ad_unbroadcast(ad, mulc(ad, ad_bin(ad, IR_OP_MATMUL, ds, k), scale), &q->type);
  if (ad_active(ad, k))
    dx[1] = ad_unbroadcast(ad, mulc(ad, ad_bin(ad, IR_OP_MATMUL, ad_mT(ad, ds), q), scale),
                           &k->type);
  if (mk && ad_active(ad, mk)) dx[3] = ad_unbroadcast(ad, ds, &mk->type);
  return true;
}

/* -------------------------------------------------------------- vision */

typedef struct Geo {
  int64_t s[2], p[2], d[2], groups;
} Geo;

static IrAttrs conv_attrs(Ad *ad, const int64_t *s, const int64_t *p,
                          const int64_t *d, int64_t groups, const int64_t *op) {
  IrAttrs at = {0};
  ir_attr_set_ints(ad->m, &at, "stride", 2, s);
  ir_attr_set_ints(ad->m, &at, "padding", 2, p);
  ir_attr_set_ints(ad->m, &at, "dilation", 2, d);
  if (groups != 1) ir_attr_set_int(ad->m, &at, "groups", groups);
  if (op && (op[0] || op[1])) ir_attr_set_ints(ad->m, &at, "output_padding", 2, op);
  return at;
}

static IrValue *conv(Ad *ad, IrOp op, IrValue *x, IrValue *w, IrAttrs *at) {
  IrValue *a[2] = {x, w};
  return ad_op(ad, op, 2, a, at, NULL);
}

static IrValue *perm0132(Ad *ad, IrValue *x) { /* swap axes 0 and 1 */
  int64_t p[4] = {1, 0, 2, 3};
  return ad_transpose(ad, x, 4, p);
}

/* Crop (or keep) the last two dims of x to h, w. */
static IrValue *crop2(Ad *ad, IrValue *x, int64_t h, int64_t w) {
  int r = x->type.rank;
  if (x->type.dim[r - 2] != h) x = ad_slice(ad, x, r - 2, 0, h, 1);
  if (x->type.dim[r - 1] != w) x = ad_slice(ad, x, r - 1, 0, w, 1);
  return x;
}

/* The gradient of a correlation between "input" a [N,A,..] and "output"
** b [N,B,..] whose taps are a[oh*s - p + kh*d] against b[oh]:
** [B, A, KH, KW] per group, concatenated. */
static IrValue *tap_grad(Ad *ad, IrValue *a, IrValue *b, const Geo *g,
                         int64_t KH, int64_t KW) {
  int64_t A = a->type.dim[1] / g->groups, B = b->type.dim[1] / g->groups;
  IrValue **parts = ARENA_ARRAY(ad->a, IrValue *, g->groups);
  for (int64_t gi = 0; gi < g->groups; gi++) {
    IrValue *ag = g->groups > 1 ? ad_slice(ad, a, 1, gi * A, (gi + 1) * A, 1) : a;
    IrValue *bg = g->groups > 1 ? ad_slice(ad, b, 1, gi * B, (gi + 1) * B, 1) : b;
    IrAttrs at = conv_attrs(ad, g->d, g->p, g->s, 1, NULL);
    IrValue *r = conv(ad, IR_OP_CONV2D, perm0132(ad, ag), perm0132(ad, bg), &at);
    parts[gi] = perm0132(ad, crop2(ad, r, KH, KW)); /* [B, A, KH, KW] */
  }
  if (g->groups == 1) return parts[0];
  IrAttrs at = {0};
  ir_attr_set_int(ad->m, &at, "axis", 0);
  return ad_op(ad, IR_OP_CONCAT, (int)g->groups, parts, &at, NULL);
}

static void read_geo(const IrNode *n, int sr, Geo *g) {
  int64_t s[2], p[2], d[2];
  ivec(n, "stride", sr, 1, s);
  ivec(n, "padding", sr, 0, p);
  ivec(n, "dilation", sr, 1, d);
  g->s[0] = sr == 2 ? s[0] : 1;
  g->p[0] = sr == 2 ? p[0] : 0;
  g->d[0] = sr == 2 ? d[0] : 1;
  g->s[1] = s[sr - 1];
  g->p[1] = p[sr - 1];
  g->d[1] = d[sr - 1];
  g->groups = ir_attr_int(&n->attrs, "groups", 1);
}

/* x as rank 4: [N,C,L] -> [N,C,1,L]. */
static IrValue *to4(Ad *ad, IrValue *x) {
  if (x->type.rank == 4) return x;
  IrType t = x->type;
  t.rank = 4;
  t.dim[3] = t.dim[2];
  t.sym[3] = t.sym[2];
  t.dim[2] = 1;
  t.sym[2] = IR_NO_SYM;
  return ad_reshape(ad, x, &t);
}

/* conv1d / conv2d (conv1d as conv2d with height 1). */
static bool grad_conv(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  Geo g;
  int sr = n->op == IR_OP_CONV1D ? 1 : 2;
  read_geo(n, sr, &g);
  IrValue *x = to4(ad, n->args[0]), *w = to4(ad, n->args[1]), *gy = to4(ad, dy[0]);
  int64_t H = x->type.dim[2], W = x->type.dim[3], KH = w->type.dim[2], KW = w->type.dim[3];
  int64_t OH = gy->type.dim[2], OW = gy->type.dim[3];
  if (ad_active(ad, n->args[0])) {
    int64_t op[2] = {H - ((OH - 1) * g.s[0] - 2 * g.p[0] + g.d[0] * (KH - 1) + 1),
                     W - ((OW - 1) * g.s[1] - 2 * g.p[1] + g.d[1] * (KW - 1) + 1)};
    IrAttrs at = conv_attrs(ad, g.s, g.p, g.d, g.groups, op);
    IrValue *r = conv(ad, IR_OP_CONV_TRANSPOSE2D, gy, w, &at);
    dx[0] = ad_reshape(ad, r, &n->args[0]->type);
  }
  if (ad_active(ad, n->args[1]))
    dx[1] = ad_reshape(ad, tap_grad(ad, x, gy, &g, KH, KW), &n->args[1]->type);
  if (n->nargs > 2 && ad_active(ad, n->args[2])) {
    int64_t ax[3] = {0, 2, 3};
    dx[2] = ad_sum(ad, gy, 3, ax, false);
  }
  return true;
}

static bool grad_conv_transpose(Ad *ad, const IrNode *n, IrValue *const *dy,
                                IrValue **dx) {
  Geo g;
  read_geo(n, 2, &g);
  IrValue *x = n->args[0], *w = n->args[1], *gy = dy[0];
  int64_t KH = w->type.dim[2], KW = w->type.dim[3];
  if (ad_active(ad, x)) {
    IrAttrs at = conv_attrs(ad, g.s, g.p, g.d, g.groups, NULL);
    IrValue *r = conv(ad, IR_OP_CONV2D, gy, w, &at);
    dx[0] = crop2(ad, r, x->type.dim[2], x->type.dim[3]);
  }
  if (ad_active(ad, w)) /* taps dy[ih*s - p + kh*d] against x[ih] */
    dx[1] = tap_grad(ad, gy, x, &g, KH, KW); /* [C, O/g, KH, KW] */
  if (n->nargs > 2 && ad_active(ad, n->args[2])) {
    int64_t ax[3] = {0, 2, 3};
    dx[2] = ad_sum(ad, gy, 3, ax, false);
  }
  return true;
}

/* Pool attributes: kernel, stride (= kernel), padding, dilation. */
static void pool_geo(const IrNode *n, int64_t *k, int64_t *s, int64_t *p, int64_t *d) {
  ivec(n, "kernel", 2, 1, k);
  ivec(n, "stride", 2, 0, s);
  if (!ir_attr_get(&n->attrs, "stride")) {
    s[0] = k[0];
    s[1] = k[1];
  }
  ivec(n, "padding", 2, 0, p);
  ivec(n, "dilation", 2, 1, d);
  if (n->op != IR_OP_MAX_POOL2D) d[0] = d[1] = 1;
}

/* max_pool2d: dx = max_pool2d_grad(x, dy) with the forward's attributes;
** the first maximum of each window in tap order takes its dy (the
** interpreter's argmax; none where the maximum is NaN). */
static bool grad_max_pool(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  IrValue *a[2] = {n->args[0], dy[0]};
  dx[0] = ad_op(ad, IR_OP_MAX_POOL2D_GRAD, 2, a, &n->attrs, NULL);
  return true;
}

/* avg_pool2d: dy (over the divisor) spread back by conv_transpose2d with a
** ones kernel; planes folded into the batch. */
static bool grad_avg_pool(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  IrValue *x = n->args[0], *y = n->res[0];
  int r = x->type.rank;
  int64_t k[2], s[2], p[2], d[2], P = numel(y) / (y->type.dim[r - 2] * y->type.dim[r - 1]);
  pool_geo(n, k, s, p, d);
  int64_t H = x->type.dim[r - 2], W = x->type.dim[r - 1];
  int64_t OH = y->type.dim[r - 2], OW = y->type.dim[r - 1];
  DType dt = x->type.dtype;
  int64_t d4[4] = {P, 1, OH, OW}, k4[4] = {1, 1, k[0], k[1]};
  IrType t4 = ir_type_make(dt, 4, d4), kt = ir_type_make(dt, 4, k4);
  IrValue *g = ad_reshape(ad, dy[0], &t4), *ones = ad_const(ad, 1, &kt);
  if (ir_attr_bool(&n->attrs, "count_include_pad", true)) {
    g = mulc(ad, g, 1.0 / (double)(k[0] * k[1]));
  } else {
    int64_t i4[4] = {1, 1, H, W};
    IrType it = ir_type_make(dt, 4, i4);
    IrAttrs at = conv_attrs(ad, s, p, d, 1, NULL);
    g = dvd(ad, g, conv(ad, IR_OP_CONV2D, ad_const(ad, 1, &it), ones, &at));
  }
  int64_t op[2] = {H - ((OH - 1) * s[0] - 2 * p[0] + k[0]),
                   W - ((OW - 1) * s[1] - 2 * p[1] + k[1])};
  IrAttrs at = conv_attrs(ad, s, p, d, 1, op);
  dx[0] = ad_reshape(ad, conv(ad, IR_OP_CONV_TRANSPOSE2D, g, ones, &at), &x->type);
  return true;
}

/* The interpolation matrix A [out, in] of one axis: y = A x. */
static IrValue *interp_matrix(Ad *ad, bool nearest, bool ac, int64_t in,
                              int64_t out, DType dt) {
  int64_t dc[2] = {out, 1}, dr[2] = {1, in};
  IrType tci = ir_type_make(DT_I32, 2, dc), tri = ir_type_make(DT_I32, 2, dr);
  IrAttrs a0 = {0}, a1 = {0};
  ir_attr_set_int(ad->m, &a1, "axis", 1);
  IrValue *dst = ad_op(ad, IR_OP_IOTA, 0, NULL, &a0, &tci);
  IrValue *col = ad_op(ad, IR_OP_IOTA, 0, NULL, &a1, &tri);
  IrValue *lastc = C(ad, (double)(in - 1), dst);
  if (nearest) {
    IrValue *src = dvd(ad, mul(ad, dst, C(ad, (double)in, dst)), C(ad, (double)out, dst));
    src = ad_bin(ad, IR_OP_MINIMUM, src, lastc);
    return ad_cast(ad, ad_bin(ad, IR_OP_EQ, src, col), dt);
  }
  IrValue *fd = ad_cast(ad, dst, dt), *src;
  if (ac) {
    double sc = out > 1 ? (double)(in - 1) / (double)(out - 1) : 0;
    src = mulc(ad, fd, sc);
  } else {
    src = addc(ad, mulc(ad, addc(ad, fd, 0.5), (double)in / (double)out), -0.5);
    src = ad_bin(ad, IR_OP_MAXIMUM, src, C(ad, 0, src));
  }
  IrValue *i0 = ad_bin(ad, IR_OP_MINIMUM, ad_cast(ad, src, DT_I32), lastc);
  IrValue *i1 = ad_bin(ad, IR_OP_MINIMUM, add(ad, i0, C(ad, 1, i0)), lastc);
  IrValue *lam = sub(ad, src, ad_cast(ad, i0, dt));
  IrValue *e0 = ad_cast(ad, ad_bin(ad, IR_OP_EQ, i0, col), dt);
  IrValue *e1 = ad_cast(ad, ad_bin(ad, IR_OP_EQ, i1, col), dt);
  return add(ad, mul(ad, e0, rsubc(ad, 1, lam)), mul(ad, e1, lam));
}

static bool grad_upsample(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  IrValue *x = n->args[0], *y = n->res[0];
  int r = x->type.rank;
  bool nearest = n->op == IR_OP_UPSAMPLE_NEAREST;
  bool ac = ir_attr_bool(&n->attrs, "align_corners", false);
  DType dt = x->type.dtype;
  IrValue *Ah = interp_matrix(ad, nearest, ac, x->type.dim[r - 2], y->type.dim[r - 2], dt);
  IrValue *Aw = interp_matrix(ad, nearest, ac, x->type.dim[r - 1], y->type.dim[r - 1], dt);
  IrValue *t = ad_bin(ad, IR_OP_MATMUL, ad_mT(ad, Ah), dy[0]);
  dx[0] = ad_bin(ad, IR_OP_MATMUL, t, Aw);
  return true;
}

static bool grad_pixel_shuffle(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  IrAttrs at = {0};
  ir_attr_set_int(ad->m, &at, "r", ir_attr_int(&n->attrs, "r", 1));
  IrOp inv = n->op == IR_OP_PIXEL_SHUFFLE ? IR_OP_PIXEL_UNSHUFFLE : IR_OP_PIXEL_SHUFFLE;
  dx[0] = op_a(ad, inv, dy[0], &at);
  return true;
}

/* --------------------------------------------------------------- losses */

/* one_hot(labels) of logits x [..., C] in x's dtype. */
static IrValue *onehot(Ad *ad, IrValue *lab, IrValue *x) {
  IrAttrs at = {0};
  ir_attr_set_int(ad->m, &at, "classes", x->type.dim[x->type.rank - 1]);
  return ad_cast(ad, op_a(ad, IR_OP_ONE_HOT, lab, &at), x->type.dtype);
}

/* g / count as a scalar of x's dtype. */
static IrValue *gscale(Ad *ad, IrValue *g, IrValue *x, int64_t count) {
  return mulc(ad, ad_cast(ad, g, x->type.dtype), 1.0 / (double)count);
}

static bool is_binary_loss(const IrNode *n) {
  const IrType *a = &n->args[0]->type, *b = &n->args[1]->type;
  return a->rank == b->rank && ir_type_numel(a) == ir_type_numel(b);
}

static bool grad_class_loss(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  IrValue *x = n->args[0], *lab = n->args[1];
  int64_t C = x->type.dim[x->type.rank - 1], P = numel(lab);
  IrValue *g = gscale(ad, dy[0], x, P), *oh = onehot(ad, lab, x);
  if (n->op == IR_OP_NLL) {
    dx[0] = un(ad, IR_OP_NEG, mul(ad, oh, g));
    return true;
  }
  double e = ir_attr_float(&n->attrs, "label_smoothing", 0);
  IrValue *p = un(ad, IR_OP_SOFTMAX, x);
  IrValue *tgt = e != 0 ? addc(ad, mulc(ad, oh, 1 - e), e / (double)C) : oh;
  dx[0] = mul(ad, sub(ad, p, tgt), g);
  return true;
}

static bool grad_pointwise_loss(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  IrValue *a = n->args[0], *b = n->args[1];
  IrType shape;
  if (!ir_broadcast(&a->type, &b->type, &shape)) return ad_fail(ad, "loss shapes");
  IrValue *g = gscale(ad, dy[0], a, ir_type_numel(&shape));
  IrValue *d = sub(ad, a, b), *da, *db;
  switch (n->op) {
  case IR_OP_BCE_WITH_LOGITS:
    da = mul(ad, sub(ad, un(ad, IR_OP_SIGMOID, a), b), g);
    db = mul(ad, un(ad, IR_OP_NEG, a), g);
    if (!ir_shape_eq(&db->type, &shape)) db = ad_broadcast(ad, db, &shape);
    break;
  case IR_OP_MSE: da = mul(ad, mulc(ad, d, 2), g); db = un(ad, IR_OP_NEG, da); break;
  case IR_OP_L1: da = mul(ad, un(ad, IR_OP_SIGN, d), g); db = un(ad, IR_OP_NEG, da); break;
  default: {
    double delta = ir_attr_float(&n->attrs, "delta", 1.0);
    IrAttrs at = {0};
    ir_attr_set_float(ad->m, &at, "hi", delta);
    ir_attr_set_float(ad->m, &at, "lo", -delta);
    da = mul(ad, op_a(ad, IR_OP_CLAMP, d, &at), g);
    db = un(ad, IR_OP_NEG, da);
  }
  }
  if (!ir_shape_eq(&da->type, &shape)) da = ad_broadcast(ad, da, &shape);
  if (ad_active(ad, a)) dx[0] = ad_unbroadcast(ad, da, &a->type);
  if (ad_active(ad, b)) dx[1] = ad_unbroadcast(ad, db, &b->type);
  return true;
}

/* soft_accuracy = 1 - mean p_y. */
static bool grad_soft_accuracy(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  IrValue *x = n->args[0], *lab = n->args[1];
  if (is_binary_loss(n)) {
    IrValue *g = gscale(ad, dy[0], x, numel(x)), *p = un(ad, IR_OP_SIGMOID, x);
    if (ad_active(ad, x)) {
      IrValue *t = ad_cast(ad, lab, x->type.dtype);
      IrValue *s = addc(ad, mulc(ad, t, 2), -1);
      dx[0] = un(ad, IR_OP_NEG, mul(ad, mul(ad, s, mul(ad, p, rsubc(ad, 1, p))), g));
    }
    if (ad_active(ad, lab))
      dx[1] = un(ad, IR_OP_NEG, mul(ad, addc(ad, mulc(ad, p, 2), -1), g));
    return true;
  }
  int64_t last = -1;
  IrValue *g = gscale(ad, dy[0], x, numel(lab)), *p = un(ad, IR_OP_SOFTMAX, x);
  IrValue *oh = onehot(ad, lab, x), *py = ad_sum(ad, mul(ad, p, oh), 1, &last, true);
  dx[0] = un(ad, IR_OP_NEG, mul(ad, mul(ad, py, sub(ad, oh, p)), g));
  return true;
}

/* soft_f1 = 1 - F; binary F = 2 tp / (sum p + sum t); macro: the mean over
** classes of 2 tp_c / den_c. */
static bool grad_soft_f1(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx) {
  IrValue *x = n->args[0], *lab = n->args[1], *g = ad_cast(ad, dy[0], x->type.dtype);
  if (is_binary_loss(n)) {
    IrValue *p = un(ad, IR_OP_SIGMOID, x), *t = ad_cast(ad, lab, x->type.dtype);
    int64_t all[IR_MAX_RANK];
    for (int k = 0; k < x->type.rank; k++) all[k] = k;
    int r = x->type.rank;
    IrValue *tp = ad_sum(ad, mul(ad, p, t), r, all, false);
    IrValue *D = add(ad, ad_sum(ad, p, r, all, false), ad_sum(ad, t, r, all, false));
    IrValue *D2 = mul(ad, D, D);
    if (ad_active(ad, x)) {
      IrValue *dp = dvd(ad, sub(ad, mulc(ad, mul(ad, t, D), 2), mulc(ad, tp, 2)), D2);
      dx[0] = un(ad, IR_OP_NEG, mul(ad, mul(ad, dp, mul(ad, p, rsubc(ad, 1, p))), g));
    }
    if (ad_active(ad, lab)) {
      IrValue *dt = dvd(ad, sub(ad, mulc(ad, mul(ad, p, D), 2), mulc(ad, tp, 2)), D2);
      dx[1] = un(ad, IR_OP_NEG, mul(ad, dt, g));
    }
    return true;
  }
  int r = x->type.rank;
  int64_t C = x->type.dim[r - 1], lead[IR_MAX_RANK], last = -1;
  for (int k = 0; k < r - 1; k++) lead[k] = k;
  IrValue *p = un(ad, IR_OP_SOFTMAX, x), *oh = onehot(ad, lab, x);
  IrValue *tp = ad_sum(ad, mul(ad, p, oh), r - 1, lead, false);
  IrValue *den = add(ad, ad_sum(ad, p, r - 1, lead, false), ad_sum(ad, oh, r - 1, lead, false));
  IrValue *num = sub(ad, mul(ad, oh, den), tp); /* [..., C] broadcast */
  IrValue *dldp = mulc(ad, dvd(ad, num, mul(ad, den, den)), -2.0 / (double)C);
  IrValue *s = ad_sum(ad, mul(ad, dldp, p), 1, &last, true);
  dx[0] = mul(ad, mul(ad, p, sub(ad, dldp, s)), g);
  return true;
}

/* ---------------------------------------------------------------- table */

/* ORDER OP: one rule per OPF_DIFF op of ops.def but scan (autodiff.c);
** checked by tests/unit/test_autodiff.c. */
static GradFn *const grad_rules[IR_OP_COUNT] = {
    [IR_OP_NEG] = unary, [IR_OP_EXP] = unary, [IR_OP_LOG] = unary,
    [IR_OP_SQRT] = unary, [IR_OP_RSQRT] = unary, [IR_OP_ABS] = unary,
    [IR_OP_SIN] = unary, [IR_OP_COS] = unary, [IR_OP_ERF] = unary,
    [IR_OP_CAST] = grad_cast, [IR_OP_CLAMP] = grad_clamp,
    [IR_OP_SIGMOID] = unary, [IR_OP_TANH] = unary, [IR_OP_RELU] = unary,
    [IR_OP_RELU6] = unary, [IR_OP_LEAKY_RELU] = unary, [IR_OP_ELU] = unary,
    [IR_OP_SELU] = unary, [IR_OP_GELU] = unary, [IR_OP_GELU_TANH] = unary,
    [IR_OP_SILU] = unary, [IR_OP_MISH] = unary, [IR_OP_SOFTPLUS] = unary,
    [IR_OP_SOFTSIGN] = unary, [IR_OP_HARD_SIGMOID] = unary,
    [IR_OP_HARD_SWISH] = unary,
    [IR_OP_GLU] = grad_glu, [IR_OP_SWIGLU] = grad_glu, [IR_OP_GEGLU] = grad_glu,
    [IR_OP_ADD] = grad_binary, [IR_OP_SUB] = grad_binary,
    [IR_OP_MUL] = grad_binary, [IR_OP_DIV] = grad_binary,
    [IR_OP_POW] = grad_binary, [IR_OP_MAXIMUM] = grad_binary,
    [IR_OP_MINIMUM] = grad_binary, [IR_OP_WHERE] = grad_where,
    [IR_OP_SUM] = grad_reduce, [IR_OP_MEAN] = grad_reduce,
    [IR_OP_MAX] = grad_reduce, [IR_OP_MIN] = grad_reduce,
    [IR_OP_LOGSUMEXP] = grad_reduce, [IR_OP_VAR] = grad_reduce,
    [IR_OP_RESHAPE] = grad_reshape, [IR_OP_TRANSPOSE] = grad_transpose,
    [IR_OP_BROADCAST] = grad_broadcast, [IR_OP_CONCAT] = grad_concat,
    [IR_OP_SLICE] = grad_slice, [IR_OP_PAD] = grad_pad,
    [IR_OP_STACK] = grad_stack, [IR_OP_GATHER] = grad_gather,
    [IR_OP_MATMUL] = grad_matmul, [IR_OP_SOFTMAX] = grad_softmax,
    [IR_OP_LOG_SOFTMAX] = grad_softmax, [IR_OP_ATTENTION] = grad_attention,
    [IR_OP_CONV1D] = grad_conv, [IR_OP_CONV2D] = grad_conv,
    [IR_OP_CONV_TRANSPOSE2D] = grad_conv_transpose,
    [IR_OP_MAX_POOL2D] = grad_max_pool, [IR_OP_AVG_POOL2D] = grad_avg_pool,
    [IR_OP_UPSAMPLE_NEAREST] = grad_upsample,
    [IR_OP_UPSAMPLE_BILINEAR] = grad_upsample,
    [IR_OP_PIXEL_SHUFFLE] = grad_pixel_shuffle,
    [IR_OP_PIXEL_UNSHUFFLE] = grad_pixel_shuffle,
    [IR_OP_CROSS_ENTROPY] = grad_class_loss, [IR_OP_NLL] = grad_class_loss,
    [IR_OP_BCE_WITH_LOGITS] = grad_pointwise_loss,
    [IR_OP_MSE] = grad_pointwise_loss, [IR_OP_L1] = grad_pointwise_loss,
    [IR_OP_HUBER] = grad_pointwise_loss,
    [IR_OP_SOFT_ACCURACY] = grad_soft_accuracy, [IR_OP_SOFT_F1] = grad_soft_f1,
};

GradFn *autodiff_rule(IrOp op) {
  return op >= 0 && op < IR_OP_COUNT ? grad_rules[op] : NULL;
}
