/*
** This file contains the lowering of matmul (NumPy rules: batch dims
** broadcast, a 1-D operand gets a dimension of 1 that the result drops)
** and of attention written as one op.
**
** matmul kernel: rows [begin, end) of batch*N; for an f32/f64 result each
** row is computed in place as y[i,:] = sum_k a[i,k] b[k,:] (the i-k-j
** order, whose inner loop over j is contiguous and vectorises); other
** dtypes use a dot product per element accumulated in f64 (as the
** interpreter).  The packed register-blocked SGEMM of backend/gemm.c
** replaces the f32 path when it lands.
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
  GemmLayout l;
  GemmSpec s;
  char name[64];
  MM g;
  gemm_layout(cg, mm, &l);
  gemm_spec(cg, &l, false, false, &s, name, sizeof name);
  mm_shape(mm, &g);
  return cg_gemm_work_floats(&s, g.N, g.M, g.K, 2);
}

LLVMValueRef cg_sgemm_fn(Cg *cg, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                         int64_t *work) {
  GemmLayout l = {.ta = ta, .tb = tb};
  GemmSpec s;
  char name[64];
  gemm_spec(cg, &l, false, false, &s, name, sizeof name);
  if (work) *work = cg_gemm_work_floats(&s, M, N, K, 2);
  LLVMValueRef gf = LLVMGetNamedFunction(cg->mod, name);
  if (!gf) {
    gf = cg_gemm_define(cg->mod, NULL, &s);
    LLVMSetLinkage(gf, LLVMInternalLinkage);
  }
  return gf;
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
  gemm_spec(cg, &l, out->bias != NULL, out->relu, &s, gname, sizeof gname);
  LLVMValueRef gf = LLVMGetNamedFunction(cg->mod, gname);
  if (!gf) {
    gf = cg_gemm_define(cg->mod, NULL, &s);
    LLVMSetLinkage(gf, LLVMInternalLinkage);
  }
  LLVMTypeRef gp[12] = {cg->i64, cg->i64, cg->i64, cg->ptr, cg->i64, cg->ptr,
                        cg->i64, cg->ptr, cg->i64, cg->f32, cg->ptr, cg->ptr};
  LLVMTypeRef gty = LLVMFunctionType(cg->vd, gp, 12, false);
  snprintf(kname, sizeof kname, "k%d_%s%s", n->id,
           n == mm ? "" : out->relu ? "fused_relu_add_" : "fused_add_", "matmul");
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
