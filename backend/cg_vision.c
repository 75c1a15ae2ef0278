/*
** This file contains the element emitters of the vision ops (NCHW / NCL,
** PyTorch semantics as ir/interp_nn.c): conv1d/conv2d (direct: one output
** element is a loop over the input channels of its group and the kernel
** taps), conv_transpose2d as the adjoint (gathering the taps whose stride
** divides), max/avg pooling, nearest and bilinear upsampling, pixel
** shuffle and unshuffle.  Taps outside the input read an in-range
** element and are masked (select), so every load is in bounds.  f32
** convolutions with one group over materialised operands go instead to
** the packed SGEMM: im2col + SGEMM for conv1d/conv2d (out[n] = W·col or
** out[n]ᵀ = colᵀ·Wᵀ, whichever fills the SGEMM's tiles better), or the
** tap form (one SGEMM per sample of the conv's channel axis, in the
** orientation a cost model prefers, im2col writing the SGEMM's packed A
** when it can) when the kernel has more taps than the output has
** positions - the weight gradient; SGEMM + col2im for conv_transpose2d
** (cg_conv_gemm_emit, at the end).
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cg_int.h"
#include "llvm_util.h"

#define ADD(x, y) LLVMBuildNSWAdd(cg->b, x, y, "")
#define MUL(x, y) LLVMBuildNSWMul(cg->b, x, y, "")
#define SUB(x, y) LLVMBuildNSWSub(cg->b, x, y, "")
#define I(v) cg_i64(cg, v)

typedef struct Geo {
  int sr;                 /* spatial rank 1 or 2 */
  int64_t N, C, H, W, O, KH, KW, groups;
  int64_t sh, sw, ph, pw, dh, dw;
} Geo;

static void conv_geo(const IrNode *n, Geo *g) {
  g->sr = n->op == IR_OP_CONV1D ? 1 : 2;
  const IrType *x = &n->args[0]->type, *w = &n->args[1]->type;
  int64_t s[2], p[2], d[2];
  cg_attr_ivec(n, "stride", g->sr, 1, s);
  cg_attr_ivec(n, "padding", g->sr, 0, p);
  cg_attr_ivec(n, "dilation", g->sr, 1, d);
  int h = g->sr == 2 ? 0 : -1, wi = g->sr - 1;
  g->sh = h < 0 ? 1 : s[h];
  g->ph = h < 0 ? 0 : p[h];
  g->dh = h < 0 ? 1 : d[h];
  g->sw = s[wi];
  g->pw = p[wi];
  g->dw = d[wi];
  g->groups = ir_attr_int(&n->attrs, "groups", 1);
  g->N = x->dim[0];
  g->C = x->dim[1];
  g->H = g->sr == 2 ? x->dim[2] : 1;
  g->W = x->dim[g->sr + 1];
  g->KH = g->sr == 2 ? w->dim[2] : 1;
  g->KW = w->dim[g->sr + 1];
}

/* x or w index from (a, b, h, w) for spatial rank sr. */
static void idx4(const Geo *g, LLVMValueRef a, LLVMValueRef b, LLVMValueRef h,
                 LLVMValueRef w, LLVMValueRef *out) {
  out[0] = a;
  out[1] = b;
  if (g->sr == 2) {
    out[2] = h;
    out[3] = w;
  } else {
    out[2] = w;
  }
}

/* v in [0, n): the condition, and v clamped to 0 when outside. */
static LLVMValueRef in_range(Cg *cg, LLVMValueRef v, int64_t n, LLVMValueRef *safe) {
  LLVMValueRef ok = LLVMBuildICmp(cg->b, LLVMIntULT, v, I(n), "");
  *safe = LLVMBuildSelect(cg->b, ok, v, I(0), "");
  return ok;
}

LLVMValueRef cg_conv(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  Geo g;
  conv_geo(n, &g);
  g.O = n->args[1]->type.dim[0];
  DType dt = n->res[0]->type.dtype;
  LLVMTypeRef ft = cg_ctype(cg, dt);
  LLVMBuilderRef b = cg->b;
  int64_t Cg_ = g.C / g.groups, Og = g.O / g.groups;
  LLVMValueRef nn = idx[0], o = idx[1];
  LLVMValueRef oh = g.sr == 2 ? idx[2] : I(0), ow = idx[g.sr + 1];
  LLVMValueRef c0 = MUL(LLVMBuildSDiv(b, o, I(Og), ""), I(Cg_));
  LLVMValueRef acc = cg_alloca(cg, ft, "v_acc");
  LLVMBuildStore(b, LLVMConstReal(ft, 0), acc);
  CgLoop lc, lh, lw;
  LLVMValueRef c = cg_loop_begin(cg, &lc, I(0), I(Cg_));
  LLVMValueRef kh = cg_loop_begin(cg, &lh, I(0), I(g.KH));
  LLVMValueRef ih, ihs, iw, iws;
  ih = ADD(SUB(MUL(oh, I(g.sh)), I(g.ph)), MUL(kh, I(g.dh)));
  LLVMValueRef okh = in_range(cg, ih, g.H, &ihs);
  LLVMValueRef kw = cg_loop_begin(cg, &lw, I(0), I(g.KW));
  iw = ADD(SUB(MUL(ow, I(g.sw)), I(g.pw)), MUL(kw, I(g.dw)));
  LLVMValueRef ok = LLVMBuildAnd(b, okh, in_range(cg, iw, g.W, &iws), "");
  LLVMValueRef xi[4], wi[4];
  idx4(&g, nn, ADD(c0, c), ihs, iws, xi);
  idx4(&g, o, c, kh, kw, wi);
  LLVMValueRef x = cg_elem(cg, n->args[0], xi), w = cg_elem(cg, n->args[1], wi);
  LLVMValueRef p = LLVMBuildSelect(b, ok, cg_fm(LLVMBuildFMul(b, x, w, ""), false),
                                   LLVMConstReal(ft, 0), "");
  LLVMBuildStore(b, cg_fm(LLVMBuildFAdd(b, LLVMBuildLoad2(b, ft, acc, ""), p, ""), true), acc);
  cg_loop_end(cg, &lw);
  cg_loop_end(cg, &lh);
  cg_loop_end(cg, &lc);
  LLVMValueRef r = LLVMBuildLoad2(b, ft, acc, "");
  if (n->nargs > 2) r = LLVMBuildFAdd(b, r, cg_elem(cg, n->args[2], &o), "");
  return cg_round(cg, dt, r);
}

/* The input position whose tap k reaches output position out: (out + p -
** k*d) / s when divisible and in [0, n). */
static LLVMValueRef tap_src(Cg *cg, LLVMValueRef out, LLVMValueRef k, int64_t p,
                            int64_t d, int64_t s, int64_t n, LLVMValueRef *safe) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef num = SUB(ADD(out, I(p)), MUL(k, I(d)));
  LLVMValueRef div = LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildSRem(b, num, I(s), ""), I(0), "");
  LLVMValueRef pos = LLVMBuildICmp(b, LLVMIntSGE, num, I(0), "");
  LLVMValueRef q = LLVMBuildSDiv(b, num, I(s), "");
  LLVMValueRef ok = LLVMBuildAnd(b, LLVMBuildAnd(b, div, pos, ""),
                                 in_range(cg, q, n, safe), "");
  *safe = LLVMBuildSelect(b, ok, *safe, I(0), "");
  return ok;
}

LLVMValueRef cg_conv_transpose2d(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  Geo g;
  conv_geo(n, &g);
  g.O = n->args[1]->type.dim[1] * g.groups;
  DType dt = n->res[0]->type.dtype;
  LLVMTypeRef ft = cg_ctype(cg, dt);
  LLVMBuilderRef b = cg->b;
  int64_t Cg_ = g.C / g.groups, Og = g.O / g.groups;
  LLVMValueRef nn = idx[0], o = idx[1], oh = idx[2], ow = idx[3];
  LLVMValueRef grp = LLVMBuildSDiv(b, o, I(Og), ""), ol = LLVMBuildSRem(b, o, I(Og), "");
  LLVMValueRef acc = cg_alloca(cg, ft, "v_acc");
  LLVMBuildStore(b, LLVMConstReal(ft, 0), acc);
  CgLoop lc, lh, lw;
  LLVMValueRef cl = cg_loop_begin(cg, &lc, I(0), I(Cg_));
  LLVMValueRef c = ADD(MUL(grp, I(Cg_)), cl);
  LLVMValueRef kh = cg_loop_begin(cg, &lh, I(0), I(g.KH));
  LLVMValueRef ihs, iws;
  LLVMValueRef okh = tap_src(cg, oh, kh, g.ph, g.dh, g.sh, g.H, &ihs);
  LLVMValueRef kw = cg_loop_begin(cg, &lw, I(0), I(g.KW));
  LLVMValueRef ok = LLVMBuildAnd(b, okh, tap_src(cg, ow, kw, g.pw, g.dw, g.sw, g.W, &iws), "");
  LLVMValueRef xi[4] = {nn, c, ihs, iws}, wi[4] = {c, ol, kh, kw};
  LLVMValueRef x = cg_elem(cg, n->args[0], xi), w = cg_elem(cg, n->args[1], wi);
  LLVMValueRef p = LLVMBuildSelect(b, ok, cg_fm(LLVMBuildFMul(b, x, w, ""), false),
                                   LLVMConstReal(ft, 0), "");
  LLVMBuildStore(b, cg_fm(LLVMBuildFAdd(b, LLVMBuildLoad2(b, ft, acc, ""), p, ""), true), acc);
  cg_loop_end(cg, &lw);
  cg_loop_end(cg, &lh);
  cg_loop_end(cg, &lc);
  LLVMValueRef r = LLVMBuildLoad2(b, ft, acc, "");
  if (n->nargs > 2) r = LLVMBuildFAdd(b, r, cg_elem(cg, n->args[2], &o), "");
  return cg_round(cg, dt, r);
}

/* max_pool2d / avg_pool2d over the last two dims. */
LLVMValueRef cg_pool2d(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  const IrType *xt = &n->args[0]->type;
  int r = xt->rank;
  bool is_max = n->op == IR_OP_MAX_POOL2D;
  int64_t k[2], s[2], p[2], d[2];
  cg_attr_ivec(n, "kernel", 2, 1, k);
  cg_attr_ivec(n, "stride", 2, 0, s);
  cg_attr_ivec(n, "padding", 2, 0, p);
  cg_attr_ivec(n, "dilation", 2, 1, d);
  if (!ir_attr_get(&n->attrs, "stride")) {
    s[0] = k[0];
    s[1] = k[1];
  }
  if (!is_max) d[0] = d[1] = 1;
  int64_t H = xt->dim[r - 2], W = xt->dim[r - 1];
  DType dt = n->res[0]->type.dtype;
  LLVMTypeRef ft = ir_dtype_is_float(dt) ? cg_ctype(cg, dt) : cg->f64;
  LLVMBuilderRef b = cg->b;
  LLVMValueRef h0 = SUB(MUL(idx[r - 2], I(s[0])), I(p[0]));
  LLVMValueRef w0 = SUB(MUL(idx[r - 1], I(s[1])), I(p[1]));
  LLVMValueRef acc = cg_alloca(cg, ft, "v_acc"), cnt = cg_alloca(cg, cg->i64, "v_cnt");
  LLVMBuildStore(b, LLVMConstReal(ft, is_max ? -INFINITY : 0), acc);
  LLVMBuildStore(b, I(0), cnt);
  CgLoop lh, lw;
  LLVMValueRef kh = cg_loop_begin(cg, &lh, I(0), I(k[0]));
  LLVMValueRef ihs, iws;
  LLVMValueRef okh = in_range(cg, ADD(h0, MUL(kh, I(d[0]))), H, &ihs);
  LLVMValueRef kw = cg_loop_begin(cg, &lw, I(0), I(k[1]));
  LLVMValueRef ok = LLVMBuildAnd(b, okh, in_range(cg, ADD(w0, MUL(kw, I(d[1]))), W, &iws), "");
  LLVMValueRef xi[IR_MAX_RANK];
  for (int j = 0; j < r - 2; j++) xi[j] = idx[j];
  xi[r - 2] = ihs;
  xi[r - 1] = iws;
  LLVMValueRef v = cg_to_fp(cg, cg_elem(cg, n->args[0], xi), xt->dtype, ft);
  LLVMValueRef a = LLVMBuildLoad2(b, ft, acc, ""), na;
  if (is_max) {
    LLVMValueRef up = LLVMBuildOr(b, LLVMBuildFCmp(b, LLVMRealOGT, v, a, ""),
                                  LLVMBuildFCmp(b, LLVMRealUNO, v, v, ""), "");
    na = LLVMBuildSelect(b, LLVMBuildAnd(b, ok, up, ""), v, a, "");
  } else {
    na = LLVMBuildSelect(b, ok, LLVMBuildFAdd(b, a, v, ""), a, "");
  }
  LLVMBuildStore(b, na, acc);
  LLVMBuildStore(b, ADD(LLVMBuildLoad2(b, cg->i64, cnt, ""), LLVMBuildZExt(b, ok, cg->i64, "")), cnt);
  cg_loop_end(cg, &lw);
  cg_loop_end(cg, &lh);
  LLVMValueRef res = LLVMBuildLoad2(b, ft, acc, "");
  if (!is_max) {
    LLVMValueRef he = ADD(h0, I(k[0])), we = ADD(w0, I(k[1]));
    LLVMValueRef hl = I(H + p[0]), wl = I(W + p[1]);
    he = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, he, hl, ""), hl, he, "");
    we = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, we, wl, ""), wl, we, "");
    LLVMValueRef div = ir_attr_bool(&n->attrs, "count_include_pad", true)
                           ? MUL(SUB(he, h0), SUB(we, w0))
                           : LLVMBuildLoad2(b, cg->i64, cnt, "");
    LLVMValueRef q = LLVMBuildFDiv(b, res, LLVMBuildSIToFP(b, div, ft, ""), "");
    res = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, div, I(0), ""), q,
                          LLVMConstReal(ft, NAN), "");
  }
  return cg_convert(cg, res, ft == cg->f64 ? DT_F64 : DT_F32, dt);
}

LLVMValueRef cg_upsample_nearest(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  const IrType *xt = &n->args[0]->type, *yt = &n->res[0]->type;
  int r = xt->rank;
  LLVMValueRef xi[IR_MAX_RANK];
  for (int j = 0; j < r - 2; j++) xi[j] = idx[j];
  for (int a = r - 2; a < r; a++) {
    LLVMValueRef s = LLVMBuildSDiv(cg->b, MUL(idx[a], I(xt->dim[a])), I(yt->dim[a]), "");
    LLVMValueRef hi = I(xt->dim[a] - 1);
    xi[a] = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGT, s, hi, ""), hi, s, "");
  }
  return cg_elem(cg, n->args[0], xi);
}

/* Linear source index (interp_nn.c lin_src) in f64: i0, i1, lambda. */
static void lin_src(Cg *cg, LLVMValueRef dst, int64_t in, int64_t out, bool ac,
                    LLVMValueRef *i0, LLVMValueRef *i1, LLVMValueRef *lam) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef d = cg->f64;
  LLVMValueRef fd = LLVMBuildSIToFP(b, dst, d, ""), src;
  if (ac) {
    double scale = out > 1 ? (double)(in - 1) / (double)(out - 1) : 0;
    src = LLVMBuildFMul(b, LLVMConstReal(d, scale), fd, "");
  } else {
    src = LLVMBuildFMul(b, LLVMConstReal(d, (double)in / (double)out),
                        LLVMBuildFAdd(b, fd, LLVMConstReal(d, 0.5), ""), "");
    src = LLVMBuildFSub(b, src, LLVMConstReal(d, 0.5), "");
    src = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, src, LLVMConstReal(d, 0), ""),
                          LLVMConstReal(d, 0), src, "");
  }
  LLVMValueRef a = LLVMBuildFPToSI(b, src, cg->i64, ""), hi = I(in - 1);
  a = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, a, hi, ""), hi, a, "");
  LLVMValueRef a1 = ADD(a, I(1));
  *i1 = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, a1, I(in), ""), a1, hi, "");
  *i0 = a;
  *lam = LLVMBuildFSub(b, src, LLVMBuildSIToFP(b, a, d, ""), "");
}

LLVMValueRef cg_upsample_bilinear(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  const IrType *xt = &n->args[0]->type, *yt = &n->res[0]->type;
  int r = xt->rank;
  bool ac = ir_attr_bool(&n->attrs, "align_corners", false);
  LLVMBuilderRef b = cg->b;
  LLVMValueRef h0, h1, lh, w0, w1, lw, xi[IR_MAX_RANK];
  lin_src(cg, idx[r - 2], xt->dim[r - 2], yt->dim[r - 2], ac, &h0, &h1, &lh);
  lin_src(cg, idx[r - 1], xt->dim[r - 1], yt->dim[r - 1], ac, &w0, &w1, &lw);
  for (int j = 0; j < r - 2; j++) xi[j] = idx[j];
  LLVMValueRef v[4], hs[2] = {h0, h1}, ws[2] = {w0, w1};
  for (int q = 0; q < 4; q++) {
    xi[r - 2] = hs[q / 2];
    xi[r - 1] = ws[q % 2];
    v[q] = cg_to_fp(cg, cg_elem(cg, n->args[0], xi), xt->dtype, cg->f64);
  }
  LLVMValueRef one = LLVMConstReal(cg->f64, 1);
  LLVMValueRef mlw = LLVMBuildFSub(b, one, lw, ""), mlh = LLVMBuildFSub(b, one, lh, "");
  LLVMValueRef top = LLVMBuildFAdd(b, LLVMBuildFMul(b, mlw, v[0], ""), LLVMBuildFMul(b, lw, v[1], ""), "");
  LLVMValueRef bot = LLVMBuildFAdd(b, LLVMBuildFMul(b, mlw, v[2], ""), LLVMBuildFMul(b, lw, v[3], ""), "");
  LLVMValueRef res = LLVMBuildFAdd(b, LLVMBuildFMul(b, mlh, top, ""), LLVMBuildFMul(b, lh, bot, ""), "");
  return cg_convert(cg, res, DT_F64, yt->dtype);
}

LLVMValueRef cg_pixel_shuffle(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  int64_t r = ir_attr_int(&n->attrs, "r", 1);
  int rk = n->res[0]->type.rank;
  LLVMBuilderRef b = cg->b;
  LLVMValueRef xi[IR_MAX_RANK];
  for (int j = 0; j < rk - 3; j++) xi[j] = idx[j];
  LLVMValueRef c = idx[rk - 3], y = idx[rk - 2], x = idx[rk - 1], R = I(r);
  if (n->op == IR_OP_PIXEL_SHUFFLE) {
    LLVMValueRef i = LLVMBuildSRem(b, y, R, ""), j = LLVMBuildSRem(b, x, R, "");
    xi[rk - 3] = ADD(MUL(c, I(r * r)), ADD(MUL(i, R), j));
    xi[rk - 2] = LLVMBuildSDiv(b, y, R, "");
    xi[rk - 1] = LLVMBuildSDiv(b, x, R, "");
  } else {
    LLVMValueRef cc = LLVMBuildSDiv(b, c, I(r * r), "");
    LLVMValueRef i = LLVMBuildSRem(b, LLVMBuildSDiv(b, c, R, ""), R, "");
    LLVMValueRef j = LLVMBuildSRem(b, c, R, "");
    xi[rk - 3] = cc;
    xi[rk - 2] = ADD(MUL(y, R), i);
    xi[rk - 1] = ADD(MUL(x, R), j);
  }
  return cg_elem(cg, n->args[0], xi);
}

/* ceil(a / s) and floor(a / s) for s > 0. */
static LLVMValueRef ceil_div(Cg *cg, LLVMValueRef a, int64_t s) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef pos = LLVMBuildSDiv(b, ADD(a, I(s - 1)), I(s), "");
  LLVMValueRef neg = LLVMBuildNeg(b, LLVMBuildSDiv(b, LLVMBuildNeg(b, a, ""), I(s), ""), "");
  return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGE, a, I(0), ""), pos, neg, "");
}

static LLVMValueRef floor_div(Cg *cg, LLVMValueRef a, int64_t s) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef pos = LLVMBuildSDiv(b, a, I(s), "");
  LLVMValueRef neg = LLVMBuildNeg(b, LLVMBuildSDiv(b, ADD(LLVMBuildNeg(b, a, ""), I(s - 1)), I(s), ""), "");
  return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGE, a, I(0), ""), pos, neg, "");
}

static LLVMValueRef smax(Cg *cg, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGT, a, b, ""), a, b, "");
}
static LLVMValueRef smin(Cg *cg, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, a, b, ""), a, b, "");
}

/* conv1d/conv2d kernel over output rows y[n, o, oh, :]: the row starts at
** the bias, then for every input channel of the group and every tap
** (kh, kw) adds w * x over the range of ow whose input column is inside
** the image - a contiguous loop over ow when the stride is 1, which
** vectorises.  Results other than f32/f64 use the element emitter. */
void cg_conv_kernel(Cg *cg, const IrNode *n, LLVMValueRef begin, LLVMValueRef end) {
  const IrType *yt = &n->res[0]->type;
  DType dt = yt->dtype;
  LLVMBuilderRef b = cg->b;
  LLVMValueRef idx[IR_MAX_RANK];
  CgLoop lr, lo, lc, lh, lw;
  LLVMValueRef row = cg_loop_begin(cg, &lr, begin, end);
  cg_row_index(cg, yt, row, idx);
  if (dt != DT_F32 && dt != DT_F64) {
    idx[yt->rank - 1] = cg_loop_begin(cg, &lo, I(0), I(cg_cols(yt)));
    cg_store(cg, n->res[0], idx, cg_conv(cg, n, idx));
    cg_loop_end(cg, &lo);
    cg_loop_end(cg, &lr);
    return;
  }
  Geo g;
  conv_geo(n, &g);
  g.O = n->args[1]->type.dim[0];
  LLVMTypeRef ft = cg_ctype(cg, dt);
  int64_t Cg_ = g.C / g.groups, Og = g.O / g.groups, OW = cg_cols(yt);
  LLVMValueRef nn = idx[0], o = idx[1], oh = g.sr == 2 ? idx[2] : I(0);
  LLVMValueRef init = n->nargs > 2 ? cg_elem(cg, n->args[2], &o) : LLVMConstReal(ft, 0);
  idx[yt->rank - 1] = cg_loop_begin(cg, &lo, I(0), I(OW));
  LLVMBuildStore(b, init, cg_addr(cg, n->res[0], idx));
  cg_loop_end(cg, &lo);
  LLVMValueRef c0 = MUL(LLVMBuildSDiv(b, o, I(Og), ""), I(Cg_));
  LLVMValueRef c = cg_loop_begin(cg, &lc, I(0), I(Cg_));
  LLVMValueRef kh = cg_loop_begin(cg, &lh, I(0), I(g.KH));
  LLVMValueRef ih = ADD(SUB(MUL(oh, I(g.sh)), I(g.ph)), MUL(kh, I(g.dh))), ihs;
  LLVMValueRef okh = in_range(cg, ih, g.H, &ihs);
  LLVMValueRef kw = cg_loop_begin(cg, &lw, I(0), I(g.KW));
  LLVMValueRef wi[4];
  idx4(&g, o, c, kh, kw, wi);
  LLVMValueRef w = cg_elem(cg, n->args[1], wi);
  /* ow in [lo, hi): 0 <= ow*sw - pw + kw*dw < W */
  LLVMValueRef t = SUB(I(g.pw), MUL(kw, I(g.dw)));
  LLVMValueRef owl = smax(cg, I(0), ceil_div(cg, t, g.sw));
  LLVMValueRef owh = smin(cg, I(OW), ADD(floor_div(cg, ADD(t, I(g.W - 1)), g.sw), I(1)));
  owh = LLVMBuildSelect(b, okh, owh, owl, "");
  LLVMValueRef ow = cg_loop_begin(cg, &lo, owl, owh);
  LLVMValueRef iw = ADD(SUB(MUL(ow, I(g.sw)), I(g.pw)), MUL(kw, I(g.dw)));
  LLVMValueRef xi[4];
  idx4(&g, nn, ADD(c0, c), ihs, iw, xi);
  idx[yt->rank - 1] = ow;
  LLVMValueRef ya = cg_addr(cg, n->res[0], idx);
  LLVMValueRef p = cg_fm(LLVMBuildFMul(b, cg_elem(cg, n->args[0], xi), w, ""), false);
  LLVMBuildStore(b, cg_fm(LLVMBuildFAdd(b, LLVMBuildLoad2(b, ft, ya, ""), p, ""), false), ya);
  cg_loop_end(cg, &lo);
  cg_loop_end(cg, &lw);
  cg_loop_end(cg, &lh);
  cg_loop_end(cg, &lc);
  cg_loop_end(cg, &lr);
}

/* ------------------------------------------------- im2col + SGEMM (f32) */

/* conv_transpose2d (x[n] a C × HW matrix, w [C, O·KH·KW]) is col (O·KH·KW
** × HW) = wᵀ · x[n] by the SGEMM (A transposed), then col2im adds col into
** out[n] filled with the bias.
**
** An f32 conv1d/conv2d with one group over materialised operands, as
** out[n] (O × P, P = OH·OW) = W (O × CKK) · col (CKK × P) per sample,
** col[(c·KH + kh)·KW + kw][oh·OW + ow] = x[n, c, ih, iw] (0 outside the
** image) built in scratch.  The bias is written into out[n] first and the
** SGEMM accumulates (beta 1).  Samples are split into up to CONV_CHUNKS
** chunks run by nnrt_parallel_for, each with its own col buffer and SGEMM
** work (the SGEMM's own parallel loop then runs serially); a single chunk
** calls the body directly so the SGEMM parallelises over O. */
enum { CONV_CHUNKS = 4 };

typedef struct ConvGemm {
  Geo g;
  bool tr;                /* conv_transpose2d: SGEMM, then col2im */
  bool taps;              /* the tap form (conv_taps_geo): g is swapped */
  bool tout;              /* conv: out[n]ᵀ = colᵀ · Wᵀ (conv_tout) */
  bool tcol;              /* taps: Tᵀ (A·U·V × B) += col · w[:, n]ᵀ */
  bool apk;               /* taps, tcol: im2col writes the SGEMM's packed A */
  int64_t OH, OW, P, CKK, lda, ldx, nch, colf, workf;
  int64_t cs;             /* float distance of col's rows (P, or KC when apk) */
  int64_t tf;             /* taps: floats of one chunk's partial sum;
                             tout: of one chunk's out[n]ᵀ (P × O) */
  int64_t wtf;            /* tout: floats of Wᵀ (CKK × O), shared, first */
} ConvGemm;

/* The weight as an O × CKK row-major matrix: its leading stride, or -1. */
static int64_t weight_lda(const CgVal *w, const IrType *t) {
  int64_t st = 1;
  for (int k = t->rank - 1; k >= 1; k--) {
    if (w->st[k] != st && t->dim[k] != 1) return -1;
    st *= t->dim[k];
  }
  return t->dim[0] == 1 ? st : w->st[0] >= st ? w->st[0] : -1;
}

static int64_t round16(int64_t v) { return (v + 15) & ~(int64_t)15; }

/* The share of an M × N product that the SGEMM's MR × NR tiles do not
** waste on padding. */
static double tile_use(int64_t M, int64_t N, int mr, int nr) {
  return (double)(M * N) / (double)(((M + mr - 1) / mr * mr) * ((N + nr - 1) / nr * nr));
}

/* Whether conv1d/conv2d computes out[n]ᵀ (P × O) = colᵀ · Wᵀ instead of
** out[n] = W · col: when the output positions P fill the SGEMM's MR-row
** tiles and the channels O its NR-column tiles better than the other way
** round (fashion_cnn: O = 64 and P = 196 = 14·14 for 14×32 tiles, 80% of
** the tiles' work used against 100%), by enough to pay for the transpose
** of the product: the vector multiply-adds saved per element of out[n],
** K/W·(1/use(O, P) - 1/use(P, O)), exceed 2 (measured: fashion_cnn's
** second conv, K = 800, gains 15%; its first, K = 25, loses 30%).  The
** SGEMM then reads col as a transposed A (its packing copies MR adjacent
** floats per k) and Wᵀ from a copy made once per call; out[n] = bias +
** the transpose of the product. */
static bool conv_tout(Cg *cg, const ConvGemm *cv) {
  int mr, nr, kc;
  cg_sgemm_tile(cg, &mr, &nr, &kc);
  double ua = tile_use(cv->g.O, cv->P, mr, nr), ub = tile_use(cv->P, cv->g.O, mr, nr);
  return (double)cv->CKK / cg->vec_floats * (1 / ua - 1 / ub) > 2;
}

/* The tap form of conv1d/conv2d, for a kernel with more taps than the
** output has positions (I·J > U·V) - the weight gradient, which autodiff
** writes as conv2d(x [C,N,H,W], dy [O,N,OH,OW]) with both operands
** transposed views.  With x [A, Nn, H, W], w [B, Nn, I, J], y [A, B, U, V]:
**
**   y[a, b, u, v] = Σ_n Σ_(i,j) w[b, n, i, j] · x[a, n, u·sh - ph + i·dh, ..]
**
** so per n, T (B × A·U·V) += w[:, n] (B × I·J, rows contiguous) ·
** colᵀ with col[(a·U + u)·V + v][i·J + j] = x[a, n, ..]: the im2col of the
** forward convolution of x[:, n] by a U×V kernel whose stride is this
** conv's dilation and whose dilation is its stride.  cv->g is that
** swapped geometry (N = Nn, C = A, KH×KW = U×V, O = B; OH×OW = I×J).
** Samples n are split into up to CONV_CHUNKS chunks, each summing into
** its own T; y is then bias + the chunks' T in chunk order (the chunks
** depend on Nn only, so the sums do not change with the thread count). */
/* The cycles, roughly, of one sample's SGEMM M × N × K in the tap form
** with op(B) stored N × K: vector multiply-adds over the tiles, the
** transposing copy of op(B) into its panels (a float a cycle) and the copy
** of A unless im2col writes it packed (a vector a cycle).  The tap form
** takes the orientation that costs less: fashion_cnn's second conv, T
** 64 × 800 by 196 taps, packs 12544 floats of dy transposed instead of
** the 156800 of col (measured 20 -> 14 ms for the batch of 64). */
static double taps_cost(int64_t M, int64_t N, int64_t K, bool pack_a, int mr, int nr, int w) {
  double fma = (double)(M * N * K) / w / tile_use(M, N, mr, nr);
  return fma + (double)(N * K) + (pack_a ? (double)(M * K) / w : 0);
}

static bool conv_taps_geo(Cg *cg, const IrNode *n, ConvGemm *cv) {
  const Geo f = cv->g;
  const IrType *yt = &n->res[0]->type;
  int64_t I = f.KH, J = f.KW, U = f.sr == 2 ? yt->dim[2] : 1, V = yt->dim[f.sr + 1];
  int64_t A = f.N, Nn = f.C, B = n->args[1]->type.dim[0];
  if (I * J <= U * V || A * U * V == 0 || B == 0 || Nn == 0) return false;
  const int64_t *ws = cg_val(cg, n->args[1])->st;
  if ((ws[f.sr + 1] != 1 && J != 1) || (f.sr == 2 && ws[2] != J && I != 1)) return false;
  cv->lda = B == 1 ? I * J : ws[0];
  if (cv->lda < I * J) return false;
  Geo *g = &cv->g;
  g->N = Nn;
  g->C = A;
  g->KH = U;
  g->KW = V;
  g->O = B;
  g->sh = f.dh;
  g->sw = f.dw;
  g->dh = f.sh;
  g->dw = f.sw;
  cv->taps = true;
  cv->OH = I;
  cv->OW = J;
  cv->P = I * J;
  cv->CKK = A * U * V;
  cv->nch = Nn < CONV_CHUNKS ? Nn : CONV_CHUNKS;
  cv->tf = round16(B * cv->CKK);
  int mr, nr, kc;
  cg_sgemm_tile(cg, &mr, &nr, &kc);
  cv->apk = cv->P <= kc;
  cv->tcol = taps_cost(cv->CKK, B, cv->P, !cv->apk, mr, nr, cg->vec_floats) <
             taps_cost(B, cv->CKK, cv->P, true, mr, nr, cg->vec_floats);
  cv->apk &= cv->tcol;
  cv->cs = cv->apk ? kc : cv->P;
  cv->colf = round16((cv->apk ? (cv->CKK + mr - 1) / mr * mr : cv->CKK) * cv->cs);
  if (cv->apk)
    cg_sgemm_apacked_fn(cg, false, true, cv->CKK, B, cv->P, &cv->workf);
  else if (cv->tcol)
    cg_sgemm_fn(cg, false, true, cv->CKK, B, cv->P, &cv->workf);
  else
    cg_sgemm_fn(cg, false, true, B, cv->CKK, cv->P, &cv->workf);
  cv->workf = round16(cv->workf);
  return true;
}

static bool conv_gemm_geo(Cg *cg, const IrNode *n, ConvGemm *cv) {
  const IrType *yt = &n->res[0]->type, *xt = &n->args[0]->type;
  if (yt->dtype != DT_F32 || xt->dtype != DT_F32 ||
      n->args[1]->type.dtype != DT_F32 || ir_attr_int(&n->attrs, "groups", 1) != 1)
    return false;
  for (int i = 0; i < n->nargs; i++)
    if (cg_val(cg, n->args[i])->inl) return false;
  CgVal *y = cg_val(cg, n->res[0]);
  if (y->inl || y->kind == CGB_VIEW) return false;
  cv->tr = n->op == IR_OP_CONV_TRANSPOSE2D;
  cv->taps = cv->tout = cv->tcol = cv->apk = false;
  cv->tf = cv->wtf = 0;
  conv_geo(n, &cv->g);
  if (n->nargs > 2) {
    const CgVal *bv = cg_val(cg, n->args[2]);
    if (n->args[2]->type.dtype != DT_F32 ||
        (n->args[2]->type.dim[0] > 1 && bv->st[0] != 1))
      return false;
  }
  if (!cv->tr && conv_taps_geo(cg, n, cv)) return true;
  cv->g.O = n->args[1]->type.dim[cv->tr ? 1 : 0];
  cv->OH = cv->g.sr == 2 ? yt->dim[2] : 1;
  cv->OW = yt->dim[cv->g.sr + 1];
  cv->P = cv->cs = cv->OH * cv->OW;
  cv->CKK = (cv->tr ? cv->g.O : cv->g.C) * cv->g.KH * cv->g.KW;
  cv->lda = weight_lda(cg_val(cg, n->args[1]), &n->args[1]->type);
  if (cv->lda < 0 || cv->P == 0 || cv->CKK == 0 || cv->g.O == 0 || cv->g.N == 0 ||
      cv->g.C == 0)
    return false;
  cv->nch = cv->g.N < CONV_CHUNKS ? cv->g.N : CONV_CHUNKS;
  if (cv->tr) {
    /* x[n] as a C × HW matrix: the spatial dims contiguous */
    const int64_t *xs = cg_val(cg, n->args[0])->st;
    int64_t HW = cv->g.H * cv->g.W;
    if ((xs[3] != 1 && cv->g.W != 1) || (xs[2] != cv->g.W && cv->g.H != 1) || HW == 0)
      return false;
    cv->ldx = cv->g.C == 1 ? HW : xs[1];
    if (cv->ldx < HW) return false;
    cv->colf = round16(cv->CKK * HW);
    cg_sgemm_fn(cg, true, false, cv->CKK, HW, cv->g.C, &cv->workf);
  } else if ((cv->tout = conv_tout(cg, cv))) {
    cv->colf = round16(cv->CKK * cv->P);
    cv->tf = round16(cv->P * cv->g.O);
    cv->wtf = round16(cv->CKK * cv->g.O);
    cg_sgemm_fn(cg, true, false, cv->P, cv->g.O, cv->CKK, &cv->workf);
  } else {
    cv->colf = round16(cv->CKK * cv->P);
    cg_sgemm_fn(cg, false, false, cv->g.O, cv->P, cv->CKK, &cv->workf);
  }
  cv->workf = round16(cv->workf);
  return true;
}

bool cg_conv_gemm_ok(Cg *cg, const IrNode *n) {
  ConvGemm cv;
  return conv_gemm_geo(cg, n, &cv);
}

int64_t cg_conv_gemm_work(Cg *cg, const IrNode *n) {
  ConvGemm cv;
  NNC_ASSERT(conv_gemm_geo(cg, n, &cv));
  return cv.wtf + cv.nch * (cv.tf + cv.colf + cv.workf);
}

static LLVMValueRef fgep(Cg *cg, LLVMValueRef p, LLVMValueRef i) {
  return LLVMBuildInBoundsGEP2(cg->b, cg->f32, p, &i, 1, "");
}

/* for (i = lo; i < hi; i++) p[i] = 0 */
static void zero_range(Cg *cg, LLVMValueRef p, LLVMValueRef lo, LLVMValueRef hi) {
  CgLoop l;
  LLVMValueRef i = cg_loop_begin(cg, &l, lo, hi);
  LLVMBuildStore(cg->b, LLVMConstReal(cg->f32, 0), fgep(cg, p, i));
  cg_loop_end(cg, &l);
}

/* ---- rows of vectors: W = cg->vec_floats lanes, masked loads and stores
** (a lane that is off is not accessed, so its address may be outside the
** buffer: those addresses are formed with a plain GEP, not inbounds). */

static LLVMValueRef vgep(Cg *cg, LLVMValueRef p, LLVMValueRef i) {
  return LLVMBuildGEP2(cg->b, cg->f32, p, &i, 1, "");
}

/* The lanes i + l (l < W) as an i64 vector. */
static LLVMValueRef vlanes(Cg *cg, LLVMValueRef i) {
  int w = cg->vec_floats;
  LLVMTypeRef vi = LLVMVectorType(cg->i64, (unsigned)w);
  LLVMValueRef io[64], zero[64];
  for (int l = 0; l < w; l++) {
    io[l] = I(l);
    zero[l] = cg_i32(cg, 0);
  }
  LLVMValueRef v = LLVMBuildInsertElement(cg->b, LLVMGetUndef(vi), i, cg_i32(cg, 0), "");
  v = LLVMBuildShuffleVector(cg->b, v, LLVMGetUndef(vi), LLVMConstVector(zero, (unsigned)w), "");
  return LLVMBuildAdd(cg->b, v, LLVMConstVector(io, (unsigned)w), "");
}

/* The mask lo <= lanes < hi. */
static LLVMValueRef vmask(Cg *cg, LLVMValueRef lanes, LLVMValueRef lo, LLVMValueRef hi) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef z = LLVMConstNull(LLVMTypeOf(lanes));
  LLVMValueRef l = LLVMBuildInsertElement(b, z, lo, cg_i32(cg, 0), "");
  LLVMValueRef h = LLVMBuildInsertElement(b, z, hi, cg_i32(cg, 0), "");
  LLVMValueRef zm = LLVMConstNull(LLVMVectorType(cg->i32, (unsigned)cg->vec_floats));
  l = LLVMBuildShuffleVector(b, l, z, zm, "");
  h = LLVMBuildShuffleVector(b, h, z, zm, "");
  return LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, lanes, l, ""),
                      LLVMBuildICmp(b, LLVMIntSLT, lanes, h, ""), "");
}

static LLVMValueRef masked_intr(Cg *cg, const char *name, LLVMTypeRef *fty) {
  LLVMTypeRef ov[2] = {LLVMVectorType(cg->f32, (unsigned)cg->vec_floats), cg->ptr};
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  *fty = LLVMIntrinsicGetType(cg->ctx, id, ov, 2);
  return LLVMGetIntrinsicDeclaration(cg->mod, id, ov, 2);
}

/* W floats at p where mask is on, 0 elsewhere. */
static LLVMValueRef vload(Cg *cg, LLVMValueRef p, LLVMValueRef mask) {
  LLVMTypeRef fty;
  LLVMValueRef f = masked_intr(cg, "llvm.masked.load", &fty);
  LLVMValueRef a[4] = {p, cg_i32(cg, 4), mask,
                       LLVMConstNull(LLVMVectorType(cg->f32, (unsigned)cg->vec_floats))};
  return LLVMBuildCall2(cg->b, fty, f, a, 4, "");
}

static void vstore(Cg *cg, LLVMValueRef v, LLVMValueRef p, LLVMValueRef mask) {
  LLVMTypeRef fty;
  LLVMValueRef f = masked_intr(cg, "llvm.masked.store", &fty);
  LLVMValueRef a[4] = {v, p, cg_i32(cg, 4), mask};
  LLVMBuildCall2(cg->b, fty, f, a, 4, "");
}

/* dst[i] = lo <= i < hi ? src[i] : 0 for i in [0, n), W lanes at a time;
** src may point outside its buffer where the lanes are off. */
static void vrow(Cg *cg, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef lo,
                 LLVMValueRef hi, int64_t n) {
  LlLoop l;
  ll_loop_begin(cg->b, &l, I(0), I(n), I(cg->vec_floats), "v_i");
  LLVMValueRef lanes = vlanes(cg, l.iv);
  LLVMValueRef v = vload(cg, vgep(cg, src, l.iv), vmask(cg, lanes, lo, hi));
  vstore(cg, v, vgep(cg, dst, l.iv), vmask(cg, lanes, I(0), I(n)));
  ll_loop_end(cg->b, &l);
}

/* col (CKK × P) of sample nn from x (element strides xs). */
static void emit_im2col(Cg *cg, const ConvGemm *cv, const int64_t *xs, LLVMValueRef x,
                        LLVMValueRef nn, LLVMValueRef col) {
  const Geo *g = &cv->g;
  LLVMBuilderRef b = cg->b;
  int64_t sH = g->sr == 2 ? xs[2] : 0, sW = xs[g->sr + 1];
  CgLoop lc, lh, lw, lo, lx;
  LLVMValueRef xn = fgep(cg, x, MUL(nn, I(xs[0])));
  LLVMValueRef c = cg_loop_begin(cg, &lc, I(0), I(g->C));
  LLVMValueRef xc = fgep(cg, xn, MUL(c, I(xs[1])));
  LLVMValueRef kh = cg_loop_begin(cg, &lh, I(0), I(g->KH));
  LLVMValueRef kw = cg_loop_begin(cg, &lw, I(0), I(g->KW));
  LLVMValueRef r = ADD(MUL(ADD(MUL(c, I(g->KH)), kh), I(g->KW)), kw);
  LLVMValueRef crow = fgep(cg, col, MUL(r, I(cv->cs)));
  /* ow in [owl, owh): 0 <= ow*sw - pw + kw*dw < W */
  LLVMValueRef t = SUB(I(g->pw), MUL(kw, I(g->dw)));
  LLVMValueRef owl = smin(cg, I(cv->OW), smax(cg, I(0), ceil_div(cg, t, g->sw)));
  LLVMValueRef owh = smin(cg, I(cv->OW), ADD(floor_div(cg, ADD(t, I(g->W - 1)), g->sw), I(1)));
  owh = smax(cg, owh, owl);
  LLVMValueRef oh = cg_loop_begin(cg, &lo, I(0), I(cv->OH));
  LLVMValueRef ih = ADD(SUB(MUL(oh, I(g->sh)), I(g->ph)), MUL(kh, I(g->dh))), ihs;
  LLVMValueRef okh = in_range(cg, ih, g->H, &ihs);
  LLVMValueRef lo_ = LLVMBuildSelect(b, okh, owl, I(cv->OW), "");
  LLVMValueRef hi_ = LLVMBuildSelect(b, okh, owh, I(cv->OW), "");
  LLVMValueRef orow = fgep(cg, crow, MUL(oh, I(cv->OW)));
  LLVMValueRef xr = fgep(cg, xc, MUL(ihs, I(sH)));
  if (g->sw == 1 && sW == 1) { /* x[.., ow - pw + kw·dw] for ow in [lo, hi) */
    vrow(cg, orow, vgep(cg, xr, SUB(MUL(kw, I(g->dw)), I(g->pw))), lo_, hi_, cv->OW);
    cg_loop_end(cg, &lo);
    cg_loop_end(cg, &lw);
    cg_loop_end(cg, &lh);
    cg_loop_end(cg, &lc);
    return;
  }
  zero_range(cg, orow, I(0), lo_);
  LLVMValueRef ow = cg_loop_begin(cg, &lx, lo_, hi_);
  LLVMValueRef iw = ADD(SUB(MUL(ow, I(g->sw)), I(g->pw)), MUL(kw, I(g->dw)));
  LLVMValueRef v = LLVMBuildLoad2(b, cg->f32, fgep(cg, xr, MUL(iw, I(sW))), "");
  LLVMBuildStore(b, v, fgep(cg, orow, ow));
  cg_loop_end(cg, &lx);
  zero_range(cg, orow, hi_, I(cv->OW));
  cg_loop_end(cg, &lo);
  cg_loop_end(cg, &lw);
  cg_loop_end(cg, &lh);
  cg_loop_end(cg, &lc);
}

/* col2im at stride 1 along the width, by output rows: y[n, o, oh, :] is
** loaded once (W lanes at a time), gets every tap (kh, kw) whose input
** row ih = (oh + ph - kh·dh) / sh exists - col row (o, kh, kw) at ih,
** shifted by pw - kw·dw - and is stored once. */
static void emit_col2im_rows(Cg *cg, const ConvGemm *cv, LLVMValueRef yn, LLVMValueRef col) {
  const Geo *g = &cv->g;
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef vt = LLVMVectorType(cg->f32, (unsigned)cg->vec_floats);
  LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(b));
  LLVMBuilderRef tb = LLVMCreateBuilderInContext(cg->ctx);
  LLVMPositionBuilderBefore(tb, LLVMGetFirstInstruction(LLVMGetEntryBasicBlock(fn)));
  LLVMValueRef acc = LLVMBuildAlloca(tb, vt, "v_acc");
  LLVMDisposeBuilder(tb);
  CgLoop lo, lr, lh, lw;
  LlLoop lv;
  LLVMValueRef o = cg_loop_begin(cg, &lo, I(0), I(g->O));
  LLVMValueRef oh = cg_loop_begin(cg, &lr, I(0), I(cv->OH));
  LLVMValueRef yr = fgep(cg, yn, MUL(ADD(MUL(o, I(cv->OH)), oh), I(cv->OW)));
  ll_loop_begin(b, &lv, I(0), I(cv->OW), I(cg->vec_floats), "v_i");
  LLVMValueRef lanes = vlanes(cg, lv.iv), sm = vmask(cg, lanes, I(0), I(cv->OW));
  LLVMValueRef yp = fgep(cg, yr, lv.iv);
  LLVMBuildStore(b, vload(cg, yp, sm), acc);
  LLVMValueRef kh = cg_loop_begin(cg, &lh, I(0), I(g->KH));
  LLVMValueRef num = SUB(ADD(oh, I(g->ph)), MUL(kh, I(g->dh))), ihs;
  LLVMValueRef ok = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, num, I(0), ""),
                                 LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildSRem(b, num, I(g->sh), ""),
                                               I(0), ""), "");
  ok = LLVMBuildAnd(b, ok, in_range(cg, LLVMBuildSDiv(b, num, I(g->sh), ""), g->H, &ihs), "");
  LLVMValueRef kw = cg_loop_begin(cg, &lw, I(0), I(g->KW));
  /* ow = iw - pw + kw·dw: iw = ow + off in [0, W) */
  LLVMValueRef off = SUB(I(g->pw), MUL(kw, I(g->dw)));
  LLVMValueRef lo_ = LLVMBuildNeg(b, off, ""), hi_ = SUB(I(g->W), off);
  hi_ = LLVMBuildSelect(b, ok, smin(cg, hi_, I(cv->OW)), lo_, "");
  LLVMValueRef r = ADD(MUL(ADD(MUL(o, I(g->KH)), kh), I(g->KW)), kw);
  LLVMValueRef src = fgep(cg, col, ADD(MUL(r, I(g->H * g->W)), MUL(ihs, I(g->W))));
  LLVMValueRef v = vload(cg, vgep(cg, src, ADD(lv.iv, off)), vmask(cg, lanes, lo_, hi_));
  LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, vt, acc, ""), v, ""), acc);
  cg_loop_end(cg, &lw);
  cg_loop_end(cg, &lh);
  vstore(cg, LLVMBuildLoad2(b, vt, acc, ""), yp, sm);
  ll_loop_end(b, &lv);
  cg_loop_end(cg, &lr);
  cg_loop_end(cg, &lo);
}

/* y[n] (O × P) += col2im(col) for conv_transpose2d: col row (o, kh, kw)
** holds, at input position (ih, iw), the contribution to y[n, o, ih·sh -
** ph + kh·dh, iw·sw - pw + kw·dw] (dropped outside the output). */
static void emit_col2im(Cg *cg, const ConvGemm *cv, LLVMValueRef yn, LLVMValueRef col) {
  const Geo *g = &cv->g;
  LLVMBuilderRef b = cg->b;
  if (g->sw == 1) {
    emit_col2im_rows(cg, cv, yn, col);
    return;
  }
  CgLoop lc, lh, lw, li, lx;
  LLVMValueRef o = cg_loop_begin(cg, &lc, I(0), I(g->O));
  LLVMValueRef yo = fgep(cg, yn, MUL(o, I(cv->P)));
  LLVMValueRef kh = cg_loop_begin(cg, &lh, I(0), I(g->KH));
  LLVMValueRef kw = cg_loop_begin(cg, &lw, I(0), I(g->KW));
  LLVMValueRef r = ADD(MUL(ADD(MUL(o, I(g->KH)), kh), I(g->KW)), kw);
  LLVMValueRef crow = fgep(cg, col, MUL(r, I(g->H * g->W)));
  /* iw in [iwl, iwh): 0 <= iw*sw - pw + kw*dw < OW */
  LLVMValueRef t = SUB(I(g->pw), MUL(kw, I(g->dw)));
  LLVMValueRef iwl = smin(cg, I(g->W), smax(cg, I(0), ceil_div(cg, t, g->sw)));
  LLVMValueRef iwh = smin(cg, I(g->W), ADD(floor_div(cg, ADD(t, I(cv->OW - 1)), g->sw), I(1)));
  iwh = smax(cg, iwh, iwl);
  LLVMValueRef ih = cg_loop_begin(cg, &li, I(0), I(g->H));
  LLVMValueRef oh = ADD(SUB(MUL(ih, I(g->sh)), I(g->ph)), MUL(kh, I(g->dh))), ohs;
  LLVMValueRef okh = in_range(cg, oh, cv->OH, &ohs);
  LLVMValueRef hi_ = LLVMBuildSelect(b, okh, iwh, iwl, "");
  LLVMValueRef irow = fgep(cg, crow, MUL(ih, I(g->W)));
  LLVMValueRef yr = fgep(cg, yo, MUL(ohs, I(cv->OW)));
  LLVMValueRef iw = cg_loop_begin(cg, &lx, iwl, hi_);
  LLVMValueRef ow = ADD(SUB(MUL(iw, I(g->sw)), I(g->pw)), MUL(kw, I(g->dw)));
  LLVMValueRef ya = fgep(cg, yr, ow);
  LLVMValueRef v = LLVMBuildLoad2(b, cg->f32, fgep(cg, irow, iw), "");
  LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, cg->f32, ya, ""), v, ""), ya);
  cg_loop_end(cg, &lx);
  cg_loop_end(cg, &li);
  cg_loop_end(cg, &lw);
  cg_loop_end(cg, &lh);
  cg_loop_end(cg, &lc);
}

static void add_fn_attrs(Cg *cg, LLVMValueRef f) {
  const char *attrs[2] = {"noinline", "nounwind"};
  for (int a = 0; a < 2; a++)
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(cg->ctx, LLVMGetEnumAttributeKindForName(attrs[a], strlen(attrs[a])), 0));
}

/* A parallel body NAME(begin, end, ctx) with the builder at its entry and
** p[0..4] loaded from ctx = {y, x, w, bias, work}. */
static LLVMValueRef body_fn(Cg *cg, const char *name, LLVMValueRef *p) {
  LLVMTypeRef bp[3] = {cg->i64, cg->i64, cg->ptr};
  LLVMValueRef f = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->vd, bp, 3, false));
  LLVMSetLinkage(f, LLVMInternalLinkage);
  add_fn_attrs(cg, f);
  LLVMBuilderRef b = cg->b;
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(cg->ctx, f, "entry"));
  for (int i = 0; i < 5; i++) {
    LLVMValueRef ii = I(i);
    p[i] = LLVMBuildLoad2(b, cg->ptr, LLVMBuildInBoundsGEP2(b, cg->ptr, LLVMGetParam(f, 2), &ii, 1, ""), "");
  }
  return f;
}

/* The body over chunks [begin, end): ctx points at {y, x, w, bias, work}. */
static LLVMValueRef conv_gemm_body(Cg *cg, const IrNode *n, const ConvGemm *cv,
                                   const char *name) {
  const Geo *g = &cv->g;
  LLVMBuilderRef b = cg->b;
  LLVMValueRef p[5];
  LLVMValueRef f = body_fn(cg, name, p);
  LLVMValueRef gf = cv->tr     ? cg_sgemm_fn(cg, true, false, cv->CKK, g->H * g->W, g->C, NULL)
                   : cv->tout ? cg_sgemm_fn(cg, true, false, cv->P, g->O, cv->CKK, NULL)
                              : cg_sgemm_fn(cg, false, false, g->O, cv->P, cv->CKK, NULL);
  LLVMTypeRef gty = cg_sgemm_type(cg);
  const CgVal *xv = cg_val(cg, n->args[0]), *bv = n->nargs > 2 ? cg_val(cg, n->args[2]) : NULL;
  CgLoop lk, ls, lo, lp;
  LLVMValueRef k = cg_loop_begin(cg, &lk, LLVMGetParam(f, 0), LLVMGetParam(f, 1));
  LLVMValueRef ct = fgep(cg, p[4], ADD(I(cv->wtf), MUL(k, I(cv->tf + cv->colf + cv->workf))));
  LLVMValueRef col = fgep(cg, ct, I(cv->tf));
  LLVMValueRef work = fgep(cg, col, I(cv->colf));
  LLVMValueRef s0 = LLVMBuildSDiv(b, MUL(k, I(g->N)), I(cv->nch), "");
  LLVMValueRef s1 = LLVMBuildSDiv(b, MUL(ADD(k, I(1)), I(g->N)), I(cv->nch), "");
  LLVMValueRef nn = cg_loop_begin(cg, &ls, s0, s1);
  if (!cv->tr) emit_im2col(cg, cv, xv->st, p[1], nn, col);
  LLVMValueRef yn = fgep(cg, p[0], MUL(nn, I(g->O * cv->P)));
  if (cv->tout) { /* out[n]ᵀ (P × O) = colᵀ · Wᵀ */
    LLVMValueRef args[12] = {I(cv->P), I(g->O), I(cv->CKK), col, I(cv->P), p[4], I(g->O),
                             ct, I(g->O), LLVMConstReal(cg->f32, 0),
                             LLVMConstNull(cg->ptr), work};
    LLVMBuildCall2(b, gty, gf, args, 12, "");
  }
  if (cv->tout || bv || cv->tr) {
    /* out[n][o][q] = bias[o] (+ out[n]ᵀ[q][o]); the SGEMM or col2im below
    ** adds to it otherwise */
    LLVMValueRef o = cg_loop_begin(cg, &lo, I(0), I(g->O));
    LLVMValueRef bias = bv ? LLVMBuildLoad2(b, cg->f32, fgep(cg, p[3], MUL(o, I(bv->st[0]))), "")
                           : LLVMConstReal(cg->f32, 0);
    LLVMValueRef yo = fgep(cg, yn, MUL(o, I(cv->P))), v = bias;
    LLVMValueRef q = cg_loop_begin(cg, &lp, I(0), I(cv->P));
    if (cv->tout)
      v = LLVMBuildFAdd(b, LLVMBuildLoad2(b, cg->f32, fgep(cg, ct, ADD(o, MUL(q, I(g->O)))), ""),
                        bias, "");
    LLVMBuildStore(b, v, fgep(cg, yo, q));
    cg_loop_end(cg, &lp);
    cg_loop_end(cg, &lo);
  }
  if (cv->tr) {
    int64_t HW = g->H * g->W;
    LLVMValueRef xn = fgep(cg, p[1], MUL(nn, I(xv->st[0])));
    LLVMValueRef args[12] = {I(cv->CKK), I(HW), I(g->C), p[2], I(cv->lda),
                             xn, I(cv->ldx), col, I(HW),
                             LLVMConstReal(cg->f32, 0), LLVMConstNull(cg->ptr), work};
    LLVMBuildCall2(b, gty, gf, args, 12, "");
    emit_col2im(cg, cv, yn, col);
  } else if (!cv->tout) {
    LLVMValueRef args[12] = {I(g->O), I(cv->P), I(cv->CKK), p[2], I(cv->lda),
                             col, I(cv->P), yn, I(cv->P),
                             LLVMConstReal(cg->f32, bv ? 1 : 0), LLVMConstNull(cg->ptr), work};
    LLVMBuildCall2(b, gty, gf, args, 12, "");
  }
  cg_loop_end(cg, &ls);
  cg_loop_end(cg, &lk);
  LLVMBuildRetVoid(b);
  return f;
}

/* The tap form's body over chunks [begin, end): chunk k sums its samples
** into T_k, or Tᵀ_k when cv->tcol (cv->tf floats at the start of its
** scratch, then col - rows cv->cs apart, as the SGEMM's packed A when
** cv->apk - then the SGEMM's work); the first sample of a chunk writes
** T_k (beta 0). */
static LLVMValueRef conv_taps_body(Cg *cg, const IrNode *n, const ConvGemm *cv,
                                   const char *name) {
  const Geo *g = &cv->g;
  LLVMBuilderRef b = cg->b;
  LLVMValueRef p[5];
  LLVMValueRef f = body_fn(cg, name, p);
  LLVMValueRef gf = cv->apk    ? cg_sgemm_apacked_fn(cg, false, true, cv->CKK, g->O, cv->P, NULL)
                   : cv->tcol ? cg_sgemm_fn(cg, false, true, cv->CKK, g->O, cv->P, NULL)
                              : cg_sgemm_fn(cg, false, true, g->O, cv->CKK, cv->P, NULL);
  LLVMTypeRef gty = cg_sgemm_type(cg);
  /* x [A, Nn, ..] read as samples Nn of A channels */
  const int64_t *xs0 = cg_val(cg, n->args[0])->st;
  int64_t xs[4] = {xs0[1], xs0[0], xs0[2], g->sr == 2 ? xs0[3] : 0};
  int64_t wn = cg_val(cg, n->args[1])->st[1];
  CgLoop lk, ls;
  LLVMValueRef k = cg_loop_begin(cg, &lk, LLVMGetParam(f, 0), LLVMGetParam(f, 1));
  LLVMValueRef t = fgep(cg, p[4], MUL(k, I(cv->tf + cv->colf + cv->workf)));
  LLVMValueRef col = fgep(cg, t, I(cv->tf));
  LLVMValueRef work = fgep(cg, col, I(cv->colf));
  LLVMValueRef s0 = LLVMBuildSDiv(b, MUL(k, I(g->N)), I(cv->nch), "");
  LLVMValueRef s1 = LLVMBuildSDiv(b, MUL(ADD(k, I(1)), I(g->N)), I(cv->nch), "");
  if (cv->apk) /* the rows of packed A past CKK */
    zero_range(cg, col, I(cv->CKK * cv->cs), I(cv->colf));
  LLVMValueRef nn = cg_loop_begin(cg, &ls, s0, s1);
  emit_im2col(cg, cv, xs, p[1], nn, col);
  LLVMValueRef beta = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, nn, s0, ""),
                                      LLVMConstReal(cg->f32, 0), LLVMConstReal(cg->f32, 1), "");
  LLVMValueRef wp = fgep(cg, p[2], MUL(nn, I(wn)));
  LLVMValueRef a0[12] = {I(cv->CKK), I(g->O), I(cv->P), col, I(cv->cs), wp, I(cv->lda),
                         t, I(g->O), beta, LLVMConstNull(cg->ptr), work};
  LLVMValueRef a1[12] = {I(g->O), I(cv->CKK), I(cv->P), wp, I(cv->lda), col, I(cv->P),
                         t, I(cv->CKK), beta, LLVMConstNull(cg->ptr), work};
  LLVMValueRef *args = cv->tcol ? a0 : a1;
  LLVMBuildCall2(b, gty, gf, args, 12, "");
  cg_loop_end(cg, &ls);
  cg_loop_end(cg, &lk);
  LLVMBuildRetVoid(b);
  return f;
}

/* y[a, b, u, v] = bias[b] + Σ_k T_k[b][(a·U + u)·V + v], chunks in order. */
static void conv_taps_sum(Cg *cg, const IrNode *n, const ConvGemm *cv, LLVMValueRef y,
                          LLVMValueRef bias, LLVMValueRef work) {
  const Geo *g = &cv->g;
  LLVMBuilderRef b = cg->b;
  int64_t UV = g->KH * g->KW, chunk = cv->tf + cv->colf + cv->workf;
  CgLoop lb, la, lq;
  LLVMValueRef o = cg_loop_begin(cg, &lb, I(0), I(g->O));
  LLVMValueRef bo = LLVMConstReal(cg->f32, 0);
  if (n->nargs > 2) bo = LLVMBuildLoad2(b, cg->f32, fgep(cg, bias, MUL(o, I(cg_val(cg, n->args[2])->st[0]))), "");
  LLVMValueRef a = cg_loop_begin(cg, &la, I(0), I(g->C));
  LLVMValueRef yr = fgep(cg, y, MUL(ADD(MUL(a, I(g->O)), o), I(UV)));
  /* T_k[b][a·UV + q], or Tᵀ_k[a·UV + q][b] (tcol) */
  int64_t qs = cv->tcol ? g->O : 1;
  LLVMValueRef tr = cv->tcol ? fgep(cg, work, ADD(MUL(MUL(a, I(UV)), I(g->O)), o))
                             : fgep(cg, work, ADD(MUL(o, I(cv->CKK)), MUL(a, I(UV))));
  LLVMValueRef q = cg_loop_begin(cg, &lq, I(0), I(UV));
  LLVMValueRef s = NULL;
  for (int64_t k = 0; k < cv->nch; k++) {
    LLVMValueRef v = LLVMBuildLoad2(b, cg->f32, fgep(cg, tr, ADD(MUL(q, I(qs)), I(k * chunk))), "");
    s = s ? LLVMBuildFAdd(b, s, v, "") : v;
  }
  LLVMBuildStore(b, LLVMBuildFAdd(b, s, bo, ""), fgep(cg, yr, q));
  cg_loop_end(cg, &lq);
  cg_loop_end(cg, &la);
  cg_loop_end(cg, &lb);
}

void cg_conv_gemm_emit(Cg *cg, const IrNode *n, CgVal *out, CgVal *work) {
  ConvGemm cv;
  NNC_ASSERT(conv_gemm_geo(cg, n, &cv));
  char bname[96], kname[96];
  const char *form = cv.apk ? "taps_tp" : cv.tcol ? "taps_t" : cv.taps ? "taps"
                   : cv.tout ? "gemm_t" : "gemm";
  snprintf(bname, sizeof bname, "k%d_%s_%s_body", n->id, ir_op_info[n->op].name, form);
  snprintf(kname, sizeof kname, "k%d_%s_%s", n->id, ir_op_info[n->op].name, form);
  if (LLVMGetNamedFunction(cg->mod, kname)) {
    size_t l = strlen(bname);
    snprintf(bname + l, sizeof bname - l, ".%s", cg->fname);
    l = strlen(kname);
    snprintf(kname + l, sizeof kname - l, ".%s", cg->fname);
  }
  LLVMValueRef body = cv.taps ? conv_taps_body(cg, n, &cv, bname)
                              : conv_gemm_body(cg, n, &cv, bname);
  LLVMTypeRef bp[3] = {cg->i64, cg->i64, cg->ptr};
  LLVMTypeRef bty = LLVMFunctionType(cg->vd, bp, 3, false);
  LLVMTypeRef kp[5] = {cg->ptr, cg->ptr, cg->ptr, cg->ptr, cg->ptr};
  LLVMTypeRef kty = LLVMFunctionType(cg->vd, kp, 5, false);
  LLVMValueRef kf = LLVMAddFunction(cg->mod, kname, kty);
  LLVMSetLinkage(kf, LLVMInternalLinkage);
  add_fn_attrs(cg, kf);
  LLVMBuilderRef b = cg->b;
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(cg->ctx, kf, "entry"));
  LLVMValueRef ctx = LLVMBuildAlloca(b, LLVMArrayType(cg->ptr, 5), "ctx");
  for (int i = 0; i < 5; i++) {
    LLVMValueRef ii = I(i);
    LLVMBuildStore(b, LLVMGetParam(kf, (unsigned)i),
                   LLVMBuildInBoundsGEP2(b, cg->ptr, ctx, &ii, 1, ""));
  }
  if (cv.tout) { /* Wᵀ (CKK × O) at the start of the scratch */
    CgLoop lo, lk;
    LLVMValueRef w = LLVMGetParam(kf, 2), wt = LLVMGetParam(kf, 4);
    LLVMValueRef o = cg_loop_begin(cg, &lo, I(0), I(cv.g.O));
    LLVMValueRef wo = fgep(cg, w, MUL(o, I(cv.lda))), wto = fgep(cg, wt, o);
    LLVMValueRef q = cg_loop_begin(cg, &lk, I(0), I(cv.CKK));
    LLVMBuildStore(b, LLVMBuildLoad2(b, cg->f32, fgep(cg, wo, q), ""),
                   fgep(cg, wto, MUL(q, I(cv.g.O))));
    cg_loop_end(cg, &lk);
    cg_loop_end(cg, &lo);
  }
  if (cv.nch > 1) {
    LLVMValueRef pf = LLVMGetNamedFunction(cg->mod, "nnrt_parallel_for");
    LLVMTypeRef pp[3] = {cg->i64, cg->ptr, cg->ptr};
    LLVMTypeRef pty = LLVMFunctionType(cg->vd, pp, 3, false);
    if (!pf) pf = LLVMAddFunction(cg->mod, "nnrt_parallel_for", pty);
    LLVMValueRef a[3] = {I(cv.nch), body, ctx};
    LLVMBuildCall2(b, pty, pf, a, 3, "");
  } else {
    LLVMValueRef a[3] = {I(0), I(1), ctx};
    LLVMBuildCall2(b, bty, body, a, 3, "");
  }
  if (cv.taps)
    conv_taps_sum(cg, n, &cv, LLVMGetParam(kf, 0), LLVMGetParam(kf, 3), LLVMGetParam(kf, 4));
  LLVMBuildRetVoid(b);
  LLVMValueRef i = cg_i64(cg, work->off);
  LLVMValueRef wp = LLVMBuildInBoundsGEP2(cg->eb, cg->i8, cg->earena, &i, 1, "");
  LLVMValueRef cargs[5] = {out->ptr, cg_val(cg, n->args[0])->ptr, cg_val(cg, n->args[1])->ptr,
                           n->nargs > 2 ? cg_val(cg, n->args[2])->ptr : LLVMConstNull(cg->ptr), wp};
  LLVMBuildCall2(cg->eb, kty, kf, cargs, 5, "");
}
