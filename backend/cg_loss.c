/*
** This file contains the element emitters of the losses and metrics, all
** scalars (ir/interp_loss.c defines them): cross_entropy, nll,
** bce_with_logits, mse, l1, huber, soft_accuracy, soft_f1, accuracy, f1,
** top_k.  Each is one serial loop nest over the positions accumulating in
** f64, as the interpreter does; a label out of range sets CG_ERR_RANGE
** (and class 0 is used).  The class forms of soft_f1 and f1 loop over the
** classes outside the positions (O(C^2 P) work: fine for metrics).
*/
#include <math.h>

#include "cg_int.h"


#define F(v) LLVMConstReal(cg->f64, v)
#define I(v) cg_i64(cg, v)

typedef struct Cls {
  const IrNode *n;
  int64_t P, C;
  int lr;        /* label rank */
  bool binary;
} Cls;

static void cls_geo(const IrNode *n, Cls *g) {
  const IrType *x = &n->args[0]->type, *l = &n->args[1]->type;
  g->n = n;
  g->lr = l->rank;
  g->P = ir_type_numel(l);
  g->binary = x->rank == l->rank && ir_type_numel(x) == g->P;
  g->C = g->binary ? 2 : x->dim[x->rank - 1];
}

/* Label index of flat position p. */
static void pos_index(Cg *cg, const IrType *t, LLVMValueRef p, LLVMValueRef *idx) {
  for (int k = t->rank - 1; k >= 0; k--) {
    LLVMValueRef d = I(t->dim[k]);
    idx[k] = k == 0 ? p : LLVMBuildSRem(cg->b, p, d, "");
    if (k > 0) p = LLVMBuildSDiv(cg->b, p, d, "");
  }
}

/* logits[pos, c] in f64 (pidx: label index; c NULL for binary). */
static LLVMValueRef logit(Cg *cg, const Cls *g, LLVMValueRef *pidx, LLVMValueRef c) {
  LLVMValueRef xi[IR_MAX_RANK];
  for (int k = 0; k < g->lr; k++) xi[k] = pidx[k];
  if (c) xi[g->lr] = c;
  return cg_to_fp(cg, cg_elem(cg, g->n->args[0], xi), g->n->args[0]->type.dtype, cg->f64);
}

static LLVMValueRef label(Cg *cg, const Cls *g, LLVMValueRef *pidx) {
  DType t = g->n->args[1]->type.dtype;
  return cg_checked_label(cg, cg_elem(cg, g->n->args[1], pidx), t, g->C);
}

/* A binary label in [0, 1] (exactly 0 or 1 unless soft), in f64. */
static LLVMValueRef bin_label(Cg *cg, const Cls *g, LLVMValueRef *pidx, bool soft) {
  DType t = g->n->args[1]->type.dtype;
  LLVMBuilderRef b = cg->b;
  LLVMValueRef l = cg_to_fp(cg, cg_elem(cg, g->n->args[1], pidx), t, cg->f64);
  LLVMValueRef ok = soft ? LLVMBuildAnd(b, LLVMBuildFCmp(b, LLVMRealOGE, l, F(0), ""),
                                        LLVMBuildFCmp(b, LLVMRealOLE, l, F(1), ""), "")
                         : LLVMBuildOr(b, LLVMBuildFCmp(b, LLVMRealOEQ, l, F(0), ""),
                                       LLVMBuildFCmp(b, LLVMRealOEQ, l, F(1), ""), "");
  cg_set_err(cg, LLVMBuildNot(b, ok, ""), CG_ERR_RANGE);
  return LLVMBuildSelect(b, ok, l, F(0), "");
}

static LLVMValueRef acc_new(Cg *cg, LLVMTypeRef t, LLVMValueRef init) {
  LLVMValueRef a = cg_alloca(cg, t, "v_acc");
  LLVMBuildStore(cg->b, init, a);
  return a;
}

static void acc_add(Cg *cg, LLVMValueRef a, LLVMValueRef v) {
  LLVMTypeRef t = LLVMTypeOf(v);
  LLVMValueRef cur = LLVMBuildLoad2(cg->b, t, a, "");
  LLVMBuildStore(cg->b, cg_is_fp(t) ? LLVMBuildFAdd(cg->b, cur, v, "")
                                    : LLVMBuildAdd(cg->b, cur, v, ""), a);
}

/* log sum exp of the row (interp_loss.c row_lse). */
static LLVMValueRef row_lse(Cg *cg, const Cls *g, LLVMValueRef *pidx) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef am = acc_new(cg, cg->f64, F(-INFINITY)), as = acc_new(cg, cg->f64, F(0));
  CgLoop l;
  LLVMValueRef c = cg_loop_begin(cg, &l, I(0), I(g->C));
  LLVMBuildStore(b, cg_intr2(cg, "llvm.maxnum", LLVMBuildLoad2(b, cg->f64, am, ""),
                             logit(cg, g, pidx, c)), am);
  cg_loop_end(cg, &l);
  LLVMValueRef m = LLVMBuildLoad2(b, cg->f64, am, "");
  c = cg_loop_begin(cg, &l, I(0), I(g->C));
  acc_add(cg, as, cg_exp(cg, LLVMBuildFSub(b, logit(cg, g, pidx, c), m, "")));
  cg_loop_end(cg, &l);
  LLVMValueRef r = LLVMBuildFAdd(b, m, cg_log(cg, LLVMBuildLoad2(b, cg->f64, as, "")), "");
  LLVMValueRef inf = LLVMBuildFCmp(b, LLVMRealOEQ, cg_intr1(cg, "llvm.fabs", m), F(INFINITY), "");
  return LLVMBuildSelect(b, inf, m, r, "");
}

/* First maximum of the row, NaN counting as the maximum. */
static LLVMValueRef row_argmax(Cg *cg, const Cls *g, LLVMValueRef *pidx) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef bi = acc_new(cg, cg->i64, I(0));
  LLVMValueRef bv = acc_new(cg, cg->f64, logit(cg, g, pidx, I(0)));
  CgLoop l;
  LLVMValueRef c = cg_loop_begin(cg, &l, I(1), I(g->C));
  LLVMValueRef v = logit(cg, g, pidx, c), cur = LLVMBuildLoad2(b, cg->f64, bv, "");
  LLVMValueRef up = LLVMBuildOr(b, LLVMBuildFCmp(b, LLVMRealOGT, v, cur, ""),
                                LLVMBuildFCmp(b, LLVMRealUNO, v, v, ""), "");
  up = LLVMBuildAnd(b, up, LLVMBuildFCmp(b, LLVMRealORD, cur, cur, ""), "");
  LLVMBuildStore(b, LLVMBuildSelect(b, up, v, cur, ""), bv);
  LLVMBuildStore(b, LLVMBuildSelect(b, up, c, LLVMBuildLoad2(b, cg->i64, bi, ""), ""), bi);
  cg_loop_end(cg, &l);
  return LLVMBuildLoad2(b, cg->i64, bi, "");
}

/* The prediction of a position: argmax, or x > 0 for binary. */
static LLVMValueRef predict(Cg *cg, const Cls *g, LLVMValueRef *pidx) {
  if (!g->binary) return row_argmax(cg, g, pidx);
  LLVMValueRef x = logit(cg, g, pidx, NULL);
  return LLVMBuildZExt(cg->b, LLVMBuildFCmp(cg->b, LLVMRealOGT, x, F(0), ""), cg->i64, "");
}

static LLVMValueRef finish(Cg *cg, const IrNode *n, LLVMValueRef v) {
  return cg_convert(cg, v, DT_F64, n->res[0]->type.dtype);
}

/* Loop over the positions: returns the label index (pidx filled). */
static void pos_begin(Cg *cg, const Cls *g, CgLoop *l, LLVMValueRef *pidx) {
  LLVMValueRef p = cg_loop_begin(cg, l, I(0), I(g->P));
  pos_index(cg, &g->n->args[1]->type, p, pidx);
}

LLVMValueRef cg_cross_entropy(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  Cls g;
  cls_geo(n, &g);
  LLVMBuilderRef b = cg->b;
  double eps = ir_attr_float(&n->attrs, "label_smoothing", 0);
  LLVMValueRef s = acc_new(cg, cg->f64, F(0)), pidx[IR_MAX_RANK];
  CgLoop l, lc;
  pos_begin(cg, &g, &l, pidx);
  LLVMValueRef lab = label(cg, &g, pidx), lse = row_lse(cg, &g, pidx);
  LLVMValueRef t = LLVMBuildFMul(b, F(1 - eps), LLVMBuildFSub(b, lse, logit(cg, &g, pidx, lab), ""), "");
  if (eps != 0) {
    LLVMValueRef am = acc_new(cg, cg->f64, F(0));
    LLVMValueRef c = cg_loop_begin(cg, &lc, I(0), I(g.C));
    acc_add(cg, am, logit(cg, &g, pidx, c));
    cg_loop_end(cg, &lc);
    LLVMValueRef mean = LLVMBuildFDiv(b, LLVMBuildLoad2(b, cg->f64, am, ""), F((double)g.C), "");
    t = LLVMBuildFAdd(b, t, LLVMBuildFMul(b, F(eps), LLVMBuildFSub(b, lse, mean, ""), ""), "");
  }
  acc_add(cg, s, t);
  cg_loop_end(cg, &l);
  return finish(cg, n, LLVMBuildFDiv(b, LLVMBuildLoad2(b, cg->f64, s, ""), F((double)g.P), ""));
}

LLVMValueRef cg_nll(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  Cls g;
  cls_geo(n, &g);
  LLVMValueRef s = acc_new(cg, cg->f64, F(0)), pidx[IR_MAX_RANK];
  CgLoop l;
  pos_begin(cg, &g, &l, pidx);
  acc_add(cg, s, LLVMBuildFNeg(cg->b, logit(cg, &g, pidx, label(cg, &g, pidx)), ""));
  cg_loop_end(cg, &l);
  return finish(cg, n, LLVMBuildFDiv(cg->b, LLVMBuildLoad2(cg->b, cg->f64, s, ""), F((double)g.P), ""));
}

LLVMValueRef cg_pointwise_loss(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  IrType sh;
  ir_broadcast(&n->args[0]->type, &n->args[1]->type, &sh);
  LLVMBuilderRef b = cg->b;
  int64_t N = ir_type_numel(&sh);
  double delta = ir_attr_float(&n->attrs, "delta", 1.0);
  LLVMValueRef s = acc_new(cg, cg->f64, F(0)), si[IR_MAX_RANK], ai[IR_MAX_RANK],
               bi[IR_MAX_RANK];
  CgLoop l;
  LLVMValueRef p = cg_loop_begin(cg, &l, I(0), I(N));
  pos_index(cg, &sh, p, si);
  cg_bcast_index(cg, &n->args[0]->type, &sh, si, ai);
  cg_bcast_index(cg, &n->args[1]->type, &sh, si, bi);
  LLVMValueRef a = cg_to_fp(cg, cg_elem(cg, n->args[0], ai), n->args[0]->type.dtype, cg->f64);
  LLVMValueRef y = cg_to_fp(cg, cg_elem(cg, n->args[1], bi), n->args[1]->type.dtype, cg->f64);
  LLVMValueRef d = LLVMBuildFSub(b, a, y, ""), ad = cg_intr1(cg, "llvm.fabs", d), t;
  switch (n->op) {
  case IR_OP_BCE_WITH_LOGITS: {
    LLVMValueRef mx = cg_intr2(cg, "llvm.maxnum", a, F(0));
    LLVMValueRef e = cg_exp(cg, LLVMBuildFNeg(b, cg_intr1(cg, "llvm.fabs", a), ""));
    t = LLVMBuildFAdd(b, LLVMBuildFSub(b, mx, LLVMBuildFMul(b, a, y, ""), ""),
                      cg_libm1(cg, "log1p", e), "");
    break;
  }
  case IR_OP_MSE: t = LLVMBuildFMul(b, d, d, ""); break;
  case IR_OP_L1: t = ad; break;
  default: {
    LLVMValueRef q = LLVMBuildFMul(b, F(0.5), LLVMBuildFMul(b, d, d, ""), "");
    LLVMValueRef lin = LLVMBuildFMul(b, F(delta), LLVMBuildFSub(b, ad, F(0.5 * delta), ""), "");
    t = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, ad, F(delta), ""), q, lin, "");
  }
  }
  acc_add(cg, s, t);
  cg_loop_end(cg, &l);
  return finish(cg, n, LLVMBuildFDiv(b, LLVMBuildLoad2(b, cg->f64, s, ""), F((double)N), ""));
}

LLVMValueRef cg_soft_accuracy(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  Cls g;
  cls_geo(n, &g);
  LLVMBuilderRef b = cg->b;
  LLVMValueRef s = acc_new(cg, cg->f64, F(0)), pidx[IR_MAX_RANK];
  CgLoop l;
  pos_begin(cg, &g, &l, pidx);
  if (g.binary) {
    LLVMValueRef t = bin_label(cg, &g, pidx, true);
    LLVMValueRef p = cg_sigmoid(cg, logit(cg, &g, pidx, NULL));
    LLVMValueRef q = LLVMBuildFMul(b, LLVMBuildFSub(b, F(1), t, ""), LLVMBuildFSub(b, F(1), p, ""), "");
    acc_add(cg, s, LLVMBuildFAdd(b, LLVMBuildFMul(b, t, p, ""), q, ""));
  } else {
    LLVMValueRef lab = label(cg, &g, pidx);
    acc_add(cg, s, cg_exp(cg, LLVMBuildFSub(b, logit(cg, &g, pidx, lab), row_lse(cg, &g, pidx), "")));
  }
  cg_loop_end(cg, &l);
  LLVMValueRef m = LLVMBuildFDiv(b, LLVMBuildLoad2(b, cg->f64, s, ""), F((double)g.P), "");
  return finish(cg, n, LLVMBuildFSub(b, F(1), m, ""));
}

/* 2 tp / den, 0 when den is 0. */
static LLVMValueRef f1_of(Cg *cg, LLVMValueRef tp, LLVMValueRef den) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef q = LLVMBuildFDiv(b, LLVMBuildFMul(b, F(2), tp, ""), den, "");
  return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, den, F(0), ""), q, F(0), "");
}

LLVMValueRef cg_soft_f1(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  Cls g;
  cls_geo(n, &g);
  LLVMBuilderRef b = cg->b;
  LLVMValueRef pidx[IR_MAX_RANK];
  CgLoop l, lc;
  if (g.binary) {
    LLVMValueRef tp = acc_new(cg, cg->f64, F(0)), den = acc_new(cg, cg->f64, F(0));
    pos_begin(cg, &g, &l, pidx);
    LLVMValueRef t = bin_label(cg, &g, pidx, true);
    LLVMValueRef p = cg_sigmoid(cg, logit(cg, &g, pidx, NULL));
    acc_add(cg, tp, LLVMBuildFMul(b, p, t, ""));
    acc_add(cg, den, LLVMBuildFAdd(b, p, t, ""));
    cg_loop_end(cg, &l);
    LLVMValueRef f = f1_of(cg, LLVMBuildLoad2(b, cg->f64, tp, ""), LLVMBuildLoad2(b, cg->f64, den, ""));
    return finish(cg, n, LLVMBuildFSub(b, F(1), f, ""));
  }
  LLVMValueRef fs = acc_new(cg, cg->f64, F(0));
  LLVMValueRef tp = acc_new(cg, cg->f64, F(0)), den = acc_new(cg, cg->f64, F(0));
  LLVMValueRef c = cg_loop_begin(cg, &lc, I(0), I(g.C));
  LLVMBuildStore(b, F(0), tp);
  LLVMBuildStore(b, F(0), den);
  pos_begin(cg, &g, &l, pidx);
  LLVMValueRef lab = label(cg, &g, pidx);
  LLVMValueRef pc = cg_exp(cg, LLVMBuildFSub(b, logit(cg, &g, pidx, c), row_lse(cg, &g, pidx), ""));
  LLVMValueRef is = LLVMBuildICmp(b, LLVMIntEQ, lab, c, "");
  acc_add(cg, tp, LLVMBuildSelect(b, is, pc, F(0), ""));
  acc_add(cg, den, LLVMBuildFAdd(b, pc, LLVMBuildSelect(b, is, F(1), F(0), ""), ""));
  cg_loop_end(cg, &l);
  acc_add(cg, fs, f1_of(cg, LLVMBuildLoad2(b, cg->f64, tp, ""), LLVMBuildLoad2(b, cg->f64, den, "")));
  cg_loop_end(cg, &lc);
  LLVMValueRef f = LLVMBuildFDiv(b, LLVMBuildLoad2(b, cg->f64, fs, ""), F((double)g.C), "");
  return finish(cg, n, LLVMBuildFSub(b, F(1), f, ""));
}

/* The label of a metric: class index, or a strict binary label. */
static LLVMValueRef metric_label(Cg *cg, const Cls *g, LLVMValueRef *pidx) {
  if (!g->binary) return label(cg, g, pidx);
  return LLVMBuildFPToSI(cg->b, bin_label(cg, g, pidx, false), cg->i64, "");
}

LLVMValueRef cg_accuracy(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  Cls g;
  cls_geo(n, &g);
  LLVMValueRef hits = acc_new(cg, cg->i64, I(0)), pidx[IR_MAX_RANK];
  CgLoop l;
  pos_begin(cg, &g, &l, pidx);
  LLVMValueRef lab = metric_label(cg, &g, pidx);
  LLVMValueRef eq = LLVMBuildICmp(cg->b, LLVMIntEQ, predict(cg, &g, pidx), lab, "");
  acc_add(cg, hits, LLVMBuildZExt(cg->b, eq, cg->i64, ""));
  cg_loop_end(cg, &l);
  LLVMValueRef h = LLVMBuildSIToFP(cg->b, LLVMBuildLoad2(cg->b, cg->i64, hits, ""), cg->f64, "");
  return finish(cg, n, LLVMBuildFDiv(cg->b, h, F((double)g.P), ""));
}

LLVMValueRef cg_f1(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  Cls g;
  cls_geo(n, &g);
  LLVMBuilderRef b = cg->b;
  LLVMValueRef pidx[IR_MAX_RANK];
  LLVMValueRef fs = acc_new(cg, cg->f64, F(0)), m = acc_new(cg, cg->f64, F(0));
  LLVMValueRef tp = acc_new(cg, cg->f64, F(0)), den = acc_new(cg, cg->f64, F(0));
  CgLoop l, lc;
  LLVMValueRef c = g.binary ? I(1) : cg_loop_begin(cg, &lc, I(0), I(g.C));
  LLVMBuildStore(b, F(0), tp);
  LLVMBuildStore(b, F(0), den);
  pos_begin(cg, &g, &l, pidx);
  LLVMValueRef lab = metric_label(cg, &g, pidx), p = predict(cg, &g, pidx);
  LLVMValueRef il = LLVMBuildICmp(b, LLVMIntEQ, lab, c, ""), ip = LLVMBuildICmp(b, LLVMIntEQ, p, c, "");
  acc_add(cg, tp, LLVMBuildUIToFP(b, LLVMBuildAnd(b, il, ip, ""), cg->f64, ""));
  acc_add(cg, den, LLVMBuildFAdd(b, LLVMBuildUIToFP(b, il, cg->f64, ""),
                                 LLVMBuildUIToFP(b, ip, cg->f64, ""), ""));
  cg_loop_end(cg, &l);
  LLVMValueRef d = LLVMBuildLoad2(b, cg->f64, den, "");
  LLVMValueRef f = f1_of(cg, LLVMBuildLoad2(b, cg->f64, tp, ""), d);
  if (g.binary) return finish(cg, n, f);
  acc_add(cg, fs, f);
  acc_add(cg, m, LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, d, F(0), ""), F(1), F(0), ""));
  cg_loop_end(cg, &lc);
  LLVMValueRef mv = LLVMBuildLoad2(b, cg->f64, m, "");
  LLVMValueRef r = LLVMBuildFDiv(b, LLVMBuildLoad2(b, cg->f64, fs, ""), mv, "");
  r = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, mv, F(0), ""), r, F(0), "");
  return finish(cg, n, r);
}

LLVMValueRef cg_top_k(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  Cls g;
  cls_geo(n, &g);
  g.binary = false;
  g.C = n->args[0]->type.dim[n->args[0]->type.rank - 1];
  LLVMBuilderRef b = cg->b;
  int64_t k = ir_attr_int(&n->attrs, "k", 5);
  LLVMValueRef hits = acc_new(cg, cg->i64, I(0)), before = acc_new(cg, cg->i64, I(0));
  LLVMValueRef pidx[IR_MAX_RANK];
  CgLoop l, lc;
  pos_begin(cg, &g, &l, pidx);
  LLVMValueRef lab = label(cg, &g, pidx), xl = logit(cg, &g, pidx, lab);
  LLVMBuildStore(b, I(0), before);
  LLVMValueRef c = cg_loop_begin(cg, &lc, I(0), I(g.C));
  LLVMValueRef xc = logit(cg, &g, pidx, c);
  LLVMValueRef gt = LLVMBuildFCmp(b, LLVMRealOGT, xc, xl, "");
  LLVMValueRef tie = LLVMBuildAnd(b, LLVMBuildFCmp(b, LLVMRealOEQ, xc, xl, ""),
                                  LLVMBuildICmp(b, LLVMIntSLT, c, lab, ""), "");
  acc_add(cg, before, LLVMBuildZExt(b, LLVMBuildOr(b, gt, tie, ""), cg->i64, ""));
  cg_loop_end(cg, &lc);
  LLVMValueRef hit = LLVMBuildICmp(b, LLVMIntSLT, LLVMBuildLoad2(b, cg->i64, before, ""), I(k), "");
  acc_add(cg, hits, LLVMBuildZExt(b, hit, cg->i64, ""));
  cg_loop_end(cg, &l);
  LLVMValueRef h = LLVMBuildSIToFP(b, LLVMBuildLoad2(b, cg->i64, hits, ""), cg->f64, "");
  return finish(cg, n, LLVMBuildFDiv(b, h, F((double)g.P), ""));
}
