/*
** This file contains the lowering of matmul (NumPy rules: batch dims
** broadcast, a 1-D operand gets a dimension of 1 that the result drops)
** and of attention written as one op.
**
** matmul kernel: rows [begin, end) of batch*N; for an f32/f64 result each
** row is computed in place as y[i,:] = sum_k a[i,k] b[k,:] (the i-k-j
** order, whose inner loop over j is contiguous and vectorises); other
** dtypes use a dot product per element accumulated in f64 (as the
** interpreter).  f32 matmuls over materialised operands with a unit
** stride go instead to the packed SGEMM of backend/gemm.c (one call, the
** batch folded into the rows when B has none) or, when still batched and
** small per batch element (attention's q kT and p v), to a direct
** register-tiled kernel parallel over the batch (see "small batched
** matmul" below).
**
** attention: y[..., i, c] = sum_j p_j v[j, c] / sum_j p_j with p_j =
** exp(s_j - max s), s_j = q_i . k_j * scale (+ mask, causal); a row whose
** scores are all -inf gives 0 (ir/interp_nn.c).  The kernel makes one
** online-softmax pass per row; the element emitter (two passes per
** element) remains for very long rows.
*/
#include <math.h>

#include <stdio.h>
#include <string.h>

#include "cg_int.h"
#include "gemm.h"

/* Shapes of a matmul node with the 1-D rules applied. */
typedef struct MM {
  int ra, rb, ry;     /* ranks of a, b, y */
  int64_t N, K, M;
  int nbatch;         /* batch rank of y */
  int64_t nb;         /* batch elements */
} MM;

static void mm_shape(const IrNode *n, MM *g) {
  const IrType *a = &n->args[0]->type, *b = &n->args[1]->type, *y = &n->res[0]->type;
  g->ra = a->rank;
  g->rb = b->rank;
  g->ry = y->rank;
  g->K = a->dim[a->rank - 1];
  g->N = a->rank >= 2 ? a->dim[a->rank - 2] : 1;
  g->M = b->rank >= 2 ? b->dim[b->rank - 1] : 1;
  g->nbatch = y->rank - (a->rank >= 2) - (b->rank >= 2);
  g->nb = 1;
  for (int k = 0; k < g->nbatch; k++) g->nb *= y->dim[k];
}

/* Indices of a, b, y for batch index bi (y's batch rank), i, k, j. */
static void mm_index(const IrNode *n, const MM *g, LLVMValueRef *bi,
                     LLVMValueRef i, LLVMValueRef k, LLVMValueRef j,
                     LLVMValueRef *ai, LLVMValueRef *bx, LLVMValueRef *yi,
                     LLVMValueRef zero) {
  const IrType *a = &n->args[0]->type, *b = &n->args[1]->type;
  int nba = g->ra - 2, nbb = g->rb - 2;
  for (int t = 0; t < nba; t++)
    ai[t] = a->dim[t] == 1 ? zero : bi[g->nbatch - nba + t];
  for (int t = 0; t < nbb; t++)
    bx[t] = b->dim[t] == 1 ? zero : bi[g->nbatch - nbb + t];
  int p = 0;
  if (g->ra >= 2) ai[nba] = i;
  ai[g->ra - 1] = k;
  if (g->rb >= 2) {
    bx[nbb] = k;
    bx[nbb + 1] = j;
  } else {
    bx[0] = k;
  }
  for (int t = 0; t < g->nbatch; t++) yi[p++] = bi[t];
  if (g->ra >= 2) yi[p++] = i;
  if (g->rb >= 2) yi[p++] = j;
}

/* Dot product of row i of a and column j of b, accumulated in at. */
static LLVMValueRef mm_dot(Cg *cg, const IrNode *n, const MM *g,
                           LLVMValueRef *bi, LLVMValueRef i, LLVMValueRef j,
                           LLVMTypeRef at) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef acc = cg_alloca(cg, at, "v_dot"), ai[IR_MAX_RANK],
               bx[IR_MAX_RANK], yi[IR_MAX_RANK];
  LLVMBuildStore(b, LLVMConstReal(at, 0), acc);
  CgLoop l;
  LLVMValueRef k = cg_loop_begin(cg, &l, cg_i64(cg, 0), cg_i64(cg, g->K));
  mm_index(n, g, bi, i, k, j, ai, bx, yi, cg_i64(cg, 0));
  LLVMValueRef x = cg_to_fp(cg, cg_elem(cg, n->args[0], ai), n->args[0]->type.dtype, at);
  LLVMValueRef y = cg_to_fp(cg, cg_elem(cg, n->args[1], bx), n->args[1]->type.dtype, at);
  LLVMValueRef p = cg_fm(LLVMBuildFMul(b, x, y, ""), false);
  LLVMBuildStore(b, cg_fm(LLVMBuildFAdd(b, LLVMBuildLoad2(b, at, acc, ""), p, ""), true), acc);
  cg_loop_end(cg, &l);
  return LLVMBuildLoad2(b, at, acc, "");
}

/* Batch indices of y from the flat batch number. */
static void batch_index(Cg *cg, const IrNode *n, const MM *g, LLVMValueRef bt,
                        LLVMValueRef *bi) {
  const IrType *y = &n->res[0]->type;
  for (int k = g->nbatch - 1; k >= 0; k--) {
    LLVMValueRef d = cg_i64(cg, y->dim[k]);
    bi[k] = k == 0 ? bt : LLVMBuildSRem(cg->b, bt, d, "");
    if (k > 0) bt = LLVMBuildSDiv(cg->b, bt, d, "");
  }
}

LLVMValueRef cg_matmul(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  MM g;
  mm_shape(n, &g);
  LLVMValueRef i = g.ra >= 2 ? idx[g.nbatch] : cg_i64(cg, 0);
  LLVMValueRef j = g.rb >= 2 ? idx[g.ry - 1] : cg_i64(cg, 0);
  DType dt = n->res[0]->type.dtype;
  LLVMTypeRef at = ir_dtype_is_float(dt) && dt != DT_F64 ? cg->f32 : cg->f64;
  LLVMValueRef r = mm_dot(cg, n, &g, idx, i, j, at);
  return cg_convert(cg, r, at == cg->f64 ? DT_F64 : DT_F32, dt);
}

void cg_matmul_kernel(Cg *cg, const IrNode *n, LLVMValueRef begin,
                      LLVMValueRef end) {
  MM g;
  mm_shape(n, &g);
  LLVMBuilderRef b = cg->b;
  DType dt = n->res[0]->type.dtype;
  bool direct = dt == DT_F32 || dt == DT_F64;
  LLVMTypeRef ft = cg_ctype(cg, dt);
  LLVMValueRef zero = cg_i64(cg, 0), bi[IR_MAX_RANK], ai[IR_MAX_RANK],
               bx[IR_MAX_RANK], yi[IR_MAX_RANK];
  CgLoop lr, lk, lj;
  LLVMValueRef r = cg_loop_begin(cg, &lr, begin, end);
  LLVMValueRef i = LLVMBuildSRem(b, r, cg_i64(cg, g.N), "");
  batch_index(cg, n, &g, LLVMBuildSDiv(b, r, cg_i64(cg, g.N), ""), bi);
  if (!direct) {
    LLVMValueRef j = cg_loop_begin(cg, &lj, zero, cg_i64(cg, g.M));
    mm_index(n, &g, bi, i, zero, j, ai, bx, yi, zero);
    LLVMValueRef v = mm_dot(cg, n, &g, bi, i, j, cg->f64);
    cg_store(cg, n->res[0], yi, cg_convert(cg, v, DT_F64, dt));
    cg_loop_end(cg, &lj);
    cg_loop_end(cg, &lr);
    return;
  }
  LLVMValueRef j = cg_loop_begin(cg, &lj, zero, cg_i64(cg, g.M));
  mm_index(n, &g, bi, i, zero, j, ai, bx, yi, zero);
  LLVMBuildStore(b, LLVMConstReal(ft, 0), cg_addr(cg, n->res[0], yi));
  cg_loop_end(cg, &lj);
  LLVMValueRef k = cg_loop_begin(cg, &lk, zero, cg_i64(cg, g.K));
  mm_index(n, &g, bi, i, k, zero, ai, bx, yi, zero);
  LLVMValueRef aik = cg_to_fp(cg, cg_elem(cg, n->args[0], ai), n->args[0]->type.dtype, ft);
  j = cg_loop_begin(cg, &lj, zero, cg_i64(cg, g.M));
  mm_index(n, &g, bi, i, k, j, ai, bx, yi, zero);
  LLVMValueRef bv = cg_to_fp(cg, cg_elem(cg, n->args[1], bx), n->args[1]->type.dtype, ft);
  LLVMValueRef ya = cg_addr(cg, n->res[0], yi);
  LLVMValueRef acc = LLVMBuildLoad2(b, ft, ya, "");
  acc = cg_fm(LLVMBuildFAdd(b, acc, cg_fm(LLVMBuildFMul(b, aik, bv, ""), false), ""), false);
  LLVMBuildStore(b, acc, ya);
  cg_loop_end(cg, &lj);
  cg_loop_end(cg, &lk);
  cg_loop_end(cg, &lr);
}

/* ----------------------------------------------------------- attention */

typedef struct Att {
  const IrNode *n;
  int64_t Tq, D, Tk, Dv;
  int ry;
  double scale;
  bool causal;
} Att;

/* Operand index for batch indices of y (idx[0..ry-2)) and two trailing. */
static void att_index(const Att *g, const IrType *t, LLVMValueRef *idx,
                      LLVMValueRef r, LLVMValueRef c, LLVMValueRef *out,
                      LLVMValueRef zero) {
  int nb = t->rank - 2, yb = g->ry - 2;
  for (int k = 0; k < nb; k++) out[k] = t->dim[k] == 1 ? zero : idx[yb - nb + k];
  out[nb] = r;
  out[nb + 1] = c;
}

/* Score s_j of query i (masked), in ft. */
static LLVMValueRef att_score(Cg *cg, const Att *g, LLVMValueRef *idx,
                              LLVMValueRef i, LLVMValueRef j, LLVMTypeRef ft) {
  const IrNode *n = g->n;
  LLVMBuilderRef b = cg->b;
  LLVMValueRef zero = cg_i64(cg, 0), qi[IR_MAX_RANK], ki[IR_MAX_RANK];
  LLVMValueRef acc = cg_alloca(cg, ft, "v_s");
  LLVMBuildStore(b, LLVMConstReal(ft, 0), acc);
  CgLoop l;
  LLVMValueRef c = cg_loop_begin(cg, &l, zero, cg_i64(cg, g->D));
  att_index(g, &n->args[0]->type, idx, i, c, qi, zero);
  att_index(g, &n->args[1]->type, idx, j, c, ki, zero);
  LLVMValueRef p = LLVMBuildFMul(b, cg_elem(cg, n->args[0], qi), cg_elem(cg, n->args[1], ki), "");
  LLVMBuildStore(b, cg_fm(LLVMBuildFAdd(b, LLVMBuildLoad2(b, ft, acc, ""), p, ""), true), acc);
  cg_loop_end(cg, &l);
  LLVMValueRef s = LLVMBuildFMul(b, LLVMBuildLoad2(b, ft, acc, ""), LLVMConstReal(ft, g->scale), "");
  LLVMValueRef ninf = LLVMConstReal(ft, -INFINITY);
  if (n->nargs > 3) {
    const IrType *mt = &n->args[3]->type;
    IrType st = n->res[0]->type;
    st.dim[st.rank - 1] = g->Tk;
    LLVMValueRef si[IR_MAX_RANK], mi[IR_MAX_RANK];
    for (int k = 0; k < st.rank - 2; k++) si[k] = idx[k];
    si[st.rank - 2] = i;
    si[st.rank - 1] = j;
    cg_bcast_index(cg, mt, &st, si, mi);
    LLVMValueRef mv = cg_elem(cg, n->args[3], mi);
    if (mt->dtype == DT_BOOL) s = LLVMBuildSelect(b, mv, s, ninf, "");
    else s = LLVMBuildFAdd(b, s, cg_to_fp(cg, mv, mt->dtype, ft), "");
  }
  if (g->causal)
    s = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, j, i, ""), ninf, s, "");
  return s;
}

LLVMValueRef cg_attention(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  const IrType *q = &n->args[0]->type, *k = &n->args[1]->type, *v = &n->args[2]->type;
  Att g = {.n = n, .Tq = q->dim[q->rank - 2], .D = q->dim[q->rank - 1],
           .Tk = k->dim[k->rank - 2], .Dv = v->dim[v->rank - 1],
           .ry = n->res[0]->type.rank};
  g.scale = ir_attr_float(&n->attrs, "scale", 1 / sqrt((double)g.D));
  g.causal = ir_attr_bool(&n->attrs, "causal", false);
  DType dt = n->res[0]->type.dtype;
  LLVMTypeRef ft = cg_ctype(cg, dt);
  LLVMBuilderRef b = cg->b;
  LLVMValueRef i = idx[g.ry - 2], c = idx[g.ry - 1], zero = cg_i64(cg, 0);
  LLVMValueRef am = cg_alloca(cg, ft, "v_m"), as = cg_alloca(cg, ft, "v_l"),
               aa = cg_alloca(cg, ft, "v_o");
  LLVMBuildStore(b, LLVMConstReal(ft, -INFINITY), am);
  LLVMBuildStore(b, LLVMConstReal(ft, 0), as);
  LLVMBuildStore(b, LLVMConstReal(ft, 0), aa);
  CgLoop l;
  LLVMValueRef j = cg_loop_begin(cg, &l, zero, cg_i64(cg, g.Tk));
  LLVMValueRef s = att_score(cg, &g, idx, i, j, ft);
  LLVMBuildStore(b, cg_intr2(cg, "llvm.maxnum", LLVMBuildLoad2(b, ft, am, ""), s), am);
  cg_loop_end(cg, &l);
  LLVMValueRef m = LLVMBuildLoad2(b, ft, am, "");
  j = cg_loop_begin(cg, &l, zero, cg_i64(cg, g.Tk));
  s = att_score(cg, &g, idx, i, j, ft);
  LLVMValueRef p = cg_exp(cg, LLVMBuildFSub(b, s, m, ""));
  LLVMValueRef vi[IR_MAX_RANK];
  att_index(&g, v, idx, j, c, vi, zero);
  LLVMValueRef pv = LLVMBuildFMul(b, p, cg_elem(cg, n->args[2], vi), "");
  LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, ft, as, ""), p, ""), as);
  LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, ft, aa, ""), pv, ""), aa);
  cg_loop_end(cg, &l);
  LLVMValueRef r = LLVMBuildFDiv(b, LLVMBuildLoad2(b, ft, aa, ""), LLVMBuildLoad2(b, ft, as, ""), "");
  LLVMValueRef dead = LLVMBuildFCmp(b, LLVMRealOEQ, m, LLVMConstReal(ft, -INFINITY), "");
  return cg_round(cg, dt, LLVMBuildSelect(b, dead, LLVMConstReal(ft, 0), r, ""));
}

/* attention kernel over the rows (batch..., i) of y: one pass over the
** keys with the online softmax (running max m, sum l and output row acc
** rescaled by exp(m_old - m_new) when the max grows), so the scores are
** computed once; acc is a stack row of Dv values and its update over c
** vectorises.  Rows of more than 4096 values use the element emitter. */
void cg_attention_kernel(Cg *cg, const IrNode *n, LLVMValueRef begin,
                         LLVMValueRef end) {
  const IrType *q = &n->args[0]->type, *k = &n->args[1]->type, *v = &n->args[2]->type;
  const IrType *yt = &n->res[0]->type;
  Att g = {.n = n, .Tq = q->dim[q->rank - 2], .D = q->dim[q->rank - 1],
           .Tk = k->dim[k->rank - 2], .Dv = v->dim[v->rank - 1], .ry = yt->rank};
  g.scale = ir_attr_float(&n->attrs, "scale", 1 / sqrt((double)g.D));
  g.causal = ir_attr_bool(&n->attrs, "causal", false);
  DType dt = yt->dtype;
  LLVMTypeRef ft = cg_ctype(cg, dt);
  LLVMBuilderRef b = cg->b;
  LLVMValueRef zero = cg_i64(cg, 0), idx[IR_MAX_RANK], vi[IR_MAX_RANK];
  CgLoop lr, lj, lc;
  LLVMValueRef row = cg_loop_begin(cg, &lr, begin, end);
  cg_row_index(cg, yt, row, idx);
  if (g.Dv > 4096) {
    idx[g.ry - 1] = cg_loop_begin(cg, &lc, zero, cg_i64(cg, g.Dv));
    cg_store(cg, n->res[0], idx, cg_attention(cg, n, idx));
    cg_loop_end(cg, &lc);
    cg_loop_end(cg, &lr);
    return;
  }
  LLVMTypeRef rowt = LLVMArrayType2(ft, (uint64_t)g.Dv);
  LLVMValueRef acc = cg_alloca(cg, rowt, "v_acc");
  LLVMValueRef am = cg_alloca(cg, ft, "v_m"), al = cg_alloca(cg, ft, "v_l");
  LLVMValueRef ninf = LLVMConstReal(ft, -INFINITY), one = LLVMConstReal(ft, 1);
  LLVMValueRef fz = LLVMConstReal(ft, 0), i = idx[g.ry - 2];
  LLVMBuildStore(b, ninf, am);
  LLVMBuildStore(b, fz, al);
  LLVMValueRef c = cg_loop_begin(cg, &lc, zero, cg_i64(cg, g.Dv));
  LLVMValueRef gi[2] = {zero, c};
  LLVMBuildStore(b, fz, LLVMBuildInBoundsGEP2(b, rowt, acc, gi, 2, ""));
  cg_loop_end(cg, &lc);
  LLVMValueRef j = cg_loop_begin(cg, &lj, zero, cg_i64(cg, g.Tk));
  LLVMValueRef s = att_score(cg, &g, idx, i, j, ft);
  LLVMValueRef mo = LLVMBuildLoad2(b, ft, am, "");
  LLVMValueRef mn = cg_intr2(cg, "llvm.maxnum", mo, s);
  LLVMValueRef dead = LLVMBuildFCmp(b, LLVMRealOEQ, mn, ninf, "");
  LLVMValueRef alpha = LLVMBuildSelect(b, dead, one, cg_exp(cg, LLVMBuildFSub(b, mo, mn, "")), "");
  LLVMValueRef p = LLVMBuildSelect(b, dead, fz, cg_exp(cg, LLVMBuildFSub(b, s, mn, "")), "");
  LLVMBuildStore(b, mn, am);
  LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildFMul(b, LLVMBuildLoad2(b, ft, al, ""), alpha, ""), p, ""), al);
  c = cg_loop_begin(cg, &lc, zero, cg_i64(cg, g.Dv));
  gi[1] = c;
  LLVMValueRef ap = LLVMBuildInBoundsGEP2(b, rowt, acc, gi, 2, "");
  att_index(&g, v, idx, j, c, vi, zero);
  LLVMValueRef pv = cg_fm(LLVMBuildFMul(b, p, cg_elem(cg, n->args[2], vi), ""), false);
  LLVMValueRef na = cg_fm(LLVMBuildFMul(b, LLVMBuildLoad2(b, ft, ap, ""), alpha, ""), false);
  LLVMBuildStore(b, cg_fm(LLVMBuildFAdd(b, na, pv, ""), false), ap);
  cg_loop_end(cg, &lc);
  cg_loop_end(cg, &lj);
  LLVMValueRef m = LLVMBuildLoad2(b, ft, am, ""), l = LLVMBuildLoad2(b, ft, al, "");
  LLVMValueRef empty = LLVMBuildFCmp(b, LLVMRealOEQ, m, ninf, "");
  c = cg_loop_begin(cg, &lc, zero, cg_i64(cg, g.Dv));
  gi[1] = c;
  LLVMValueRef r = LLVMBuildFDiv(b, LLVMBuildLoad2(b, ft, LLVMBuildInBoundsGEP2(b, rowt, acc, gi, 2, ""), ""), l, "");
  idx[g.ry - 1] = c;
  cg_store(cg, n->res[0], idx, cg_round(cg, dt, LLVMBuildSelect(b, empty, fz, r, "")));
  cg_loop_end(cg, &lc);
  cg_loop_end(cg, &lr);
}

/* ---------------------------------------------------------------- SGEMM */

/* The storage of one operand as an SGEMM matrix: transposed or not and
** its leading dimension; false when neither of the two last strides is 1. */
typedef struct GemmLayout {
  bool ta, tb;
  int64_t lda, ldb;
} GemmLayout;

static bool gemm_layout(Cg *cg, const IrNode *mm, GemmLayout *l) {
  const IrValue *a = mm->args[0], *b = mm->args[1];
  if (a->type.dtype != DT_F32 || b->type.dtype != DT_F32 ||
      mm->res[0]->type.dtype != DT_F32)
    return false;
  CgVal *av = cg_val(cg, a), *bv = cg_val(cg, b);
  if (av->inl || bv->inl) return false;
  MM g;
  mm_shape(mm, &g);
  const int64_t *sa = av->st, *sb = bv->st;
  int ra = a->type.rank, rb = b->type.rank;
  if (ra == 1) {
    l->ta = false;
    l->lda = g.K;
    if (sa[0] != 1) return false;
  } else if (sa[ra - 1] == 1 && sa[ra - 2] >= g.K) {
    l->ta = false;
    l->lda = sa[ra - 2];
  } else if (sa[ra - 2] == 1 && sa[ra - 1] >= g.N) {
    l->ta = true;
    l->lda = sa[ra - 1];
  } else {
    return false;
  }
  if (rb == 1) {
    l->tb = false;
    l->ldb = 1;
    return sb[0] == 1;
  }
  if (sb[rb - 1] == 1 && sb[rb - 2] >= g.M) {
    l->tb = false;
    l->ldb = sb[rb - 2];
  } else if (sb[rb - 2] == 1 && sb[rb - 1] >= g.K) {
    l->tb = true;
    l->ldb = sb[rb - 1];
  } else {
    return false;
  }
  return true;
}

static bool direct_ok(Cg *cg, const IrNode *mm);

/* When B has no batch (rank 2, or batch dims of 1) and the batch elements
** of A are whole consecutive row blocks (A not transposed, batch strides
** N·lda, N·lda·d, ...), the batched product is one SGEMM over nb·N rows:
** fold the batch into the rows of g (nb becomes 1). */
static void gemm_fold_batch(Cg *cg, const IrNode *mm, const GemmLayout *l, MM *g) {
  const IrType *a = &mm->args[0]->type, *b = &mm->args[1]->type;
  if (g->nb < 2 || l->ta || g->ra < 2) return;
  for (int k = 0; k + 2 < b->rank; k++)
    if (b->dim[k] != 1) return;
  const int64_t *sa = cg_val(cg, mm->args[0])->st;
  int64_t expect = g->N * l->lda, na = 1;
  for (int k = a->rank - 3; k >= 0; k--) {
    if (a->dim[k] != 1 && sa[k] != expect) return;
    expect *= a->dim[k];
    na *= a->dim[k];
  }
  if (na != g->nb) return;
  g->N *= g->nb;
  g->nb = 1;
}

bool cg_gemm_ok(Cg *cg, const IrNode *mm) {
  GemmLayout l;
  return gemm_layout(cg, mm, &l);
}

static void gemm_spec(Cg *cg, const GemmLayout *l, bool bias, bool relu,
                      GemmSpec *s, char *name, size_t cap) {
  snprintf(name, cap, "nnc_sgemm_%c%c%s%s", l->ta ? 't' : 'n', l->tb ? 't' : 'n',
           bias ? "_bias" : "", relu ? "_relu" : "");
  memset(s, 0, sizeof *s);
  s->name = name;
  s->trans_a = l->ta;
  s->trans_b = l->tb;
  s->bias = bias;
  s->relu = relu;
  s->vec_floats = cg->vec_floats;
  s->vec_regs = cg->vec_regs;
}

int64_t cg_gemm_work(Cg *cg, const IrNode *mm) {
  if (mm->op != IR_OP_MATMUL) return cg_conv_gemm_work(cg, mm);
  if (direct_ok(cg, mm)) return 1; /* the direct kernel needs none */
  GemmLayout l;
  GemmSpec s;
  char name[64];
  MM g;
  gemm_layout(cg, mm, &l);
  gemm_spec(cg, &l, false, false, &s, name, sizeof name);
  mm_shape(mm, &g);
  gemm_fold_batch(cg, mm, &l, &g);
  return cg_gemm_work_floats(&s, g.N, g.M, g.K, 2);
}

static LLVMValueRef sgemm_fn(Cg *cg, bool ta, bool tb, bool ap, int64_t M, int64_t N,
                             int64_t K, int64_t *work) {
  GemmLayout l = {.ta = ta, .tb = tb};
  GemmSpec s;
  char name[64];
  gemm_spec(cg, &l, false, false, &s, name, sizeof name);
  if (ap) {
    s.a_packed = true;
    size_t len = strlen(name);
    snprintf(name + len, sizeof name - len, "_apacked");
  }
  if (work) *work = cg_gemm_work_floats(&s, M, N, K, 2);
  LLVMValueRef gf = LLVMGetNamedFunction(cg->mod, name);
  if (!gf) {
    gf = cg_gemm_define(cg->mod, NULL, &s);
    LLVMSetLinkage(gf, LLVMInternalLinkage);
  }
  return gf;
}

LLVMTypeRef cg_sgemm_type(Cg *cg) {
  LLVMTypeRef gp[12] = {cg->i64, cg->i64, cg->i64, cg->ptr, cg->i64, cg->ptr,
                        cg->i64, cg->ptr, cg->i64, cg->f32, cg->ptr, cg->ptr};
  return LLVMFunctionType(cg->vd, gp, 12, false);
}

LLVMValueRef cg_sgemm_fn(Cg *cg, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                         int64_t *work) {
  return sgemm_fn(cg, ta, tb, false, M, N, K, work);
}

LLVMValueRef cg_sgemm_apacked_fn(Cg *cg, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                                 int64_t *work) {
  return sgemm_fn(cg, ta, tb, true, M, N, K, work);
}

void cg_sgemm_tile(Cg *cg, int *mr, int *nr, int *kc) {
  GemmLayout l = {.ta = false, .tb = false};
  GemmSpec s;
  GemmBlocking bk;
  char name[64];
  gemm_spec(cg, &l, false, false, &s, name, sizeof name);
  cg_gemm_blocking(&s, &bk);
  *mr = bk.mr;
  *nr = bk.nr;
  *kc = bk.kc;
}

/* Element offset of batch bt in operand t (batch dims broadcast). */
static LLVMValueRef batch_off(Cg *cg, const MM *g, const IrType *t, const int64_t *st,
                              LLVMValueRef *bi, int nmat) {
  LLVMValueRef off = cg_i64(cg, 0);
  int nb = t->rank - nmat;
  for (int k = 0; k < nb; k++)
    if (t->dim[k] != 1)
      off = LLVMBuildAdd(cg->b, off,
                         LLVMBuildMul(cg->b, bi[g->nbatch - nb + k], cg_i64(cg, st[k]), ""), "");
  return off;
}

/* ------------------------------------------------ small batched matmul */

/* A batched f32 matmul whose per-batch product is small (the attention
** products of a transformer: [64,32]·[32,64] per head) gains nothing from
** the SGEMM's packing and blocking, whose fixed costs per call dominate.
** Such a matmul gets a direct kernel instead, parallel over the batch: per
** batch element it copies op(B) (K×M, any strides) into a stack panel of
** K rows of Mp = M rounded up to the vector width W (zero padded), then
** for each block of V·W columns runs register tiles of R rows × V vectors
** over the rows of A: for k in [0, K), V vector loads of the panel row, R
** broadcasts of A[i, k] (read in place, any strides) and R·V fused
** multiply-adds, then the epilogue (+ bias, relu) and the stores (masked
** for the last partial vector).  Each element is one sum in k order, so
** the result does not depend on the thread count. */
#define DIRECT_PANEL_FLOATS 8192 /* the K×Mp panel: 32 KiB, within L1 */
#define DIRECT_MAX_ROWS 512      /* N per batch element */

static int direct_vecs(Cg *cg) { return cg->vec_regs >= 32 ? 4 : 2; }

static int direct_rows(Cg *cg) {
  int v = direct_vecs(cg), r = (cg->vec_regs - v - 1) / v;
  return r > 8 ? 8 : r;
}

/* The direct kernel: a matmul still batched after gemm_fold_batch. */
static bool direct_ok(Cg *cg, const IrNode *mm) {
  MM g;
  GemmLayout l;
  if (mm->op != IR_OP_MATMUL || !gemm_layout(cg, mm, &l)) return false;
  mm_shape(mm, &g);
  gemm_fold_batch(cg, mm, &l, &g);
  int64_t W = cg->vec_floats, Mp = (g.M + W - 1) / W * W;
  return mm->op == IR_OP_MATMUL && g.ra >= 2 && g.rb >= 2 && g.nb >= 2 &&
         cg->vec_floats >= 4 && g.K * Mp <= DIRECT_PANEL_FLOATS &&
         g.N <= DIRECT_MAX_ROWS && g.K >= 1 && g.M >= 1 && g.N >= 1;
}

static LLVMValueRef vsplat(Cg *cg, LLVMValueRef x, int w) {
  LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(x), (unsigned)w);
  LLVMValueRef v = LLVMBuildInsertElement(cg->b, LLVMGetUndef(vt), x, cg_i32(cg, 0), "");
  return LLVMBuildShuffleVector(cg->b, v, LLVMGetUndef(vt),
                                LLVMConstNull(LLVMVectorType(cg->i32, (unsigned)w)), "");
}

static LLVMValueRef fptr(Cg *cg, LLVMValueRef base, LLVMValueRef off) {
  return LLVMBuildInBoundsGEP2(cg->b, cg->f32, base, &off, 1, "");
}

typedef struct Direct {
  MM g;
  int W, V, R;
  int64_t Mp, sai, sak;       /* A's strides along i and k */
  LLVMValueRef y, a, panel, bias; /* y, a: this batch element's bases */
  bool relu;
  LLVMTypeRef vt;
} Direct;

/* One register tile: rows [i0, i0 + nr) by the nv vectors from column j0
** (the last of them partial, masked, when the tile ends at column M). */
static void direct_tile(Cg *cg, const Direct *d, LLVMValueRef i0, int nr,
                        LLVMValueRef j0, int nv, bool last) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef acc[8][4];
  LLVMValueRef slot = cg_alloca(cg, LLVMArrayType2(d->vt, (uint64_t)(nr * nv)), "v_tile");
  for (int r = 0; r < nr; r++)
    for (int v = 0; v < nv; v++) {
      LLVMValueRef gi[2] = {cg_i64(cg, 0), cg_i64(cg, r * nv + v)};
      acc[r][v] = LLVMBuildInBoundsGEP2(b, LLVMArrayType2(d->vt, (uint64_t)(nr * nv)), slot, gi, 2, "");
      LLVMBuildStore(b, LLVMConstNull(d->vt), acc[r][v]);
    }
  CgLoop lk;
  LLVMValueRef k = cg_loop_begin(cg, &lk, cg_i64(cg, 0), cg_i64(cg, d->g.K));
  LLVMValueRef bv[4];
  LLVMValueRef prow = LLVMBuildNSWMul(b, k, cg_i64(cg, d->Mp), "");
  for (int v = 0; v < nv; v++) {
    LLVMValueRef o = LLVMBuildNSWAdd(b, prow, LLVMBuildNSWAdd(b, j0, cg_i64(cg, v * d->W), ""), "");
    bv[v] = LLVMBuildLoad2(b, d->vt, fptr(cg, d->panel, o), "");
    LLVMSetAlignment(bv[v], 4);
  }
  LLVMValueRef ka = LLVMBuildNSWMul(b, k, cg_i64(cg, d->sak), "");
  for (int r = 0; r < nr; r++) {
    LLVMValueRef i = LLVMBuildNSWAdd(b, i0, cg_i64(cg, r), "");
    LLVMValueRef o = LLVMBuildNSWAdd(b, LLVMBuildNSWMul(b, i, cg_i64(cg, d->sai), ""), ka, "");
    LLVMValueRef av = vsplat(cg, LLVMBuildLoad2(b, cg->f32, fptr(cg, d->a, o), ""), d->W);
    for (int v = 0; v < nv; v++) {
      LLVMValueRef p = cg_fm(LLVMBuildFMul(b, av, bv[v], ""), false);
      LLVMValueRef s = LLVMBuildFAdd(b, LLVMBuildLoad2(b, d->vt, acc[r][v], ""), p, "");
      LLVMBuildStore(b, cg_fm(s, false), acc[r][v]);
    }
  }
  cg_loop_end(cg, &lk);
  /* epilogue and stores */
  LLVMValueRef zero = LLVMConstNull(d->vt);
  for (int v = 0; v < nv; v++) {
    LLVMValueRef j = LLVMBuildNSWAdd(b, j0, cg_i64(cg, v * d->W), "");
    int64_t live = last && v == nv - 1 ? d->g.M - (d->Mp - d->W) : d->W;
    LLVMValueRef bias = NULL;
    if (d->bias) {
      bias = LLVMBuildLoad2(b, d->vt, fptr(cg, d->bias, j), "");
      LLVMSetAlignment(bias, 4);
    }
    LLVMValueRef mask = NULL;
    if (live < d->W) {
      LLVMValueRef m[64];
      for (int l = 0; l < d->W; l++) m[l] = LLVMConstInt(cg->i1, l < live, 0);
      mask = LLVMConstVector(m, (unsigned)d->W);
    }
    for (int r = 0; r < nr; r++) {
      LLVMValueRef x = LLVMBuildLoad2(b, d->vt, acc[r][v], "");
      if (bias) x = LLVMBuildFAdd(b, x, bias, "");
      if (d->relu)
        x = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, x, zero, ""), zero, x, "");
      LLVMValueRef i = LLVMBuildNSWAdd(b, i0, cg_i64(cg, r), "");
      LLVMValueRef o = LLVMBuildNSWAdd(b, LLVMBuildNSWMul(b, i, cg_i64(cg, d->g.M), ""), j, "");
      LLVMValueRef yp = fptr(cg, d->y, o);
      if (!mask) {
        LLVMSetAlignment(LLVMBuildStore(b, x, yp), 4);
        continue;
      }
      LLVMTypeRef ov[2] = {d->vt, cg->ptr};
      unsigned id = LLVMLookupIntrinsicID("llvm.masked.store", 17);
      LLVMValueRef f = LLVMGetIntrinsicDeclaration(cg->mod, id, ov, 2);
      LLVMTypeRef fty = LLVMIntrinsicGetType(cg->ctx, id, ov, 2);
      LLVMValueRef args[4] = {x, yp, cg_i32(cg, 4), mask};
      LLVMBuildCall2(b, fty, f, args, 4, "");
    }
  }
}

/* The tiles of all N rows for the nv vectors from column j0. */
static void direct_block(Cg *cg, const Direct *d, LLVMValueRef j0, int nv, bool last) {
  int64_t full = d->g.N / d->R, rest = d->g.N % d->R;
  if (full > 0) {
    CgLoop li;
    LLVMValueRef ib = cg_loop_begin(cg, &li, cg_i64(cg, 0), cg_i64(cg, full));
    direct_tile(cg, d, LLVMBuildNSWMul(cg->b, ib, cg_i64(cg, d->R), ""), d->R, j0, nv, last);
    cg_loop_end(cg, &li);
  }
  if (rest > 0) direct_tile(cg, d, cg_i64(cg, full * d->R), (int)rest, j0, nv, last);
}

/* The direct kernel body(begin, end, ctx) over batch elements [begin, end);
** ctx holds the pointers y, a, b, bias. */
static LLVMValueRef direct_kernel(Cg *cg, const IrNode *mm, const char *name,
                                  bool bias, bool relu, LLVMTypeRef sty) {
  Direct d = {.W = cg->vec_floats, .V = direct_vecs(cg), .R = direct_rows(cg),
              .relu = relu};
  mm_shape(mm, &d.g);
  const IrType *at = &mm->args[0]->type, *bt = &mm->args[1]->type;
  CgVal *av = cg_val(cg, mm->args[0]), *bv = cg_val(cg, mm->args[1]);
  d.Mp = (d.g.M + d.W - 1) / d.W * d.W;
  d.sai = av->st[at->rank - 2];
  d.sak = av->st[at->rank - 1];
  int64_t sbk = bv->st[bt->rank - 2], sbj = bv->st[bt->rank - 1];
  d.vt = LLVMVectorType(cg->f32, (unsigned)d.W);
  LLVMTypeRef bpt[3] = {cg->i64, cg->i64, cg->ptr};
  LLVMTypeRef fty = LLVMFunctionType(cg->vd, bpt, 3, false);
  LLVMValueRef fn = LLVMAddFunction(cg->mod, name, fty);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  const char *attrs[2] = {"noinline", "nounwind"};
  for (int i = 0; i < 2; i++)
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(cg->ctx, LLVMGetEnumAttributeKindForName(attrs[i], strlen(attrs[i])), 0));
  char w[16];
  snprintf(w, sizeof w, "%d", d.W * 32);
  static const char *const keys[2] = {"prefer-vector-width", "min-legal-vector-width"};
  for (int i = 0; i < 2; i++)
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(cg->ctx, keys[i], (unsigned)strlen(keys[i]),
                                                      w, (unsigned)strlen(w)));
  /* a pseudo kernel so that cg_alloca and the loops work in fn */
  CgKern *saved = cg->k, kern = {.fn = fn};
  kern.entry = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
  cg->k = &kern;
  LLVMBuilderRef b = cg->b;
  LLVMPositionBuilderAtEnd(b, kern.entry);
  LLVMValueRef ctx = LLVMGetParam(fn, 2), p[4];
  for (int i = 0; i < 4; i++)
    p[i] = LLVMBuildLoad2(b, cg->ptr, LLVMBuildStructGEP2(b, sty, ctx, (unsigned)i, ""), "");
  d.panel = cg_alloca(cg, LLVMArrayType2(cg->f32, (uint64_t)(d.g.K * d.Mp)), "v_panel");
  LLVMSetAlignment(d.panel, 64);
  LLVMValueRef zero = cg_i64(cg, 0);
  if (bias) { /* the bias, zero padded to Mp */
    d.bias = cg_alloca(cg, LLVMArrayType2(cg->f32, (uint64_t)d.Mp), "v_bias");
    LLVMSetAlignment(d.bias, 64);
    for (int64_t j = 0; j < d.Mp; j++) {
      LLVMValueRef x = LLVMConstReal(cg->f32, 0);
      if (j < d.g.M) x = LLVMBuildLoad2(b, cg->f32, fptr(cg, p[3], cg_i64(cg, j)), "");
      LLVMBuildStore(b, x, fptr(cg, d.bias, cg_i64(cg, j)));
    }
  }
  /* padding columns of the panel: zero once */
  if (d.Mp > d.g.M) {
    CgLoop lk;
    LLVMValueRef k = cg_loop_begin(cg, &lk, zero, cg_i64(cg, d.g.K));
    for (int64_t j = d.g.M; j < d.Mp; j++)
      LLVMBuildStore(b, LLVMConstReal(cg->f32, 0),
                     fptr(cg, d.panel, LLVMBuildNSWAdd(b, LLVMBuildNSWMul(b, k, cg_i64(cg, d.Mp), ""),
                                                      cg_i64(cg, j), "")));
    cg_loop_end(cg, &lk);
  }
  CgLoop lb, l1, l2;
  LLVMValueRef bt_ = cg_loop_begin(cg, &lb, LLVMGetParam(fn, 0), LLVMGetParam(fn, 1));
  LLVMValueRef bi[IR_MAX_RANK];
  batch_index(cg, mm, &d.g, bt_, bi);
  LLVMValueRef ao = batch_off(cg, &d.g, at, av->st, bi, 2);
  LLVMValueRef bo = batch_off(cg, &d.g, bt, bv->st, bi, 2);
  d.a = fptr(cg, p[1], ao);
  d.y = fptr(cg, p[0], LLVMBuildNSWMul(b, bt_, cg_i64(cg, d.g.N * d.g.M), ""));
  LLVMValueRef bb = fptr(cg, p[2], bo);
  /* the panel: P[k, j] = B[k, j], the loop with the unit stride inside */
  bool kin = sbj != 1 && sbk == 1;
  LLVMValueRef o1 = cg_loop_begin(cg, &l1, zero, cg_i64(cg, kin ? d.g.M : d.g.K));
  LLVMValueRef o2 = cg_loop_begin(cg, &l2, zero, cg_i64(cg, kin ? d.g.K : d.g.M));
  LLVMValueRef k = kin ? o2 : o1, j = kin ? o1 : o2;
  LLVMValueRef src = LLVMBuildNSWAdd(b, LLVMBuildNSWMul(b, k, cg_i64(cg, sbk), ""),
                                     LLVMBuildNSWMul(b, j, cg_i64(cg, sbj), ""), "");
  LLVMValueRef dst = LLVMBuildNSWAdd(b, LLVMBuildNSWMul(b, k, cg_i64(cg, d.Mp), ""), j, "");
  LLVMBuildStore(b, LLVMBuildLoad2(b, cg->f32, fptr(cg, bb, src), ""), fptr(cg, d.panel, dst));
  cg_loop_end(cg, &l2);
  cg_loop_end(cg, &l1);
  /* the tiles: blocks of V vectors whose columns are all below M (a loop),
  ** then the rest (at most V vectors, the last one maybe partial) */
  int64_t nvec = d.Mp / d.W, nfull = d.g.M / d.W / d.V;
  int ntail = (int)(nvec - nfull * d.V);
  for (int t = 0; t < 2; t++) {
    if (t == 0 ? nfull == 0 : ntail == 0) continue;
    CgLoop lc;
    LLVMValueRef j0 = cg_i64(cg, nfull * d.V * d.W);
    if (t == 0) {
      LLVMValueRef cb = cg_loop_begin(cg, &lc, zero, cg_i64(cg, nfull));
      j0 = LLVMBuildNSWMul(b, cb, cg_i64(cg, d.V * d.W), "");
    }
    direct_block(cg, &d, j0, t == 0 ? d.V : ntail, t == 1);
    if (t == 0) cg_loop_end(cg, &lc);
  }
  cg_loop_end(cg, &lb);
  LLVMBuildRetVoid(b);
  cg->k = saved;
  return fn;
}

/* Emit the direct kernel of node n and its call from the entry function
** (through nnrt_parallel_for over the batch when the work is large). */
static void direct_emit(Cg *cg, const IrNode *n, CgVal *out, const char *kname) {
  const IrNode *mm = out->gemm;
  MM g;
  mm_shape(mm, &g);
  LLVMTypeRef ft[4] = {cg->ptr, cg->ptr, cg->ptr, cg->ptr};
  LLVMTypeRef sty = LLVMStructTypeInContext(cg->ctx, ft, 4, false);
  LLVMValueRef fn = direct_kernel(cg, mm, kname, out->bias != NULL, out->relu, sty);
  (void)n;
  LLVMValueRef ctx = cg_alloca(cg, sty, "v_ctx");
  LLVMValueRef vals[4] = {out->ptr, cg_val(cg, mm->args[0])->ptr, cg_val(cg, mm->args[1])->ptr,
                          out->bias ? cg_val(cg, out->bias)->ptr : LLVMConstNull(cg->ptr)};
  for (int i = 0; i < 4; i++)
    LLVMBuildStore(cg->eb, vals[i], LLVMBuildStructGEP2(cg->eb, sty, ctx, (unsigned)i, ""));
  int64_t th = cg->par_threshold;
  if (th < 0 || g.nb * g.N * g.M * g.K <= th) {
    LLVMValueRef args[3] = {cg_i64(cg, 0), cg_i64(cg, g.nb), ctx};
    LLVMBuildCall2(cg->eb, LLVMGlobalGetValueType(fn), fn, args, 3, "");
    return;
  }
  LLVMTypeRef pp[3] = {cg->i64, cg->ptr, cg->ptr};
  LLVMTypeRef pty = LLVMFunctionType(cg->vd, pp, 3, false);
  LLVMValueRef pf = LLVMGetNamedFunction(cg->mod, "nnrt_parallel_for");
  if (!pf) pf = LLVMAddFunction(cg->mod, "nnrt_parallel_for", pty);
  LLVMValueRef args[3] = {cg_i64(cg, g.nb), fn, ctx};
  LLVMBuildCall2(cg->eb, pty, pf, args, 3, "");
}

/* The kernel of node n (a matmul, or the add/relu whose epilogue absorbed
** one): a loop over the batch calling the SGEMM, called from the entry. */
void cg_gemm_emit(Cg *cg, const IrNode *n, CgVal *out, CgVal *work) {
  const IrNode *mm = out->gemm;
  if (mm->op != IR_OP_MATMUL) {
    cg_conv_gemm_emit(cg, n, out, work);
    return;
  }
  GemmLayout l;
  GemmSpec s;
  MM g;
  char gname[64], kname[96];
  NNC_ASSERT(gemm_layout(cg, mm, &l));
  mm_shape(mm, &g);
  snprintf(kname, sizeof kname, "k%d_%s%s", n->id,
           n == mm ? "" : out->relu ? "fused_relu_add_" : "fused_add_", "matmul");
  if (direct_ok(cg, mm)) {
    direct_emit(cg, n, out, kname);
    return;
  }
  gemm_fold_batch(cg, mm, &l, &g);
  gemm_spec(cg, &l, out->bias != NULL, out->relu, &s, gname, sizeof gname);
  LLVMValueRef gf = LLVMGetNamedFunction(cg->mod, gname);
  if (!gf) {
    gf = cg_gemm_define(cg->mod, NULL, &s);
    LLVMSetLinkage(gf, LLVMInternalLinkage);
  }
  LLVMTypeRef gty = cg_sgemm_type(cg);
  LLVMTypeRef kp[5] = {cg->ptr, cg->ptr, cg->ptr, cg->ptr, cg->ptr};
  LLVMTypeRef kty = LLVMFunctionType(cg->vd, kp, 5, false);
  LLVMValueRef kf = LLVMAddFunction(cg->mod, kname, kty);
  LLVMSetLinkage(kf, LLVMInternalLinkage);
  const char *attrs[2] = {"noinline", "nounwind"};
  for (int a = 0; a < 2; a++)
    LLVMAddAttributeAtIndex(kf, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(cg->ctx, LLVMGetEnumAttributeKindForName(attrs[a], strlen(attrs[a])), 0));
  LLVMBuilderRef b = cg->b;
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(cg->ctx, kf, "entry"));
  CgVal *av = cg_val(cg, mm->args[0]), *bv = cg_val(cg, mm->args[1]);
  CgLoop lb;
  LLVMValueRef bt = cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, g.nb));
  LLVMValueRef bi[IR_MAX_RANK];
  batch_index(cg, mm, &g, bt, bi);
  LLVMValueRef ao = batch_off(cg, &g, &mm->args[0]->type, av->st, bi, g.ra >= 2 ? 2 : 1);
  LLVMValueRef bo = batch_off(cg, &g, &mm->args[1]->type, bv->st, bi, g.rb >= 2 ? 2 : 1);
  LLVMValueRef yo = LLVMBuildMul(b, bt, cg_i64(cg, g.N * g.M), "");
  LLVMValueRef args[12] = {
      cg_i64(cg, g.N), cg_i64(cg, g.M), cg_i64(cg, g.K),
      LLVMBuildInBoundsGEP2(b, cg->f32, LLVMGetParam(kf, 1), &ao, 1, ""),
      cg_i64(cg, l.lda),
      LLVMBuildInBoundsGEP2(b, cg->f32, LLVMGetParam(kf, 2), &bo, 1, ""),
      cg_i64(cg, l.ldb),
      LLVMBuildInBoundsGEP2(b, cg->f32, LLVMGetParam(kf, 0), &yo, 1, ""),
      cg_i64(cg, g.M), LLVMConstReal(cg->f32, 0), LLVMGetParam(kf, 3),
      LLVMGetParam(kf, 4)};
  LLVMBuildCall2(b, gty, gf, args, 12, "");
  cg_loop_end(cg, &lb);
  LLVMBuildRetVoid(b);
  LLVMValueRef i = cg_i64(cg, work->off);
  LLVMValueRef wp = LLVMBuildInBoundsGEP2(cg->eb, cg->i8, cg->earena, &i, 1, "");
  LLVMValueRef cargs[5] = {out->ptr, av->ptr, bv->ptr,
                           out->bias ? cg_val(cg, out->bias)->ptr : LLVMConstNull(cg->ptr), wp};
  LLVMBuildCall2(cg->eb, kty, kf, cargs, 5, "");
}
