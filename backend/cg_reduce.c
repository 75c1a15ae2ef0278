/*
** This file contains the lowering of the reductions (sum, mean, max, min,
** logsumexp, var), argmax, and softmax / log_softmax.
**
** A reduction is an element emitter: for one result element it loops over
** the reduced axes (nested loops, the last reduced axis innermost; a run
** of them contiguous in a stored operand is one loop) with
** an accumulator, reading the operand through cg_elem, so elementwise
** producers fuse into the reduction's input.  Float sums accumulate in the
** operand's compute type with the `reassoc` fast-math flag (so the loop
** vectorises with partial sums): the result then differs from the
** interpreter's double sum by a few ulp times the number of terms
** (tests: rel 1e-4).  Integer sums accumulate in f64 like the interpreter.
** max and min propagate NaN (llvm.maximum / llvm.minimum).
**
** softmax has its own kernel over the rows (every position but the axis):
** for f32 rows of at most SOFTMAX_ROW_MAX the row is computed once into a
** stack buffer and the max, exp-and-sum and normalise passes are explicit
** vector loops over it (softmax_rows); otherwise three passes over the
** operand: max, sum of exp(x - max), then the normalised values.
*/
#include <math.h>

#include "cg_int.h"

/* The reduced axes of a reduction node (absent: all). */
static void reduced_axes(const IrNode *n, bool *red) {
  const IrType *t = &n->args[0]->type;
  const IrAttr *a = ir_attr_get(&n->attrs, "axes");
  for (int k = 0; k < t->rank; k++) red[k] = !a;
  if (!a) return;
  int m = a->kind == ATTR_INTS ? a->n : 1;
  for (int j = 0; j < m; j++)
    red[cg_axis(a->kind == ATTR_INTS ? a->ints[j] : a->i, t->rank)] = true;
}

typedef struct RedLoops {
  int n;
  CgLoop l[IR_MAX_RANK];
} RedLoops;

/* Open the loops over the reduced axes; xi gets the operand index.  A run
** of reduced axes that a stored operand holds contiguously among
** themselves (as H, W of a bias gradient's sum over N, H, W) is one loop:
** its last axis takes the loop's index, the others 0. */
static void red_begin(Cg *cg, const IrNode *n, const bool *red,
                      LLVMValueRef *idx, LLVMValueRef *xi, RedLoops *rl) {
  const IrType *t = &n->args[0]->type;
  const CgVal *x = cg_val(cg, n->args[0]);
  bool keep = n->res[0]->type.rank == t->rank;
  rl->n = 0;
  for (int k = 0, o = 0; k < t->rank; k++) {
    if (!red[k]) {
      xi[k] = idx[keep ? k : o++];
      continue;
    }
    int64_t len = t->dim[k];
    int e = k;
    while (!x->inl && e + 1 < t->rank && red[e + 1] &&
           x->st[e] == t->dim[e + 1] * x->st[e + 1])
      len *= t->dim[++e];
    for (int j = k; j <= e; j++) {
      if (keep) o++;
      xi[j] = cg_i64(cg, 0);
    }
    xi[e] = cg_loop_begin(cg, &rl->l[rl->n++], cg_i64(cg, 0), cg_i64(cg, len));
    k = e;
  }
}

static void red_end(Cg *cg, RedLoops *rl) {
  for (int j = rl->n - 1; j >= 0; j--) cg_loop_end(cg, &rl->l[j]);
}

/* One pass: acc = fold(acc, f(x)) over the reduced elements.  kind: 0 sum
** of x, 1 max, 2 min, 3 sum exp(x - c), 4 sum (x - c)^2. */
static LLVMValueRef red_pass(Cg *cg, const IrNode *n, const bool *red,
                             LLVMValueRef *idx, LLVMTypeRef at, int kind,
                             LLVMValueRef c, DType in) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef acc = cg_alloca(cg, at, "v_acc");
  double init = kind == 1 ? -INFINITY : kind == 2 ? INFINITY : 0;
  LLVMBuildStore(b, LLVMConstReal(at, init), acc);
  LLVMValueRef xi[IR_MAX_RANK];
  RedLoops rl;
  red_begin(cg, n, red, idx, xi, &rl);
  LLVMValueRef x = cg_to_fp(cg, cg_elem(cg, n->args[0], xi), in, at);
  LLVMValueRef a = LLVMBuildLoad2(b, at, acc, ""), r;
  switch (kind) {
  case 0: r = cg_fm(LLVMBuildFAdd(b, a, x, ""), true); break;
  case 1: r = cg_intr2(cg, "llvm.maximum", a, x); break;
  case 2: r = cg_intr2(cg, "llvm.minimum", a, x); break;
  case 3:
    r = cg_fm(LLVMBuildFAdd(b, a, cg_exp(cg, LLVMBuildFSub(b, x, c, "")), ""), true);
    break;
  default: {
    LLVMValueRef d = LLVMBuildFSub(b, x, c, "");
    r = cg_fm(LLVMBuildFAdd(b, a, cg_fm(LLVMBuildFMul(b, d, d, ""), false), ""), true);
  }
  }
  LLVMBuildStore(b, r, acc);
  red_end(cg, &rl);
  return LLVMBuildLoad2(b, at, acc, "");
}

LLVMValueRef cg_reduce(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  const IrType *t = &n->args[0]->type;
  DType in = t->dtype, out = n->res[0]->type.dtype;
  bool red[IR_MAX_RANK];
  reduced_axes(n, red);
  int64_t count = 1;
  for (int k = 0; k < t->rank; k++)
    if (red[k]) count *= t->dim[k];
  LLVMTypeRef at = in == DT_F64 || !ir_dtype_is_float(in) ? cg->f64 : cg->f32;
  LLVMBuilderRef b = cg->b;
  LLVMValueRef r, cnt = LLVMConstReal(at, (double)count);
  switch (n->op) {
  case IR_OP_SUM: r = red_pass(cg, n, red, idx, at, 0, NULL, in); break;
  case IR_OP_MEAN:
    r = LLVMBuildFDiv(b, red_pass(cg, n, red, idx, at, 0, NULL, in), cnt, "");
    break;
  case IR_OP_MAX: r = red_pass(cg, n, red, idx, at, 1, NULL, in); break;
  case IR_OP_MIN: r = red_pass(cg, n, red, idx, at, 2, NULL, in); break;
  case IR_OP_LOGSUMEXP: {
    LLVMValueRef m = red_pass(cg, n, red, idx, at, 1, NULL, in);
    LLVMValueRef inf = LLVMBuildFCmp(b, LLVMRealOEQ, cg_intr1(cg, "llvm.fabs", m),
                                     LLVMConstReal(at, INFINITY), "");
    LLVMValueRef s = red_pass(cg, n, red, idx, at, 3, m, in);
    r = LLVMBuildSelect(b, inf, m, LLVMBuildFAdd(b, m, cg_log(cg, s), ""), "");
    break;
  }
  default: { /* var */
    LLVMValueRef mean = LLVMBuildFDiv(b, red_pass(cg, n, red, idx, at, 0, NULL, in), cnt, "");
    LLVMValueRef s = red_pass(cg, n, red, idx, at, 4, mean, in);
    double corr = ir_attr_float(&n->attrs, "correction", 1);
    r = LLVMBuildFDiv(b, s, LLVMConstReal(at, fmax(0.0, (double)count - corr)), "");
  }
  }
  return cg_convert(cg, r, at == cg->f64 ? DT_F64 : DT_F32, out);
}

/* argmax along axis: the first maximum, a NaN counts as the maximum. */
LLVMValueRef cg_argmax(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  const IrType *t = &n->args[0]->type;
  int ax = cg_axis(ir_attr_int(&n->attrs, "axis", -1), t->rank);
  bool keep = n->res[0]->type.rank == t->rank;
  LLVMBuilderRef b = cg->b;
  LLVMValueRef xi[IR_MAX_RANK];
  for (int k = 0, o = 0; k < t->rank; k++) {
    if (k == ax) {
      if (keep) o++;
      continue;
    }
    xi[k] = idx[o++];
  }
  LLVMTypeRef ft = ir_dtype_is_float(t->dtype) ? cg_ctype(cg, t->dtype) : cg->f64;
  LLVMValueRef bv = cg_alloca(cg, ft, "v_best"), bi = cg_alloca(cg, cg->i64, "v_arg");
  xi[ax] = cg_i64(cg, 0);
  LLVMBuildStore(b, cg_to_fp(cg, cg_elem(cg, n->args[0], xi), t->dtype, ft), bv);
  LLVMBuildStore(b, cg_i64(cg, 0), bi);
  CgLoop l;
  xi[ax] = cg_loop_begin(cg, &l, cg_i64(cg, 1), cg_i64(cg, t->dim[ax]));
  LLVMValueRef v = cg_to_fp(cg, cg_elem(cg, n->args[0], xi), t->dtype, ft);
  LLVMValueRef cur = LLVMBuildLoad2(b, ft, bv, "");
  LLVMValueRef better = LLVMBuildOr(b, LLVMBuildFCmp(b, LLVMRealOGT, v, cur, ""),
                                    LLVMBuildFCmp(b, LLVMRealUNO, v, v, ""), "");
  better = LLVMBuildAnd(b, better, LLVMBuildFCmp(b, LLVMRealORD, cur, cur, ""), "");
  LLVMBuildStore(b, LLVMBuildSelect(b, better, v, cur, ""), bv);
  LLVMBuildStore(b, LLVMBuildSelect(b, better, xi[ax], LLVMBuildLoad2(b, cg->i64, bi, ""), ""), bi);
  cg_loop_end(cg, &l);
  return cg_convert(cg, LLVMBuildLoad2(b, cg->i64, bi, ""), DT_I64,
                    n->res[0]->type.dtype);
}

/* ------------------------------------------------------------- softmax */

/* The operand index of position `row` (all dims but ax) with j on ax. */
static void softmax_index(Cg *cg, const IrType *t, int ax, LLVMValueRef row,
                          LLVMValueRef *xi) {
  int64_t inner = 1;
  for (int k = ax + 1; k < t->rank; k++) inner *= t->dim[k];
  LLVMValueRef o = LLVMBuildSDiv(cg->b, row, cg_i64(cg, inner), "");
  LLVMValueRef i = LLVMBuildSRem(cg->b, row, cg_i64(cg, inner), "");
  for (int k = t->rank - 1; k > ax; k--) {
    LLVMValueRef d = cg_i64(cg, t->dim[k]);
    xi[k] = LLVMBuildSRem(cg->b, i, d, "");
    i = LLVMBuildSDiv(cg->b, i, d, "");
  }
  for (int k = ax - 1; k >= 0; k--) {
    LLVMValueRef d = cg_i64(cg, t->dim[k]);
    xi[k] = k == 0 ? o : LLVMBuildSRem(cg->b, o, d, "");
    o = LLVMBuildSDiv(cg->b, o, d, "");
  }
}

/* Max and sum of exp(x - max) along the axis at position xi. */
static void softmax_stats(Cg *cg, const IrNode *n, int ax, LLVMValueRef *xi,
                          LLVMTypeRef ft, LLVMValueRef *m, LLVMValueRef *s) {
  LLVMBuilderRef b = cg->b;
  const IrType *t = &n->args[0]->type;
  LLVMValueRef am = cg_alloca(cg, ft, "v_max"), as = cg_alloca(cg, ft, "v_sum");
  LLVMBuildStore(b, LLVMConstReal(ft, -INFINITY), am);
  LLVMBuildStore(b, LLVMConstReal(ft, 0), as);
  CgLoop l;
  xi[ax] = cg_loop_begin(cg, &l, cg_i64(cg, 0), cg_i64(cg, t->dim[ax]));
  LLVMValueRef x = cg_elem(cg, n->args[0], xi);
  LLVMBuildStore(b, cg_intr2(cg, "llvm.maxnum", LLVMBuildLoad2(b, ft, am, ""), x), am);
  cg_loop_end(cg, &l);
  *m = LLVMBuildLoad2(b, ft, am, "");
  xi[ax] = cg_loop_begin(cg, &l, cg_i64(cg, 0), cg_i64(cg, t->dim[ax]));
  x = cg_elem(cg, n->args[0], xi);
  LLVMValueRef e = cg_exp(cg, LLVMBuildFSub(b, x, *m, ""));
  LLVMBuildStore(b, cg_fm(LLVMBuildFAdd(b, LLVMBuildLoad2(b, ft, as, ""), e, ""), true), as);
  cg_loop_end(cg, &l);
  *s = LLVMBuildLoad2(b, ft, as, "");
}

static LLVMValueRef softmax_value(Cg *cg, const IrNode *n, LLVMValueRef x,
                                  LLVMValueRef m, LLVMValueRef s) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef d = LLVMBuildFSub(b, x, m, "");
  if (n->op == IR_OP_LOG_SOFTMAX) return LLVMBuildFSub(b, d, cg_log(cg, s), "");
  return LLVMBuildFDiv(b, cg_exp(cg, d), s, "");
}

/* Rows longer than this use the three passes over the operand. */
#define SOFTMAX_ROW_MAX 4096

static LLVMValueRef splat(Cg *cg, LLVMValueRef x, int w) {
  LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(x), (unsigned)w);
  LLVMValueRef v = LLVMBuildInsertElement(cg->b, LLVMGetUndef(vt), x, cg_i32(cg, 0), "");
  LLVMValueRef zero = LLVMConstNull(LLVMVectorType(cg->i32, (unsigned)w));
  return LLVMBuildShuffleVector(cg->b, v, LLVMGetUndef(vt), zero, "");
}

/* The sum of the lanes of v (a fixed tree: the order does not depend on
** anything but the width). */
static LLVMValueRef lanes_sum(Cg *cg, LLVMValueRef v) {
  LLVMTypeRef vt = LLVMTypeOf(v);
  unsigned id = LLVMLookupIntrinsicID("llvm.vector.reduce.fadd", 23);
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(cg->mod, id, &vt, 1);
  LLVMTypeRef fty = LLVMIntrinsicGetType(cg->ctx, id, &vt, 1);
  LLVMValueRef args[2] = {LLVMConstReal(cg->f32, -0.0), v};
  return cg_fm(LLVMBuildCall2(cg->b, fty, f, args, 2, ""), true);
}

/* The maxnum of the w lanes of v: a tree of halves (maxnum ignores NaN
** lanes unless all are NaN, as the scalar fmax of the interpreter). */
static LLVMValueRef lanes_max(Cg *cg, LLVMValueRef v, int w) {
  for (int h = w / 2; h >= 1; h /= 2) {
    LLVMValueRef m[64];
    for (int l = 0; l < w; l++) m[l] = cg_i32(cg, l < h ? l + h : l);
    LLVMValueRef hi = LLVMBuildShuffleVector(cg->b, v, LLVMGetUndef(LLVMTypeOf(v)),
                                             LLVMConstVector(m, (unsigned)w), "");
    v = cg_intr2(cg, "llvm.maxnum", v, hi);
  }
  return LLVMBuildExtractElement(cg->b, v, cg_i32(cg, 0), "");
}

/* The row kernel of an f32 (or f16/bf16) softmax with rows of at most
** SOFTMAX_ROW_MAX: the row of the (fused) operand is computed once into a
** stack buffer padded with -inf to whole vectors of W = vec_floats floats;
** then explicit W-wide loops take its max (maxnum per lane), replace it by
** exp(x - max) summing it (per lane, then the lanes), and the last loop
** writes e * (1 / sum) (log_softmax: x - max - log(sum), keeping x).  A
** NaN in the row makes the sum and so the row NaN, as in the interpreter;
** an all -inf row gives NaN too (exp(-inf - -inf)). */
static void softmax_rows(Cg *cg, const IrNode *n, LLVMValueRef begin,
                         LLVMValueRef end) {
  const IrType *t = &n->args[0]->type;
  DType dt = n->res[0]->type.dtype;
  int ax = cg_axis(ir_attr_int(&n->attrs, "axis", -1), t->rank);
  bool logp = n->op == IR_OP_LOG_SOFTMAX;
  LLVMBuilderRef b = cg->b;
  int W = cg->vec_floats;
  int64_t L = t->dim[ax], nv = (L + W - 1) / W;
  LLVMTypeRef f32 = cg->f32, vt = LLVMVectorType(f32, (unsigned)W);
  LLVMValueRef buf = cg_alloca(cg, LLVMArrayType2(f32, (uint64_t)(nv * W)), "v_row");
  LLVMSetAlignment(buf, (unsigned)(W * 4));
  LLVMValueRef acc = cg_alloca(cg, vt, "v_acc");
  LLVMValueRef zero = cg_i64(cg, 0), xi[IR_MAX_RANK];
  cg_kern_wide(cg);
  CgLoop lr, l;
  LLVMValueRef row = cg_loop_begin(cg, &lr, begin, end);
  softmax_index(cg, t, ax, row, xi);
  /* the row */
  xi[ax] = cg_loop_begin(cg, &l, zero, cg_i64(cg, L));
  LLVMValueRef gi[2] = {zero, xi[ax]};
  LLVMValueRef x = cg_elem(cg, n->args[0], xi);
  LLVMBuildStore(b, x, LLVMBuildInBoundsGEP2(b, LLVMArrayType2(f32, (uint64_t)(nv * W)), buf, gi, 2, ""));
  cg_loop_end(cg, &l);
  for (int64_t j = L; j < nv * W; j++) {
    LLVMValueRef o = cg_i64(cg, j);
    LLVMBuildStore(b, LLVMConstReal(f32, -INFINITY), LLVMBuildInBoundsGEP2(b, f32, buf, &o, 1, ""));
  }
  /* max */
  LLVMBuildStore(b, splat(cg, LLVMConstReal(f32, -INFINITY), W), acc);
  LLVMValueRef v = cg_loop_begin(cg, &l, zero, cg_i64(cg, nv));
  LLVMValueRef o = LLVMBuildNSWMul(b, v, cg_i64(cg, W), "");
  LLVMValueRef vp = LLVMBuildInBoundsGEP2(b, f32, buf, &o, 1, "");
  LLVMValueRef xv = LLVMBuildLoad2(b, vt, vp, "");
  LLVMSetAlignment(xv, (unsigned)(W * 4));
  LLVMBuildStore(b, cg_intr2(cg, "llvm.maxnum", LLVMBuildLoad2(b, vt, acc, ""), xv), acc);
  cg_loop_end(cg, &l);
  LLVMValueRef m = lanes_max(cg, LLVMBuildLoad2(b, vt, acc, ""), W);
  LLVMValueRef mv = splat(cg, m, W);
  /* sum of exp(x - max), stored back for softmax */
  LLVMBuildStore(b, LLVMConstNull(vt), acc);
  v = cg_loop_begin(cg, &l, zero, cg_i64(cg, nv));
  o = LLVMBuildNSWMul(b, v, cg_i64(cg, W), "");
  vp = LLVMBuildInBoundsGEP2(b, f32, buf, &o, 1, "");
  xv = LLVMBuildLoad2(b, vt, vp, "");
  LLVMSetAlignment(xv, (unsigned)(W * 4));
  LLVMValueRef e = cg_exp(cg, LLVMBuildFSub(b, xv, mv, ""));
  if (!logp) LLVMSetAlignment(LLVMBuildStore(b, e, vp), (unsigned)(W * 4));
  LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, vt, acc, ""), e, ""), acc);
  cg_loop_end(cg, &l);
  LLVMValueRef s = lanes_sum(cg, LLVMBuildLoad2(b, vt, acc, ""));
  LLVMValueRef r = logp ? cg_log(cg, s) : LLVMBuildFDiv(b, LLVMConstReal(f32, 1), s, "");
  /* the result */
  xi[ax] = cg_loop_begin(cg, &l, zero, cg_i64(cg, L));
  gi[1] = xi[ax];
  LLVMValueRef y = LLVMBuildLoad2(b, f32, LLVMBuildInBoundsGEP2(b, LLVMArrayType2(f32, (uint64_t)(nv * W)), buf, gi, 2, ""), "");
  y = logp ? LLVMBuildFSub(b, LLVMBuildFSub(b, y, m, ""), r, "") : LLVMBuildFMul(b, y, r, "");
  cg_store(cg, n->res[0], xi, cg_round(cg, dt, y));
  cg_loop_end(cg, &l);
  cg_loop_end(cg, &lr);
}

void cg_softmax_kernel(Cg *cg, const IrNode *n, LLVMValueRef begin,
                       LLVMValueRef end) {
  const IrType *t = &n->args[0]->type;
  DType dt = n->res[0]->type.dtype;
  int ax = cg_axis(ir_attr_int(&n->attrs, "axis", -1), t->rank);
  LLVMTypeRef ft = cg_ctype(cg, t->dtype);
  if (ft == cg->f32 && t->dim[ax] <= SOFTMAX_ROW_MAX) {
    softmax_rows(cg, n, begin, end);
    return;
  }
  LLVMValueRef xi[IR_MAX_RANK], m, s;
  CgLoop lr, l;
  LLVMValueRef row = cg_loop_begin(cg, &lr, begin, end);
  softmax_index(cg, t, ax, row, xi);
  softmax_stats(cg, n, ax, xi, ft, &m, &s);
  xi[ax] = cg_loop_begin(cg, &l, cg_i64(cg, 0), cg_i64(cg, t->dim[ax]));
  LLVMValueRef y = softmax_value(cg, n, cg_elem(cg, n->args[0], xi), m, s);
  cg_store(cg, n->res[0], xi, cg_round(cg, dt, y));
  cg_loop_end(cg, &l);
  cg_loop_end(cg, &lr);
}

/* One element of softmax (recomputing the row statistics). */
LLVMValueRef cg_softmax(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  const IrType *t = &n->args[0]->type;
  int ax = cg_axis(ir_attr_int(&n->attrs, "axis", -1), t->rank);
  LLVMValueRef xi[IR_MAX_RANK], m, s;
  for (int k = 0; k < t->rank; k++) xi[k] = idx[k];
  softmax_stats(cg, n, ax, xi, cg_ctype(cg, t->dtype), &m, &s);
  return cg_round(cg, n->res[0]->type.dtype,
                  softmax_value(cg, n, cg_elem(cg, n->args[0], idx), m, s));
}
