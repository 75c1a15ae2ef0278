/*
** This file contains the lowering of max_pool2d_grad (x, dy -> dx, the
** gradient of max_pool2d that autodiff emits; semantics in ir/interp_nn.c):
** each window of x passes its dy to its first maximum, the first tap in
** window order (kh, then kw) inside the input whose value is the window's
** maximum; no tap takes it when the maximum is NaN, and padding never
** does.  The argmax is recomputed from x (no index buffer).
**
** The kernel runs over rows [begin, end) of dx (planes P = all leading
** dims, times H), plane by plane:
**  - disjoint windows (stride = kernel, dilation 1): per window row that
**    meets the rows, each window is read once and written once: dy at its
**    argmax, 0 at its other taps (only the taps in [begin, end): a window
**    cut by the thread split is recomputed by both sides).  Windows fully
**    inside the rows and the input are straight-line code over the taps
**    (at most 16): for f32 rows of unit stride, 8 windows a step as masked
**    vector loads of each tap row, split into one vector per tap by
**    shuffles and interleaved back for the stores; otherwise a scalar
**    loop over ow.  The others, at the padding and the split, check each
**    tap.  Rows and columns no window covers get 0.
**  - otherwise (overlapping windows, stride > kernel, dilation): each dx
**    element is the element emitter, a gather: the sum, in (kh, kw) order,
**    of dy over the windows that contain the element and pick it.
** No sum depends on the thread count: the result is the same at any.
*/
#include <math.h>
#include <string.h>

#include "cg_int.h"
#include "llvm_util.h"

#define ADD(x, y) LLVMBuildNSWAdd(cg->b, x, y, "")
#define MUL(x, y) LLVMBuildNSWMul(cg->b, x, y, "")
#define SUB(x, y) LLVMBuildNSWSub(cg->b, x, y, "")
#define I(v) cg_i64(cg, v)

/* Straight-line code for windows of at most this many taps. */
#define POOL_UNROLL_TAPS 16

typedef struct PoolGeo {
  int r;                      /* rank of x */
  int64_t H, W, OH, OW;
  int64_t k[2], s[2], p[2], d[2];
  DType dt;
  LLVMTypeRef ft;             /* compute type */
} PoolGeo;

static void pool_geo(Cg *cg, const IrNode *n, PoolGeo *g) {
  const IrType *xt = &n->args[0]->type, *yt = &n->args[1]->type;
  g->r = xt->rank;
  cg_attr_ivec(n, "kernel", 2, 1, g->k);
  cg_attr_ivec(n, "stride", 2, 0, g->s);
  cg_attr_ivec(n, "padding", 2, 0, g->p);
  cg_attr_ivec(n, "dilation", 2, 1, g->d);
  if (!ir_attr_get(&n->attrs, "stride")) {
    g->s[0] = g->k[0];
    g->s[1] = g->k[1];
  }
  g->H = xt->dim[g->r - 2];
  g->W = xt->dim[g->r - 1];
  g->OH = yt->dim[g->r - 2];
  g->OW = yt->dim[g->r - 1];
  g->dt = xt->dtype;
  g->ft = cg_ctype(cg, g->dt);
  NNC_ASSERT(g->r >= 2 && ir_dtype_is_float(g->dt));
}

/* ------------------------------------------------------------- helpers */

static LLVMValueRef icmp(Cg *cg, LLVMIntPredicate p, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildICmp(cg->b, p, a, b, "");
}
static LLVMValueRef and2(Cg *cg, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildAnd(cg->b, a, b, "");
}
static LLVMValueRef sel(Cg *cg, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(cg->b, c, a, b, "");
}
static LLVMValueRef smax(Cg *cg, LLVMValueRef a, LLVMValueRef b) {
  return sel(cg, icmp(cg, LLVMIntSGT, a, b), a, b);
}
static LLVMValueRef smin(Cg *cg, LLVMValueRef a, LLVMValueRef b) {
  return sel(cg, icmp(cg, LLVMIntSLT, a, b), a, b);
}

/* if (cond) { ... }: positions at the then-block; if_end joins. */
typedef struct PoolIf {
  LLVMBasicBlockRef then, join;
} PoolIf;

static void if_begin(Cg *cg, PoolIf *f, LLVMValueRef cond) {
  LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(cg->b));
  f->then = LLVMAppendBasicBlockInContext(cg->ctx, fn, "b_then");
  f->join = LLVMAppendBasicBlockInContext(cg->ctx, fn, "b_join");
  LLVMBuildCondBr(cg->b, cond, f->then, f->join);
  LLVMPositionBuilderAtEnd(cg->b, f->then);
}

static void if_end(Cg *cg, PoolIf *f) {
  LLVMBuildBr(cg->b, f->join);
  LLVMPositionBuilderAtEnd(cg->b, f->join);
}

/* idx = the plane's leading indices, then h, w. */
static LLVMValueRef *at(const PoolGeo *g, LLVMValueRef *idx, LLVMValueRef h,
                        LLVMValueRef w) {
  idx[g->r - 2] = h;
  idx[g->r - 1] = w;
  return idx;
}

/* The first-maximum tap (kh*KW + kw, i64) of window (oh, ow) of the plane
** whose leading indices idx holds, or -1 when the maximum is NaN (or the
** window has no tap inside the input).  idx's last two entries are used. */
static LLVMValueRef window_argmax(Cg *cg, const IrNode *n, const PoolGeo *g,
                                  LLVMValueRef *idx, LLVMValueRef oh,
                                  LLVMValueRef ow) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef best = cg_alloca(cg, g->ft, "v_best");
  LLVMValueRef bi = cg_alloca(cg, cg->i64, "v_bi");
  LLVMValueRef nan = cg_alloca(cg, cg->i1, "v_nan");
  LLVMBuildStore(b, LLVMConstReal(g->ft, -INFINITY), best);
  LLVMBuildStore(b, I(-1), bi);
  LLVMBuildStore(b, LLVMConstInt(cg->i1, 0, false), nan);
  LLVMValueRef h0 = SUB(MUL(oh, I(g->s[0])), I(g->p[0]));
  LLVMValueRef w0 = SUB(MUL(ow, I(g->s[1])), I(g->p[1]));
  CgLoop lh, lw;
  LLVMValueRef kh = cg_loop_begin(cg, &lh, I(0), I(g->k[0]));
  LLVMValueRef ih = ADD(h0, MUL(kh, I(g->d[0])));
  LLVMValueRef okh = icmp(cg, LLVMIntULT, ih, I(g->H));
  LLVMValueRef kw = cg_loop_begin(cg, &lw, I(0), I(g->k[1]));
  LLVMValueRef iw = ADD(w0, MUL(kw, I(g->d[1])));
  LLVMValueRef ok = and2(cg, okh, icmp(cg, LLVMIntULT, iw, I(g->W)));
  PoolIf in;
  if_begin(cg, &in, ok);
  LLVMValueRef v = cg_elem(cg, n->args[0], at(g, idx, ih, iw));
  LLVMValueRef isn = LLVMBuildFCmp(b, LLVMRealUNO, v, v, "");
  LLVMValueRef m = LLVMBuildLoad2(b, g->ft, best, ""), i = LLVMBuildLoad2(b, cg->i64, bi, "");
  LLVMValueRef take = LLVMBuildOr(b, LLVMBuildFCmp(b, LLVMRealOGT, v, m, ""),
                                  and2(cg, icmp(cg, LLVMIntSLT, i, I(0)),
                                       LLVMBuildNot(b, isn, "")), "");
  LLVMBuildStore(b, sel(cg, take, v, m), best);
  LLVMBuildStore(b, sel(cg, take, ADD(MUL(kh, I(g->k[1])), kw), i), bi);
  LLVMBuildStore(b, LLVMBuildOr(b, isn, LLVMBuildLoad2(b, cg->i1, nan, ""), ""), nan);
  if_end(cg, &in);
  cg_loop_end(cg, &lw);
  cg_loop_end(cg, &lh);
  return sel(cg, LLVMBuildLoad2(b, cg->i1, nan, ""), I(-1),
             LLVMBuildLoad2(b, cg->i64, bi, ""));
}

/* ---------------------------------------------- gather (element emitter) */

/* dx[.., ih, iw] = sum over taps (kh, kw) in order of dy[.., oh, ow] where
** oh*sh - ph + kh*dh = ih, ow*sw - pw + kw*dw = iw and that window's
** first maximum is tap (kh, kw). */
LLVMValueRef cg_max_pool2d_grad(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  PoolGeo g;
  pool_geo(cg, n, &g);
  LLVMBuilderRef b = cg->b;
  LLVMValueRef ih = idx[g.r - 2], iw = idx[g.r - 1], oi[2];
  LLVMValueRef wi[IR_MAX_RANK];
  for (int j = 0; j < g.r - 2; j++) wi[j] = idx[j];
  LLVMValueRef acc = cg_alloca(cg, g.ft, "v_acc");
  LLVMBuildStore(b, LLVMConstReal(g.ft, 0), acc);
  CgLoop l[2];
  LLVMValueRef ok = NULL, kk[2];
  for (int a = 0; a < 2; a++) { /* the window position o along axis a */
    kk[a] = cg_loop_begin(cg, &l[a], I(0), I(g.k[a]));
    LLVMValueRef t = SUB(ADD(a ? iw : ih, I(g.p[a])), MUL(kk[a], I(g.d[a])));
    LLVMValueRef ts = smax(cg, t, I(0));
    oi[a] = LLVMBuildUDiv(b, ts, I(g.s[a]), "");
    LLVMValueRef oka = and2(cg, icmp(cg, LLVMIntSGE, t, I(0)),
                            and2(cg, icmp(cg, LLVMIntEQ, MUL(oi[a], I(g.s[a])), ts),
                                 icmp(cg, LLVMIntSLT, oi[a], I(a ? g.OW : g.OH))));
    ok = ok ? and2(cg, ok, oka) : oka;
  }
  PoolIf in;
  if_begin(cg, &in, ok);
  LLVMValueRef tap = ADD(MUL(kk[0], I(g.k[1])), kk[1]);
  LLVMValueRef hit = icmp(cg, LLVMIntEQ, window_argmax(cg, n, &g, wi, oi[0], oi[1]), tap);
  LLVMValueRef gy = cg_elem(cg, n->args[1], at(&g, wi, oi[0], oi[1]));
  LLVMValueRef s = LLVMBuildFAdd(b, LLVMBuildLoad2(b, g.ft, acc, ""), gy, "");
  LLVMBuildStore(b, sel(cg, hit, s, LLVMBuildLoad2(b, g.ft, acc, "")), acc);
  if_end(cg, &in);
  cg_loop_end(cg, &l[1]);
  cg_loop_end(cg, &l[0]);
  return cg_round(cg, g.dt, LLVMBuildLoad2(b, g.ft, acc, ""));
}

/* Rows [r0, r1) of a plane through the element emitter. */
static void gather_rows(Cg *cg, const IrNode *n, const PoolGeo *g,
                        LLVMValueRef *idx, LLVMValueRef r0, LLVMValueRef r1) {
  CgLoop lh, lw;
  LLVMValueRef ih = cg_loop_begin(cg, &lh, r0, r1);
  LLVMValueRef iw = cg_loop_begin(cg, &lw, I(0), I(g->W));
  LLVMValueRef v = cg_max_pool2d_grad(cg, n, at(g, idx, ih, iw));
  cg_store(cg, n->res[0], at(g, idx, ih, iw), v);
  cg_loop_end(cg, &lw);
  cg_loop_end(cg, &lh);
}

/* ------------------------------------------------------ disjoint windows */

/* dx[rows [r0, r1), cols [c0, W)] = 0. */
static void zero_block(Cg *cg, const IrNode *n, const PoolGeo *g, LLVMValueRef *idx,
                       LLVMValueRef r0, LLVMValueRef r1, int64_t c0) {
  CgLoop lh, lw;
  LLVMValueRef ih = cg_loop_begin(cg, &lh, r0, r1);
  LLVMValueRef iw = cg_loop_begin(cg, &lw, I(c0), I(g->W));
  cg_store(cg, n->res[0], at(g, idx, ih, iw), LLVMConstReal(g->ft, 0));
  cg_loop_end(cg, &lw);
  cg_loop_end(cg, &lh);
}

/* Window (oh, ow) with every tap checked: dy at the argmax, 0 at the other
** taps that are inside the input and in rows [r0, r1). */
static void window_checked(Cg *cg, const IrNode *n, const PoolGeo *g,
                           LLVMValueRef *idx, LLVMValueRef oh, LLVMValueRef ow,
                           LLVMValueRef r0, LLVMValueRef r1) {
  LLVMValueRef best = window_argmax(cg, n, g, idx, oh, ow);
  LLVMValueRef gy = cg_elem(cg, n->args[1], at(g, idx, oh, ow));
  LLVMValueRef zero = LLVMConstReal(g->ft, 0);
  LLVMValueRef h0 = SUB(MUL(oh, I(g->k[0])), I(g->p[0]));
  LLVMValueRef w0 = SUB(MUL(ow, I(g->k[1])), I(g->p[1]));
  CgLoop lh, lw;
  LLVMValueRef kh = cg_loop_begin(cg, &lh, I(0), I(g->k[0]));
  LLVMValueRef ih = ADD(h0, kh);
  LLVMValueRef okh = and2(cg, icmp(cg, LLVMIntSGE, ih, r0), icmp(cg, LLVMIntSLT, ih, r1));
  LLVMValueRef kw = cg_loop_begin(cg, &lw, I(0), I(g->k[1]));
  LLVMValueRef iw = ADD(w0, kw);
  PoolIf in;
  if_begin(cg, &in, and2(cg, okh, icmp(cg, LLVMIntULT, iw, I(g->W))));
  LLVMValueRef hit = icmp(cg, LLVMIntEQ, best, ADD(MUL(kh, I(g->k[1])), kw));
  cg_store(cg, n->res[0], at(g, idx, ih, iw), sel(cg, hit, gy, zero));
  if_end(cg, &in);
  cg_loop_end(cg, &lw);
  cg_loop_end(cg, &lh);
}

/* Windows [owa, owb) of window row oh, all taps inside the input and the
** rows: the taps in straight-line code, a select chain for the first
** maximum (the first tap starts it: it is inside), then every tap written. */
static void windows_inner(Cg *cg, const IrNode *n, const PoolGeo *g,
                          LLVMValueRef *idx, LLVMValueRef oh, int64_t owa,
                          int64_t owb) {
  LLVMBuilderRef b = cg->b;
  int64_t kt = g->k[0] * g->k[1];
  LLVMValueRef v[POOL_UNROLL_TAPS], hh[POOL_UNROLL_TAPS], ww[POOL_UNROLL_TAPS];
  LLVMValueRef h0 = SUB(MUL(oh, I(g->k[0])), I(g->p[0]));
  CgLoop lw;
  LLVMValueRef ow = cg_loop_begin(cg, &lw, I(owa), I(owb));
  LLVMValueRef w0 = SUB(MUL(ow, I(g->k[1])), I(g->p[1]));
  LLVMValueRef m = NULL, bi = LLVMConstInt(cg->i32, 0, false), nan = NULL;
  for (int64_t t = 0; t < kt; t++) {
    hh[t] = ADD(h0, I(t / g->k[1]));
    ww[t] = ADD(w0, I(t % g->k[1]));
    v[t] = cg_elem(cg, n->args[0], at(g, idx, hh[t], ww[t]));
    LLVMValueRef isn = LLVMBuildFCmp(b, LLVMRealUNO, v[t], v[t], "");
    if (!m) {
      m = v[t];
      nan = isn;
      continue;
    }
    LLVMValueRef gt = LLVMBuildFCmp(b, LLVMRealOGT, v[t], m, "");
    m = sel(cg, gt, v[t], m);
    bi = sel(cg, gt, LLVMConstInt(cg->i32, (unsigned long long)t, false), bi);
    nan = LLVMBuildOr(b, nan, isn, "");
  }
  LLVMValueRef gy = cg_elem(cg, n->args[1], at(g, idx, oh, ow));
  gy = sel(cg, nan, LLVMConstReal(g->ft, 0), gy);
  for (int64_t t = 0; t < kt; t++) {
    LLVMValueRef hit = icmp(cg, LLVMIntEQ, bi, LLVMConstInt(cg->i32, (unsigned long long)t, false));
    cg_store(cg, n->res[0], at(g, idx, hh[t], ww[t]), sel(cg, hit, gy, LLVMConstReal(g->ft, 0)));
  }
  cg_loop_end(cg, &lw);
}

/* ---- f32 with unit column strides: VW windows per step, each row of
** their taps one masked vector load (KW*VW floats), split by shuffles
** into one vector per tap, and stored back the same way. */

#define POOL_VW 8

static bool vec_ok(Cg *cg, const IrNode *n, const PoolGeo *g) {
  const IrValue *v[3] = {n->args[0], n->args[1], n->res[0]};
  if (g->dt != DT_F32 || g->k[1] * POOL_VW > 64) return false;
  for (int i = 0; i < 3; i++) {
    CgVal *c = cg_val(cg, v[i]);
    if (c->inl || c->st[g->r - 1] != 1) return false;
  }
  return true;
}

static LLVMValueRef vconst_i32(Cg *cg, const int *v, int n) {
  LLVMValueRef e[64];
  for (int i = 0; i < n; i++) e[i] = cg_i32(cg, v[i]);
  return LLVMConstVector(e, (unsigned)n);
}

/* The n lanes below cnt (an i64) as an <n x i1> mask. */
static LLVMValueRef vfirst(Cg *cg, LLVMValueRef cnt, int n) {
  int io[64];
  for (int i = 0; i < n; i++) io[i] = i;
  LLVMTypeRef vi = LLVMVectorType(cg->i32, (unsigned)n);
  LLVMValueRef c = LLVMBuildTrunc(cg->b, cnt, cg->i32, "");
  c = LLVMBuildInsertElement(cg->b, LLVMGetUndef(vi), c, cg_i32(cg, 0), "");
  c = LLVMBuildShuffleVector(cg->b, c, LLVMGetUndef(vi), LLVMConstNull(vi), "");
  return icmp(cg, LLVMIntULT, vconst_i32(cg, io, n), c);
}

static LLVMValueRef vmasked(Cg *cg, const char *name, int n, LLVMTypeRef *fty) {
  LLVMTypeRef ov[2] = {LLVMVectorType(cg->f32, (unsigned)n), cg->ptr};
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  *fty = LLVMIntrinsicGetType(cg->ctx, id, ov, 2);
  return LLVMGetIntrinsicDeclaration(cg->mod, id, ov, 2);
}

/* n floats at p where mask is on (0 elsewhere); the store likewise. */
static LLVMValueRef vload(Cg *cg, LLVMValueRef p, LLVMValueRef mask, int n) {
  LLVMTypeRef fty;
  LLVMValueRef f = vmasked(cg, "llvm.masked.load", n, &fty);
  LLVMValueRef a[4] = {p, cg_i32(cg, 4), mask,
                       LLVMConstNull(LLVMVectorType(cg->f32, (unsigned)n))};
  return LLVMBuildCall2(cg->b, fty, f, a, 4, "");
}

static void vstore(Cg *cg, LLVMValueRef v, LLVMValueRef p, LLVMValueRef mask, int n) {
  LLVMTypeRef fty;
  LLVMValueRef f = vmasked(cg, "llvm.masked.store", n, &fty);
  LLVMValueRef a[4] = {v, p, cg_i32(cg, 4), mask};
  LLVMBuildCall2(cg->b, fty, f, a, 4, "");
}

/* Lanes w*kw_n + kw of o[kw] (kw_n vectors of VW): the taps of a row of
** windows back in column order. */
static LLVMValueRef vinterleave(Cg *cg, LLVMValueRef *o, int kw_n) {
  LLVMValueRef part[8];
  int np = 1, len = POOL_VW, m[64];
  while (np < kw_n) np *= 2;
  for (int i = 0; i < np; i++) part[i] = i < kw_n ? o[i] : LLVMGetUndef(LLVMTypeOf(o[0]));
  for (; np > 1; np /= 2, len *= 2) { /* concatenate pairs */
    for (int i = 0; i < 2 * len; i++) m[i] = i;
    for (int i = 0; i < np / 2; i++)
      part[i] = LLVMBuildShuffleVector(cg->b, part[2 * i], part[2 * i + 1],
                                       vconst_i32(cg, m, 2 * len), "");
  }
  for (int w = 0; w < POOL_VW; w++)
    for (int k = 0; k < kw_n; k++) m[w * kw_n + k] = k * POOL_VW + w;
  return LLVMBuildShuffleVector(cg->b, part[0], LLVMGetUndef(LLVMTypeOf(part[0])),
                                vconst_i32(cg, m, kw_n * POOL_VW), "");
}

/* windows_inner for f32 with unit column strides, POOL_VW windows a step
** (the last step masked). */
static void windows_vec(Cg *cg, const IrNode *n, const PoolGeo *g,
                        LLVMValueRef *idx, LLVMValueRef oh, int64_t owa,
                        int64_t owb) {
  LLVMBuilderRef b = cg->b;
  int KH = (int)g->k[0], KW = (int)g->k[1], L = KW * POOL_VW, m[64];
  LLVMTypeRef vi = LLVMVectorType(cg->i32, POOL_VW);
  LLVMValueRef v[POOL_UNROLL_TAPS], o[8];
  LLVMValueRef h0 = SUB(MUL(oh, I(KH)), I(g->p[0]));
  LlLoop l;
  ll_loop_begin(b, &l, I(owa), I(owb), I(POOL_VW), "v_ow");
  LLVMValueRef rem = smin(cg, SUB(I(owb), l.iv), I(POOL_VW));
  LLVMValueRef mw = vfirst(cg, rem, POOL_VW), ml = vfirst(cg, MUL(rem, I(KW)), L);
  LLVMValueRef w0 = SUB(MUL(l.iv, I(KW)), I(g->p[1]));
  for (int kh = 0; kh < KH; kh++) {
    LLVMValueRef row = vload(cg, cg_addr(cg, n->args[0], at(g, idx, ADD(h0, I(kh)), w0)), ml, L);
    for (int kw = 0; kw < KW; kw++) {
      for (int w = 0; w < POOL_VW; w++) m[w] = w * KW + kw;
      v[kh * KW + kw] = LLVMBuildShuffleVector(b, row, LLVMGetUndef(LLVMTypeOf(row)),
                                               vconst_i32(cg, m, POOL_VW), "");
    }
  }
  LLVMValueRef mx = v[0], bi = LLVMConstNull(vi);
  LLVMValueRef nan = LLVMBuildFCmp(b, LLVMRealUNO, v[0], v[0], "");
  for (int t = 1; t < KH * KW; t++) {
    LLVMValueRef gt = LLVMBuildFCmp(b, LLVMRealOGT, v[t], mx, "");
    for (int w = 0; w < POOL_VW; w++) m[w] = t;
    mx = sel(cg, gt, v[t], mx);
    bi = sel(cg, gt, vconst_i32(cg, m, POOL_VW), bi);
    nan = LLVMBuildOr(b, nan, LLVMBuildFCmp(b, LLVMRealUNO, v[t], v[t], ""), "");
  }
  LLVMValueRef zero = LLVMConstNull(LLVMTypeOf(v[0]));
  LLVMValueRef gy = vload(cg, cg_addr(cg, n->args[1], at(g, idx, oh, l.iv)), mw, POOL_VW);
  gy = sel(cg, nan, zero, gy);
  for (int kh = 0; kh < KH; kh++) {
    for (int kw = 0; kw < KW; kw++) {
      for (int w = 0; w < POOL_VW; w++) m[w] = kh * KW + kw;
      o[kw] = sel(cg, icmp(cg, LLVMIntEQ, bi, vconst_i32(cg, m, POOL_VW)), gy, zero);
    }
    vstore(cg, vinterleave(cg, o, KW),
           cg_addr(cg, n->res[0], at(g, idx, ADD(h0, I(kh)), w0)), ml, L);
  }
  ll_loop_end(b, &l);
}

/* Rows [r0, r1) of a plane, disjoint windows (stride = kernel, dilation 1). */
static void disjoint_rows(Cg *cg, const IrNode *n, const PoolGeo *g,
                          LLVMValueRef *idx, LLVMValueRef r0, LLVMValueRef r1) {
  int64_t KH = g->k[0], KW = g->k[1];
  int64_t covh = g->OH * KH - g->p[0], covw = g->OW * KW - g->p[1];
  if (covh > g->H) covh = g->H;
  if (covw > g->W) covw = g->W;
  /* windows [owa, owb) have every column inside the input */
  int64_t owb = (g->W + g->p[1]) / KW, owa = (g->p[1] + KW - 1) / KW;
  if (owb > g->OW) owb = g->OW;
  if (owa > owb) owa = owb;
  bool inner = KH * KW <= POOL_UNROLL_TAPS && owa < owb;
  /* window rows that meet [r0, r1): oh*KH - ph < r1 and oh*KH - ph + KH > r0 */
  LLVMValueRef olo = LLVMBuildUDiv(cg->b, ADD(r0, I(g->p[0])), I(KH), "");
  LLVMValueRef ohi = LLVMBuildUDiv(cg->b, ADD(r1, I(g->p[0] + KH - 1)), I(KH), "");
  CgLoop lo, lw;
  LLVMValueRef oh = cg_loop_begin(cg, &lo, olo, smin(cg, ohi, I(g->OH)));
  LLVMValueRef h0 = SUB(MUL(oh, I(KH)), I(g->p[0]));
  LLVMValueRef full = and2(cg, icmp(cg, LLVMIntSGE, h0, r0),
                           icmp(cg, LLVMIntSLE, ADD(h0, I(KH)), r1));
  if (!inner) full = LLVMConstInt(cg->i1, 0, false);
  LLVMValueRef ow = cg_loop_begin(cg, &lw, I(0), I(g->OW));
  LLVMValueRef mid = and2(cg, icmp(cg, LLVMIntSGE, ow, I(owa)), icmp(cg, LLVMIntSLT, ow, I(owb)));
  PoolIf edge;
  if_begin(cg, &edge, LLVMBuildNot(cg->b, and2(cg, full, mid), ""));
  window_checked(cg, n, g, idx, oh, ow, r0, r1);
  if_end(cg, &edge);
  cg_loop_end(cg, &lw);
  if (inner) {
    PoolIf fi;
    if_begin(cg, &fi, full);
    if (vec_ok(cg, n, g)) windows_vec(cg, n, g, idx, oh, owa, owb);
    else windows_inner(cg, n, g, idx, oh, owa, owb);
    if_end(cg, &fi);
  }
  cg_loop_end(cg, &lo);
  if (covw < g->W) zero_block(cg, n, g, idx, r0, smin(cg, r1, I(covh)), covw);
  if (covh < g->H) zero_block(cg, n, g, idx, smax(cg, r0, I(covh)), r1, 0);
}

/* ------------------------------------------------------------ the kernel */

/* Rows [begin, end) of dx [P.., H, W], plane by plane. */
void cg_max_pool2d_grad_kernel(Cg *cg, const IrNode *n, LLVMValueRef begin,
                               LLVMValueRef end) {
  PoolGeo g;
  pool_geo(cg, n, &g);
  bool disjoint = g.s[0] == g.k[0] && g.s[1] == g.k[1] && g.d[0] == 1 && g.d[1] == 1;
  LLVMBuilderRef b = cg->b;
  LLVMValueRef H = I(g.H), idx[IR_MAX_RANK];
  LLVMValueRef p0 = LLVMBuildUDiv(b, begin, H, "");
  LLVMValueRef p1 = LLVMBuildUDiv(b, ADD(end, I(g.H - 1)), H, "");
  CgLoop lp;
  LLVMValueRef p = cg_loop_begin(cg, &lp, p0, p1);
  LLVMValueRef base = MUL(p, H);
  cg_row_index(cg, &n->args[0]->type, base, idx); /* leading indices, h = 0 */
  LLVMValueRef r0 = smax(cg, SUB(begin, base), I(0));
  LLVMValueRef r1 = smin(cg, SUB(end, base), H);
  if (disjoint) disjoint_rows(cg, n, &g, idx, r0, r1);
  else gather_rows(cg, n, &g, idx, r0, r1);
  cg_loop_end(cg, &lp);
}
