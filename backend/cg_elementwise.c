/*
** This file contains the element emitters of the sources (constant,
** causal_mask, iota, rand) and of the elementwise ops: the scalar function
** of every OPF_FUSABLE op with the interpreter's definitions (ir/interp_ew.c),
** cast with its rules, and the gated activations (glu, swiglu, geglu).
**
** Floats compute in the result's precision (f16/bf16 in f32, rounded to
** their format after each op), with the `contract` fast-math flag only.
** f32 exp, tanh and erf are straight-line IR (polynomials, error ~1e-7)
** so that loops using them (softmax, sigmoid, silu, gelu, gelu_tanh,
** recurrent cells) vectorise; log, sqrt, sin, cos, pow, fabs are LLVM
** intrinsics; expm1, log1p and the f64 functions are libm calls, so their
** accuracy is glibc's (<= 2 ulp).  Integer arithmetic wraps, division truncates
** toward 0; a division by zero or a negative integer exponent sets
** CG_ERR_INTDIV.  Other ops on integers compute in f64 and convert back with
** the interpreter's rules, as the interpreter does.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cg_int.h"

/* -------------------------------------------------------------- sources */

LLVMValueRef cg_constant(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  DType t = n->res[0]->type.dtype;
  double v = ir_attr_float(&n->attrs, "value", 0);
  if (ir_dtype_is_int(t) || t == DT_BOOL) v = ir_interp_round(t, v);
  return cg_round(cg, t, cg_const(cg, t, v));
}

LLVMValueRef cg_causal_mask(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  const IrType *t = &n->res[0]->type;
  LLVMValueRef i = idx[t->rank - 2], j = idx[t->rank - 1];
  LLVMValueRef le = LLVMBuildICmp(cg->b, LLVMIntSLE, j, i, "");
  return LLVMBuildSelect(cg->b, le, cg_const(cg, t->dtype, 0),
                         cg_const(cg, t->dtype, -INFINITY), "");
}

LLVMValueRef cg_iota(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  const IrType *t = &n->res[0]->type;
  if (t->rank == 0) return cg_const(cg, t->dtype, 0);
  int ax = cg_axis(ir_attr_int(&n->attrs, "axis", 0), t->rank);
  return cg_convert(cg, idx[ax], DT_I64, t->dtype);
}

/* Philox4x32-10 as ir_philox4x32_10; returns the 32-bit word w of the
** block (w an i64 in [0, 4)). */
static LLVMValueRef philox(Cg *cg, LLVMValueRef *c, LLVMValueRef k0,
                           LLVMValueRef k1, LLVMValueRef w) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef m0 = LLVMConstInt(cg->i64, 0xD2511F53u, false);
  LLVMValueRef m1 = LLVMConstInt(cg->i64, 0xCD9E8D57u, false);
  LLVMValueRef sh = LLVMConstInt(cg->i64, 32, false);
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = LLVMBuildAdd(b, k0, LLVMConstInt(cg->i32, 0x9E3779B9u, false), "");
      k1 = LLVMBuildAdd(b, k1, LLVMConstInt(cg->i32, 0xBB67AE85u, false), "");
    }
    LLVMValueRef p0 = LLVMBuildMul(b, m0, LLVMBuildZExt(b, c[0], cg->i64, ""), "");
    LLVMValueRef p1 = LLVMBuildMul(b, m1, LLVMBuildZExt(b, c[2], cg->i64, ""), "");
    LLVMValueRef h0 = LLVMBuildTrunc(b, LLVMBuildLShr(b, p0, sh, ""), cg->i32, "");
    LLVMValueRef h1 = LLVMBuildTrunc(b, LLVMBuildLShr(b, p1, sh, ""), cg->i32, "");
    LLVMValueRef n0 = LLVMBuildXor(b, LLVMBuildXor(b, h1, c[1], ""), k0, "");
    LLVMValueRef n2 = LLVMBuildXor(b, LLVMBuildXor(b, h0, c[3], ""), k1, "");
    c[1] = LLVMBuildTrunc(b, p1, cg->i32, "");
    c[3] = LLVMBuildTrunc(b, p0, cg->i32, "");
    c[0] = n0;
    c[2] = n2;
  }
  LLVMValueRef r = c[3];
  for (int i = 2; i >= 0; i--)
    r = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, w, cg_i64(cg, i), ""),
                        c[i], r, "");
  return r;
}

static LLVMValueRef lo32(Cg *cg, LLVMValueRef x) {
  return LLVMBuildTrunc(cg->b, x, cg->i32, "");
}
static LLVMValueRef hi32(Cg *cg, LLVMValueRef x) {
  return LLVMBuildTrunc(cg->b, LLVMBuildLShr(cg->b, x, cg_i64(cg, 32), ""),
                        cg->i32, "");
}

/* rand: the stream of ir_interp_uniform for the flat index of idx. */
LLVMValueRef cg_rand(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  const IrType *t = &n->res[0]->type;
  LLVMBuilderRef b = cg->b;
  LLVMValueRef flat = cg_i64(cg, 0);
  for (int k = 0; k < t->rank; k++)
    flat = LLVMBuildAdd(b, LLVMBuildMul(b, flat, cg_i64(cg, t->dim[k]), ""),
                        idx[k], "");
  uint64_t stream = (uint64_t)ir_attr_int(&n->attrs, "seed", 0);
  LLVMValueRef blk = LLVMBuildLShr(b, flat, cg_i64(cg, 2), "");
  LLVMValueRef w = LLVMBuildAnd(b, flat, cg_i64(cg, 3), "");
  LLVMValueRef k0 = lo32(cg, cg->k->seed);
  LLVMValueRef k1 = LLVMBuildXor(b, hi32(cg, cg->k->seed),
                                 LLVMConstInt(cg->i32, (uint32_t)stream, false), "");
  LLVMValueRef c[4] = {lo32(cg, blk), hi32(cg, blk), lo32(cg, cg->k->step),
                       hi32(cg, cg->k->step)};
  LLVMValueRef r = philox(cg, c, k0, k1, w);
  int keep = t->dtype == DT_F16 ? 11 : t->dtype == DT_BF16 ? 8 : 24;
  r = LLVMBuildLShr(b, r, cg_i32(cg, 32 - keep), "");
  LLVMTypeRef ft = cg_ctype(cg, t->dtype);
  LLVMValueRef u = LLVMBuildUIToFP(b, r, ft, "");
  return LLVMBuildFMul(b, u, LLVMConstReal(ft, ldexp(1.0, -keep)), "");
}

/* ------------------------------------------------------------ float math */

/* A constant of like's type: a float, or a splat of a float vector. */
static LLVMValueRef fc(Cg *cg, LLVMValueRef like, double v) {
  (void)cg;
  LLVMTypeRef t = LLVMTypeOf(like);
  if (LLVMGetTypeKind(t) != LLVMVectorTypeKind) return LLVMConstReal(t, v);
  unsigned n = LLVMGetVectorSize(t);
  LLVMValueRef e[64], c = LLVMConstReal(LLVMGetElementType(t), v);
  NNC_ASSERT(n <= 64);
  for (unsigned i = 0; i < n; i++) e[i] = c;
  return LLVMConstVector(e, n);
}

/* An i32 constant shaped like the float (vector) like. */
static LLVMValueRef ic(Cg *cg, LLVMValueRef like, int64_t v) {
  LLVMTypeRef t = LLVMTypeOf(like);
  if (LLVMGetTypeKind(t) != LLVMVectorTypeKind) return cg_i32(cg, v);
  unsigned n = LLVMGetVectorSize(t);
  LLVMValueRef e[64], c = cg_i32(cg, v);
  NNC_ASSERT(n <= 64);
  for (unsigned i = 0; i < n; i++) e[i] = c;
  return LLVMConstVector(e, n);
}

/* The type of an integer (vector) shaped like the float (vector) like. */
static LLVMTypeRef ishape(Cg *cg, LLVMValueRef like) {
  LLVMTypeRef t = LLVMTypeOf(like);
  if (LLVMGetTypeKind(t) != LLVMVectorTypeKind) return cg->i32;
  return LLVMVectorType(cg->i32, LLVMGetVectorSize(t));
}

static bool is_f32(Cg *cg, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  if (LLVMGetTypeKind(t) == LLVMVectorTypeKind) t = LLVMGetElementType(t);
  return t == cg->f32;
}

void cg_kern_wide(Cg *cg) {
  if (!cg->k || cg->vec_floats <= 4) return;
  char w[16];
  snprintf(w, sizeof w, "%d", cg->vec_floats * 32);
  static const char key[] = "prefer-vector-width";
  LLVMAddAttributeAtIndex(cg->k->fn, LLVMAttributeFunctionIndex,
                          LLVMCreateStringAttribute(cg->ctx, key, sizeof key - 1, w,
                                                    (unsigned)strlen(w)));
}

static LLVMValueRef sel(Cg *cg, LLVMRealPredicate p, LLVMValueRef a,
                        LLVMValueRef bb, LLVMValueRef t, LLVMValueRef f) {
  return LLVMBuildSelect(cg->b, LLVMBuildFCmp(cg->b, p, a, bb, ""), t, f, "");
}

#define FADD(x, y) cg_fm(LLVMBuildFAdd(cg->b, x, y, ""), false)
#define FSUB(x, y) cg_fm(LLVMBuildFSub(cg->b, x, y, ""), false)
#define FMUL(x, y) cg_fm(LLVMBuildFMul(cg->b, x, y, ""), false)
#define FDIV(x, y) cg_fm(LLVMBuildFDiv(cg->b, x, y, ""), false)

/* exp for f32 (or a vector of f32) in straight-line IR so that loops
** calling it vectorise (Cephes expf: x = n ln2 + r, |r| <= ln2/2, a
** degree-6 polynomial evaluated with fused multiply-adds, times 2^n applied
** in two halves so that results down to the subnormals stay right;
** relative error about 1e-7; 0 below ln 2^-150, where the result rounds to
** 0).  The kernel prefers full-width vectors (cg_kern_wide).  f64 uses
** llvm.exp (libm). */
LLVMValueRef cg_exp(Cg *cg, LLVMValueRef x) {
  if (!is_f32(cg, x)) return cg_intr1(cg, "llvm.exp", x);
  cg_kern_wide(cg);
  LLVMBuilderRef b = cg->b;
  LLVMValueRef xc = cg_intr2(cg, "llvm.minnum", cg_intr2(cg, "llvm.maxnum", x, fc(cg, x, -104.0)),
                             fc(cg, x, 88.8));
  LLVMValueRef n = cg_intr1(cg, "llvm.rint", FMUL(xc, fc(cg, x, M_LOG2E)));
  LLVMValueRef r = FSUB(xc, FMUL(n, fc(cg, x, 0.693359375)));
  r = FSUB(r, FMUL(n, fc(cg, x, -2.12194440e-4)));
  static const double c[6] = {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3,
                              4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1};
  LLVMValueRef p = fc(cg, x, c[0]);
  for (int i = 1; i < 6; i++) p = FADD(FMUL(p, r), fc(cg, x, c[i]));
  LLVMValueRef rr = FMUL(r, r);
  p = FADD(FADD(FMUL(p, rr), r), fc(cg, x, 1));
  LLVMTypeRef it = ishape(cg, x), ft = LLVMTypeOf(x);
  LLVMValueRef ni = LLVMBuildFPToSI(b, n, it, "");
  LLVMValueRef n1 = LLVMBuildAShr(b, ni, ic(cg, x, 1), ""), n2 = LLVMBuildSub(b, ni, n1, "");
  LLVMValueRef s1 = LLVMBuildBitCast(b, LLVMBuildShl(b, LLVMBuildAdd(b, n1, ic(cg, x, 127), ""), ic(cg, x, 23), ""), ft, "");
  LLVMValueRef s2 = LLVMBuildBitCast(b, LLVMBuildShl(b, LLVMBuildAdd(b, n2, ic(cg, x, 127), ""), ic(cg, x, 23), ""), ft, "");
  LLVMValueRef y = LLVMBuildFMul(b, LLVMBuildFMul(b, p, s1, ""), s2, "");
  y = sel(cg, LLVMRealOLT, x, fc(cg, x, -103.97207708399179), fc(cg, x, 0), y);
  y = sel(cg, LLVMRealOGT, x, fc(cg, x, 88.72283935546875), fc(cg, x, INFINITY), y);
  return sel(cg, LLVMRealUNO, x, x, x, y);
}

/* tanh for f32 in straight-line IR (Cephes tanhf: an odd polynomial below
** |x| = 0.625, 1 - 2/(e^2|x| + 1) above, sign restored); f64: libm. */
static LLVMValueRef tanh_(Cg *cg, LLVMValueRef x) {
  if (LLVMTypeOf(x) != cg->f32) return cg_libm1(cg, "tanh", x);
  LLVMBuilderRef b = cg->b;
  LLVMValueRef ax = cg_intr1(cg, "llvm.fabs", x), z = LLVMBuildFMul(b, x, x, "");
  static const double c[5] = {-5.70498872745E-3, 2.06390887954E-2, -5.37397155531E-2,
                              1.33314422036E-1, -3.33332819422E-1};
  LLVMValueRef p = fc(cg, x, c[0]);
  for (int i = 1; i < 5; i++)
    p = LLVMBuildFAdd(b, LLVMBuildFMul(b, p, z, ""), fc(cg, x, c[i]), "");
  LLVMValueRef small = LLVMBuildFAdd(b, LLVMBuildFMul(b, LLVMBuildFMul(b, p, z, ""), x, ""), x, "");
  LLVMValueRef e = cg_exp(cg, LLVMBuildFMul(b, ax, fc(cg, x, 2), ""));
  LLVMValueRef big = LLVMBuildFSub(b, fc(cg, x, 1),
                                   LLVMBuildFDiv(b, fc(cg, x, 2), LLVMBuildFAdd(b, e, fc(cg, x, 1), ""), ""), "");
  big = cg_intr2(cg, "llvm.copysign", big, x);
  return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, ax, fc(cg, x, 0.625), ""), small, big, "");
}
LLVMValueRef cg_log(Cg *cg, LLVMValueRef x) { return cg_intr1(cg, "llvm.log", x); }

/* NaN-propagating max (the interpreter's nmax). */
LLVMValueRef cg_fmax_nan(Cg *cg, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef keep = LLVMBuildOr(cg->b, LLVMBuildFCmp(cg->b, LLVMRealUNO, a, a, ""),
                                  LLVMBuildFCmp(cg->b, LLVMRealOGT, a, b, ""), "");
  return LLVMBuildSelect(cg->b, keep, a, b, "");
}

static LLVMValueRef fmin_nan(Cg *cg, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef keep = LLVMBuildOr(cg->b, LLVMBuildFCmp(cg->b, LLVMRealUNO, a, a, ""),
                                  LLVMBuildFCmp(cg->b, LLVMRealOLT, a, b, ""), "");
  return LLVMBuildSelect(cg->b, keep, a, b, "");
}

/* Abramowitz-Stegun 7.1.26: erf x = 1 - t P(t) e^-x^2, t = 1/(1 +
** 0.3275911|x|), sign restored (absolute error 1.5e-7 everywhere, but not
** relative near 0); ax = |x|, z = x^2. */
static LLVMValueRef erf_as(Cg *cg, LLVMValueRef x, LLVMValueRef ax, LLVMValueRef z) {
  LLVMValueRef t = FDIV(fc(cg, x, 1), FADD(fc(cg, x, 1), FMUL(ax, fc(cg, x, 0.3275911))));
  static const double a[5] = {1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592};
  LLVMValueRef q = fc(cg, x, a[0]);
  for (int i = 1; i < 5; i++) q = FADD(FMUL(q, t), fc(cg, x, a[i]));
  q = FMUL(q, t);
  LLVMValueRef e = cg_exp(cg, LLVMBuildFNeg(cg->b, z, ""));
  return cg_intr2(cg, "llvm.copysign", FSUB(fc(cg, x, 1), FMUL(q, e)), x);
}

/* erf for f32 in straight-line IR: the Maclaurin series to x^21 for
** |x| <= 1 (error < 2e-8 relative), Abramowitz-Stegun 7.1.26 above
** (1 - t P(t) e^-x^2, t = 1/(1 + 0.3275911|x|), absolute error 1.5e-7),
** sign restored; both polynomials in fused multiply-adds, in a kernel
** that prefers full-width vectors (cg_kern_wide); f64: libm. */
static LLVMValueRef erf_(Cg *cg, LLVMValueRef x) {
  if (!is_f32(cg, x)) return cg_libm1(cg, "erf", x);
  cg_kern_wide(cg);
  LLVMValueRef ax = cg_intr1(cg, "llvm.fabs", x), z = FMUL(x, x);
  /* sum_n (-1)^n x^(2n+1) / (n! (2n+1)), times 2/sqrt(pi), Horner in z */
  LLVMValueRef p = fc(cg, x, 0);
  double fact = 1;
  double cf[11];
  for (int n = 0; n <= 10; n++) {
    if (n > 0) fact *= n;
    cf[n] = (n % 2 ? -1.0 : 1.0) / (fact * (2 * n + 1));
  }
  for (int n = 10; n >= 0; n--) p = FADD(FMUL(p, z), fc(cg, x, cf[n]));
  LLVMValueRef small = FMUL(FMUL(p, x), fc(cg, x, M_2_SQRTPI));
  LLVMValueRef r = sel(cg, LLVMRealOLE, ax, fc(cg, x, 1), small, erf_as(cg, x, ax, z));
  return sel(cg, LLVMRealUNO, x, x, x, r);
}

/* 1/(1+e^-x) for x >= 0, e^x/(1+e^x) below: both from e = exp(-|x|). */
LLVMValueRef cg_sigmoid(Cg *cg, LLVMValueRef x) {
  LLVMValueRef e = cg_exp(cg, LLVMBuildFNeg(cg->b, cg_intr1(cg, "llvm.fabs", x), ""));
  LLVMValueRef p = FDIV(fc(cg, x, 1), FADD(fc(cg, x, 1), e));
  return sel(cg, LLVMRealOGE, x, fc(cg, x, 0), p, FMUL(e, p));
}

static LLVMValueRef softplus(Cg *cg, LLVMValueRef x, double beta, double th) {
  LLVMValueRef bx = FMUL(fc(cg, x, beta), x);
  LLVMValueRef s = FDIV(cg_libm1(cg, "log1p", cg_exp(cg, bx)), fc(cg, x, beta));
  return sel(cg, LLVMRealOGT, bx, fc(cg, x, th), x, s);
}

/* gelu = x/2 (1 + erf(x/sqrt 2)).  f32 takes erf from Abramowitz-Stegun
** alone: its absolute error 1.5e-7 is at most 1.5e-7 |x|/2 here, and the
** Maclaurin branch that erf_ adds for relative accuracy near 0 would only
** cost time (the kernel is one of the larger ones of a transformer). */
static LLVMValueRef gelu(Cg *cg, LLVMValueRef x) {
  LLVMValueRef h = FMUL(x, fc(cg, x, M_SQRT1_2)), e;
  if (is_f32(cg, h)) {
    cg_kern_wide(cg);
    e = erf_as(cg, h, cg_intr1(cg, "llvm.fabs", h), FMUL(h, h));
    e = sel(cg, LLVMRealUNO, h, h, h, e);
  } else {
    e = erf_(cg, h);
  }
  return FMUL(FMUL(fc(cg, x, 0.5), x), FADD(fc(cg, x, 1), e));
}

static LLVMValueRef hsig(Cg *cg, LLVMValueRef x) {
  LLVMValueRef l = FADD(FDIV(x, fc(cg, x, 6)), fc(cg, x, 0.5));
  l = sel(cg, LLVMRealOGE, x, fc(cg, x, 3), fc(cg, x, 1), l);
  return sel(cg, LLVMRealOLE, x, fc(cg, x, -3), fc(cg, x, 0), l);
}

static LLVMValueRef expm1_(Cg *cg, LLVMValueRef x) { return cg_libm1(cg, "expm1", x); }

/* The float function of op on operands already in one float type. */
static LLVMValueRef float_op(Cg *cg, IrOp op, const IrAttrs *a, LLVMValueRef *v) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef x = v[0], y = v[1], z0 = x ? fc(cg, x, 0) : NULL;
  double alpha = ir_attr_float(a, "alpha", op == IR_OP_LEAKY_RELU ? 0.01 : 1.0);
  switch (op) {
  case IR_OP_NEG: return LLVMBuildFNeg(b, x, "");
  case IR_OP_EXP: return cg_exp(cg, x);
  case IR_OP_LOG: return cg_log(cg, x);
  case IR_OP_SQRT: return cg_intr1(cg, "llvm.sqrt", x);
  case IR_OP_RSQRT: return FDIV(fc(cg, x, 1), cg_intr1(cg, "llvm.sqrt", x));
  case IR_OP_ABS: return cg_intr1(cg, "llvm.fabs", x);
  case IR_OP_SIGN:
    return sel(cg, LLVMRealOGT, x, z0, fc(cg, x, 1),
               sel(cg, LLVMRealOLT, x, z0, fc(cg, x, -1), x));
  case IR_OP_SIN: return cg_intr1(cg, "llvm.sin", x);
  case IR_OP_COS: return cg_intr1(cg, "llvm.cos", x);
  case IR_OP_ERF: return erf_(cg, x);
  case IR_OP_CLAMP: {
    LLVMValueRef r = cg_intr2(cg, "llvm.maxnum", x, fc(cg, x, ir_attr_float(a, "lo", -INFINITY)));
    r = cg_intr2(cg, "llvm.minnum", r, fc(cg, x, ir_attr_float(a, "hi", INFINITY)));
    return sel(cg, LLVMRealUNO, x, x, x, r);
  }
  case IR_OP_STEP:
    return sel(cg, LLVMRealOGT, x, fc(cg, x, ir_attr_float(a, "threshold", 0)),
               fc(cg, x, 1), z0);
  case IR_OP_SIGMOID: return cg_sigmoid(cg, x);
  case IR_OP_TANH: return tanh_(cg, x);
  case IR_OP_RELU: return sel(cg, LLVMRealOLT, x, z0, z0, x);
  case IR_OP_RELU6:
    return sel(cg, LLVMRealOLT, x, z0, z0,
               sel(cg, LLVMRealOGT, x, fc(cg, x, 6), fc(cg, x, 6), x));
  case IR_OP_LEAKY_RELU:
    return sel(cg, LLVMRealOGE, x, z0, x, FMUL(fc(cg, x, alpha), x));
  case IR_OP_ELU:
    return sel(cg, LLVMRealOGT, x, z0, x, FMUL(fc(cg, x, alpha), expm1_(cg, x)));
  case IR_OP_SELU: {
    LLVMValueRef e = FMUL(fc(cg, x, 1.6732632423543772848170429916717), expm1_(cg, x));
    return FMUL(fc(cg, x, 1.0507009873554804934193349852946),
                sel(cg, LLVMRealOGT, x, z0, x, e));
  }
  case IR_OP_GELU: return gelu(cg, x);
  case IR_OP_GELU_TANH: {
    LLVMValueRef c = FMUL(FMUL(x, x), FMUL(x, fc(cg, x, 0.044715)));
    LLVMValueRef t = tanh_(cg, FMUL(fc(cg, x, sqrt(2 / M_PI)), FADD(x, c)));
    return FMUL(FMUL(fc(cg, x, 0.5), x), FADD(fc(cg, x, 1), t));
  }
  case IR_OP_SILU: return FMUL(x, cg_sigmoid(cg, x));
  case IR_OP_MISH: return FMUL(x, tanh_(cg, softplus(cg, x, 1, 20)));
  case IR_OP_SOFTPLUS:
    return softplus(cg, x, ir_attr_float(a, "beta", 1.0),
                    ir_attr_float(a, "threshold", 20));
  case IR_OP_SOFTSIGN:
    return FDIV(x, FADD(fc(cg, x, 1), cg_intr1(cg, "llvm.fabs", x)));
  case IR_OP_HARD_SIGMOID: return hsig(cg, x);
  case IR_OP_HARD_SWISH: return FMUL(x, hsig(cg, x));
  case IR_OP_ADD: return FADD(x, y);
  case IR_OP_SUB: return FSUB(x, y);
  case IR_OP_MUL: return FMUL(x, y);
  case IR_OP_DIV: return FDIV(x, y);
  case IR_OP_POW: return cg_intr2(cg, "llvm.pow", x, y);
  case IR_OP_MAXIMUM: return cg_fmax_nan(cg, x, y);
  case IR_OP_MINIMUM: return fmin_nan(cg, x, y);
  default: NNC_ASSERT(0 && "not a float op"); return NULL;
  }
}

static bool is_cmp(IrOp op) { return op >= IR_OP_EQ && op <= IR_OP_GE; }

static LLVMValueRef compare(Cg *cg, IrOp op, DType in, LLVMValueRef x,
                            LLVMValueRef y) {
  int k = op - IR_OP_EQ; /* eq ne lt le gt ge */
  if (cg_is_fp(LLVMTypeOf(x))) {
    static const LLVMRealPredicate fp[6] = {LLVMRealOEQ, LLVMRealUNE, LLVMRealOLT,
                                            LLVMRealOLE, LLVMRealOGT, LLVMRealOGE};
    return LLVMBuildFCmp(cg->b, fp[k], x, y, "");
  }
  static const LLVMIntPredicate sp[6] = {LLVMIntEQ, LLVMIntNE, LLVMIntSLT,
                                         LLVMIntSLE, LLVMIntSGT, LLVMIntSGE};
  static const LLVMIntPredicate up[6] = {LLVMIntEQ, LLVMIntNE, LLVMIntULT,
                                         LLVMIntULE, LLVMIntUGT, LLVMIntUGE};
  return LLVMBuildICmp(cg->b, (in == DT_I32 || in == DT_I64) ? sp[k] : up[k], x, y, "");
}

/* Integer power by squaring (64 steps, wrapping); negative exponent is an
** error. */
static LLVMValueRef int_pow(Cg *cg, DType t, LLVMValueRef x, LLVMValueRef y) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef it = LLVMTypeOf(x);
  if (t != DT_U8)
    cg_set_err(cg, LLVMBuildICmp(b, LLVMIntSLT, y, LLVMConstInt(it, 0, 0), ""),
               CG_ERR_INTDIV);
  LLVMValueRef acc = LLVMConstInt(it, 1, 0), base = x, e = y;
  for (unsigned i = 0; i < LLVMGetIntTypeWidth(it); i++) {
    LLVMValueRef bit = LLVMBuildTrunc(b, e, cg->i1, "");
    acc = LLVMBuildSelect(b, bit, LLVMBuildMul(b, acc, base, ""), acc, "");
    base = LLVMBuildMul(b, base, base, "");
    e = LLVMBuildLShr(b, e, LLVMConstInt(it, 1, 0), "");
  }
  return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, y, LLVMConstInt(it, 0, 0), ""),
                         LLVMConstInt(it, 0, 0), acc, "");
}

static LLVMValueRef int_op(Cg *cg, IrOp op, DType t, LLVMValueRef x,
                           LLVMValueRef y) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef it = LLVMTypeOf(x);
  LLVMValueRef zero = LLVMConstInt(it, 0, 0);
  bool sg = t != DT_U8;
  switch (op) {
  case IR_OP_ADD: return LLVMBuildAdd(b, x, y, "");
  case IR_OP_SUB: return LLVMBuildSub(b, x, y, "");
  case IR_OP_MUL: return LLVMBuildMul(b, x, y, "");
  case IR_OP_NEG: return LLVMBuildSub(b, zero, x, "");
  case IR_OP_ABS:
    if (!sg) return x;
    return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, x, zero, ""),
                           LLVMBuildSub(b, zero, x, ""), x, "");
  case IR_OP_DIV: {
    LLVMValueRef z = LLVMBuildICmp(b, LLVMIntEQ, y, zero, "");
    cg_set_err(cg, z, CG_ERR_INTDIV);
    LLVMValueRef m1 = LLVMBuildICmp(b, LLVMIntEQ, y, LLVMConstAllOnes(it), "");
    LLVMValueRef safe = LLVMBuildSelect(b, LLVMBuildOr(b, z, sg ? m1 : LLVMConstInt(cg->i1, 0, 0), ""),
                                        LLVMConstInt(it, 1, 0), y, "");
    LLVMValueRef q = sg ? LLVMBuildSDiv(b, x, safe, "") : LLVMBuildUDiv(b, x, safe, "");
    if (sg) q = LLVMBuildSelect(b, m1, LLVMBuildSub(b, zero, x, ""), q, "");
    return q;
  }
  case IR_OP_POW: return int_pow(cg, t, x, y);
  case IR_OP_MAXIMUM: case IR_OP_MINIMUM: {
    LLVMIntPredicate p = op == IR_OP_MAXIMUM ? (sg ? LLVMIntSGT : LLVMIntUGT)
                                              : (sg ? LLVMIntSLT : LLVMIntULT);
    return LLVMBuildSelect(b, LLVMBuildICmp(b, p, x, y, ""), x, y, "");
  }
  default: return NULL;
  }
}

LLVMValueRef cg_scalar(Cg *cg, IrOp op, const IrAttrs *attrs, DType in,
                       DType out, LLVMValueRef *x) {
  LLVMBuilderRef b = cg->b;
  if (is_cmp(op)) return compare(cg, op, in, x[0], x[1]);
  if (op == IR_OP_NOT) return LLVMBuildNot(b, cg_convert(cg, x[0], in, DT_BOOL), "");
  if (op == IR_OP_AND || op == IR_OP_OR) {
    LLVMValueRef p = cg_convert(cg, x[0], in, DT_BOOL), q = cg_convert(cg, x[1], in, DT_BOOL);
    return op == IR_OP_AND ? LLVMBuildAnd(b, p, q, "") : LLVMBuildOr(b, p, q, "");
  }
  if (op == IR_OP_WHERE) return LLVMBuildSelect(b, x[0], x[1], x[2], "");
  bool iin = !cg_is_fp(LLVMTypeOf(x[0]));
  if (iin && (ir_dtype_is_int(out) || out == DT_BOOL) && in == out) {
    LLVMValueRef r = int_op(cg, op, out, x[0], ir_op_info[op].min_args > 1 ? x[1] : NULL);
    if (r) return r;
  }
  LLVMTypeRef ft = ir_dtype_is_float(out) ? cg_ctype(cg, out) : cg->f64;
  if (!iin && ir_dtype_is_float(in) && !ir_dtype_is_float(out)) ft = LLVMTypeOf(x[0]);
  LLVMValueRef v[2] = {cg_to_fp(cg, x[0], in, ft),
                       ir_op_info[op].min_args > 1 ? cg_to_fp(cg, x[1], in, ft) : NULL};
  LLVMValueRef r = float_op(cg, op, attrs, v);
  DType rt = ft == cg->f64 ? DT_F64 : DT_F32;
  return cg_convert(cg, r, rt, out);
}

/* ------------------------------------------------------ tensor emitters */

LLVMValueRef cg_elementwise(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  const IrType *t = &n->res[0]->type;
  LLVMValueRef x[3];
  for (int j = 0; j < n->nargs; j++) {
    LLVMValueRef iidx[IR_MAX_RANK];
    cg_bcast_index(cg, &n->args[j]->type, t, idx, iidx);
    x[j] = cg_elem(cg, n->args[j], iidx);
  }
  DType in = n->args[n->op == IR_OP_WHERE ? 1 : 0]->type.dtype;
  return cg_round(cg, t->dtype, cg_scalar(cg, n->op, &n->attrs, in, t->dtype, x));
}

LLVMValueRef cg_cast(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  const IrType *t = &n->res[0]->type;
  LLVMValueRef iidx[IR_MAX_RANK];
  cg_bcast_index(cg, &n->args[0]->type, t, idx, iidx);
  return cg_convert(cg, cg_elem(cg, n->args[0], iidx), n->args[0]->type.dtype,
                    t->dtype);
}

/* glu = a * sigmoid(b), swiglu = silu(a) * b, geglu = gelu(a) * b, where
** a, b are the halves of x along axis. */
LLVMValueRef cg_glu(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  const IrType *xt = &n->args[0]->type;
  DType dt = n->res[0]->type.dtype;
  int ax = cg_axis(ir_attr_int(&n->attrs, "axis", -1), xt->rank);
  LLVMValueRef bidx[IR_MAX_RANK];
  for (int k = 0; k < xt->rank; k++) bidx[k] = idx[k];
  bidx[ax] = LLVMBuildAdd(cg->b, idx[ax], cg_i64(cg, xt->dim[ax] / 2), "");
  LLVMValueRef a = cg_elem(cg, n->args[0], idx);
  LLVMValueRef bv = cg_elem(cg, n->args[0], bidx), r;
  if (n->op == IR_OP_GLU) r = FMUL(a, cg_sigmoid(cg, bv));
  else if (n->op == IR_OP_SWIGLU) r = FMUL(FMUL(a, cg_sigmoid(cg, a)), bv);
  else r = FMUL(gelu(cg, a), bv);
  return cg_round(cg, dt, r);
}
