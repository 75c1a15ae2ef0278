/*
** This file contains the element emitters of the shape ops: reshape,
** transpose, broadcast, concat, slice, pad, stack, one_hot and gather, as
** index arithmetic on the operand (ir/interp_shape.c defines them).  Used
** fused, a transpose or broadcast costs nothing but the address
** computation; a reshape of a materialised value is a view (codegen.c)
** and never reaches here.  Out-of-range labels (one_hot) and indices
** (gather) set CG_ERR_RANGE and read row 0 instead.
*/
#include "cg_int.h"

/* Row-major flat index of idx in t, and its inverse. */
static LLVMValueRef flat_of(Cg *cg, const IrType *t, LLVMValueRef *idx) {
  LLVMValueRef f = cg_i64(cg, 0);
  for (int k = 0; k < t->rank; k++)
    f = LLVMBuildNSWAdd(cg->b, LLVMBuildNSWMul(cg->b, f, cg_i64(cg, t->dim[k]), ""),
                        idx[k], "");
  return f;
}

static void unflat(Cg *cg, const IrType *t, LLVMValueRef f, LLVMValueRef *idx) {
  for (int k = t->rank - 1; k >= 0; k--) {
    LLVMValueRef d = cg_i64(cg, t->dim[k]);
    idx[k] = k == 0 ? f : LLVMBuildSRem(cg->b, f, d, "");
    if (k > 0) f = LLVMBuildSDiv(cg->b, f, d, "");
  }
}

static bool same_shape(const IrType *a, const IrType *b) {
  if (a->rank != b->rank) return false;
  for (int k = 0; k < a->rank; k++)
    if (a->dim[k] != b->dim[k]) return false;
  return true;
}

/* True when the element of v at row-major flat index f is what cg_elem
** gives at the index {0, .., 0, f}: every buffer v reads is laid out
** row-major without gaps, through elementwise ops whose operands have v's
** shape or rank 0, and constants (depth bounds the walk).  A reshape of
** such a value then needs no division: element (i, j) of the [128, 784]
** reshape of cast(image) / 255, image u8[128, 28, 28], is image[i*784 + j],
** and the loop vectorises. */
static bool flat_ok(Cg *cg, const IrValue *v, int depth) {
  const IrType *t = &v->type;
  CgVal *c = cg_val(cg, v);
  if (!c->inl) {
    if (t->rank == 0 || c->st[t->rank - 1] != 1) return false;
    int64_t want = 1;
    for (int k = t->rank - 1; k >= 0; k--) {
      if (t->dim[k] != 1 && c->st[k] != want) return false;
      want *= t->dim[k];
    }
    return true;
  }
  const IrNode *n = v->def;
  if (n->op == IR_OP_CONSTANT) return true;
  if (!(ir_op_info[n->op].flags & OPF_FUSABLE) || depth == 0) return false;
  for (int j = 0; j < n->nargs; j++) {
    const IrType *at = &n->args[j]->type;
    if (at->rank == 0) continue; /* read at no index */
    if (!same_shape(at, t) || !flat_ok(cg, n->args[j], depth - 1)) return false;
  }
  return true;
}

LLVMValueRef cg_reshape(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  const IrType *in = &n->args[0]->type;
  LLVMValueRef xi[IR_MAX_RANK], f = flat_of(cg, &n->res[0]->type, idx);
  if (in->rank > 0 && flat_ok(cg, n->args[0], 32)) {
    for (int k = 0; k + 1 < in->rank; k++) xi[k] = cg_i64(cg, 0);
    xi[in->rank - 1] = f;
  } else {
    unflat(cg, in, f, xi);
  }
  return cg_elem(cg, n->args[0], xi);
}

LLVMValueRef cg_transpose(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  int r = n->args[0]->type.rank;
  const IrAttr *a = ir_attr_get(&n->attrs, "perm");
  LLVMValueRef xi[IR_MAX_RANK];
  for (int k = 0; k < r; k++) {
    int p = a ? cg_axis(a->ints[k], r) : r - 1 - k;
    xi[p] = idx[k];
  }
  return cg_elem(cg, n->args[0], xi);
}

LLVMValueRef cg_broadcast(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  LLVMValueRef xi[IR_MAX_RANK];
  cg_bcast_index(cg, &n->args[0]->type, &n->res[0]->type, idx, xi);
  return cg_elem(cg, n->args[0], xi);
}

/* concat / stack: select among the operands by the index along axis; each
** operand is read at an index clamped into its range. */
static LLVMValueRef pick(Cg *cg, const IrNode *n, LLVMValueRef *idx, int ax,
                         bool stack) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef res = NULL;
  int rank = n->res[0]->type.rank;
  int64_t start = 0;
  for (int j = 0; j < n->nargs; j++) {
    int64_t len = stack ? 1 : n->args[j]->type.dim[ax];
    LLVMValueRef xi[IR_MAX_RANK];
    LLVMValueRef local = LLVMBuildSub(b, idx[ax], cg_i64(cg, start), "");
    LLVMValueRef inr = LLVMBuildICmp(b, LLVMIntULT, local, cg_i64(cg, len), "");
    for (int k = 0, m = 0; k < rank; k++) {
      if (k == ax && stack) continue;
      xi[m++] = k == ax ? LLVMBuildSelect(b, inr, local, cg_i64(cg, 0), "") : idx[k];
    }
    LLVMValueRef v = cg_elem(cg, n->args[j], xi);
    res = res ? LLVMBuildSelect(b, inr, v, res, "") : v;
    start += len;
  }
  return res;
}

LLVMValueRef cg_concat(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  int ax = cg_axis(ir_attr_int(&n->attrs, "axis", 0), n->res[0]->type.rank);
  return pick(cg, n, idx, ax, false);
}

LLVMValueRef cg_stack(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  int ax = cg_axis(ir_attr_int(&n->attrs, "axis", 0), n->res[0]->type.rank);
  return pick(cg, n, idx, ax, true);
}

/* Python slice bounds (interp_shape.c slice_bounds): the first index. */
static int64_t slice_first(int64_t start, int64_t end, int64_t step, int64_t len) {
  if (start < 0) start += len;
  (void)end;
  if (step > 0) return start < 0 ? 0 : start > len ? len : start;
  return start < -1 ? -1 : start > len - 1 ? len - 1 : start;
}

LLVMValueRef cg_slice(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  const IrType *xt = &n->args[0]->type;
  int ax = cg_axis(ir_attr_int(&n->attrs, "axis", 0), xt->rank);
  int64_t step = ir_attr_int(&n->attrs, "step", 1);
  int64_t first = slice_first(ir_attr_int(&n->attrs, "start", 0), 0, step,
                              xt->dim[ax]);
  LLVMValueRef xi[IR_MAX_RANK];
  for (int k = 0; k < xt->rank; k++) xi[k] = idx[k];
  xi[ax] = LLVMBuildNSWAdd(cg->b, cg_i64(cg, first),
                           LLVMBuildNSWMul(cg->b, idx[ax], cg_i64(cg, step), ""), "");
  return cg_elem(cg, n->args[0], xi);
}

LLVMValueRef cg_pad(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  const IrType *xt = &n->args[0]->type;
  const IrAttr *a = ir_attr_get(&n->attrs, "pads");
  LLVMBuilderRef b = cg->b;
  LLVMValueRef inside = LLVMConstInt(cg->i1, 1, 0), xi[IR_MAX_RANK];
  for (int k = 0; k < xt->rank; k++) {
    int64_t lo = a && 2 * k < a->n ? a->ints[2 * k] : 0;
    LLVMValueRef c = LLVMBuildSub(b, idx[k], cg_i64(cg, lo), "");
    LLVMValueRef in = LLVMBuildICmp(b, LLVMIntULT, c, cg_i64(cg, xt->dim[k]), "");
    inside = LLVMBuildAnd(b, inside, in, "");
    xi[k] = LLVMBuildSelect(b, in, c, cg_i64(cg, 0), "");
  }
  DType dt = n->res[0]->type.dtype;
  LLVMValueRef v = cg_elem(cg, n->args[0], xi);
  LLVMValueRef fill = cg_round(cg, dt, cg_const(cg, dt, ir_attr_float(&n->attrs, "value", 0)));
  return LLVMBuildSelect(b, inside, v, fill, "");
}

/* A label or index x (compute type of dtype t) checked against [0, n):
** returns it as i64 (0 when out of range, with CG_ERR_RANGE set). */
static LLVMValueRef checked_index(Cg *cg, LLVMValueRef x, DType t, int64_t n) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef i;
  LLVMValueRef ok;
  if (cg_is_fp(LLVMTypeOf(x))) {
    LLVMValueRef lo = LLVMBuildFCmp(b, LLVMRealOGE, x, LLVMConstReal(LLVMTypeOf(x), 0), "");
    LLVMValueRef hi = LLVMBuildFCmp(b, LLVMRealOLT, x, LLVMConstReal(LLVMTypeOf(x), (double)n), "");
    ok = LLVMBuildAnd(b, lo, hi, "");
    i = LLVMBuildFPToSI(b, LLVMBuildSelect(b, ok, x, LLVMConstReal(LLVMTypeOf(x), 0), ""), cg->i64, "");
  } else {
    i = cg_convert(cg, x, t, DT_I64);
    ok = LLVMBuildICmp(b, LLVMIntULT, i, cg_i64(cg, n), "");
  }
  cg_set_err(cg, LLVMBuildNot(b, ok, ""), CG_ERR_RANGE);
  return LLVMBuildSelect(b, ok, i, cg_i64(cg, 0), "");
}

LLVMValueRef cg_checked_label(Cg *cg, LLVMValueRef x, DType t, int64_t n) {
  return checked_index(cg, x, t, n);
}

LLVMValueRef cg_one_hot(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  const IrType *t = &n->res[0]->type;
  int64_t c = t->dim[t->rank - 1];
  LLVMValueRef l = cg_elem(cg, n->args[0], idx);
  l = checked_index(cg, l, n->args[0]->type.dtype, c);
  LLVMValueRef eq = LLVMBuildICmp(cg->b, LLVMIntEQ, l, idx[t->rank - 1], "");
  return cg_convert(cg, eq, DT_BOOL, t->dtype);
}

LLVMValueRef cg_gather(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  const IrType *tt = &n->args[0]->type, *it = &n->args[1]->type;
  LLVMValueRef k = cg_elem(cg, n->args[1], idx);
  k = checked_index(cg, k, it->dtype, tt->dim[0]);
  LLVMValueRef ti[IR_MAX_RANK];
  ti[0] = k;
  for (int j = 1; j < tt->rank; j++) ti[j] = idx[it->rank + j - 1];
  return cg_elem(cg, n->args[0], ti);
}
