/*
** This file contains the SGEMM generator: C = epi(op(A)·op(B) + beta·C)
** emitted as LLVM vector IR with the BLIS loop structure (gemm.h).
**
**   for jc in N step NC:                     NAME
**     pack B[0:K, jc:jc+nc] -> Bp             NAME_packb_body, parallel over NR panels
**     parallel over chunks of M (<= MC rows): NAME_body
**     (both take their work from an atomic counter: dynamic_loop)
**       for ic in the chunks the thread takes:
**         for pc in K step KC:
**           pack A[ic:ic+mc, pc:pc+kc] -> Ap  NAME_packa (zero-padded to MR)
**           for jr in nc step NR:              (KC×NR panel of Bp stays in L1)
**             for ir in mc step MR:            (MC×KC block of Ap stays in L2)
**               C[ir, jr] = Ap·Bp (+beta C)    NAME_ukr, or NAME_edge at the borders
**
** Packed layouts: Ap panel p holds MR rows of op(A) at p*MR*KC: row r at
** r*KC (A not transposed: packing copies rows) or k-major, Ap[k*MR + r] (A
** transposed: packing copies the MR adjacent floats of each k) - a_rs;
** Bp panel q is kc rows of NR floats (Bp[(q*kc + k)*NR + c]); short panels
** are padded with zeros so the micro-kernel never branches on sizes.  The
** micro-kernel keeps MR × NR/W accumulators in vector registers, loads NR/W
** vectors of Bp and broadcasts MR floats of Ap per k (llvm.fmuladd -> FMA).
** Tiles at the right/bottom border are computed into a stack tile (by a
** micro-kernel one vector wide, NAME_ukrw, when at most W columns are
** left) and copied out with scalar code.
**
** When M <= MC (a batch of activations against a weight matrix: the MLP's
** 128×784·784×1024) the parallel work is over N instead (NAME_packa_body
** packs all of A once, NAME_small_body takes groups of NR panels of B,
** packs each for one KC step and runs every MR tile beside it at once);
** see small_entry.
*/
#include "gemm.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "llvm_util.h"

enum { KUNROLL = 4 };

/* Fields of the context struct shared with the outlined bodies. ORDER CTX */
enum {
  CX_A, CX_LDA, CX_B, CX_LDB, CX_C, CX_LDC, CX_BETA, CX_BIAS,
  CX_APACK, CX_BPACK, CX_M, CX_K, CX_JC, CX_NC, CX_NCR,
  CX_NEXT, CX_BNEXT, CX_CHUNK, CX_NCHUNK, CX_COUNT
};

typedef struct Gen {
  LLVMModuleRef mod;
  LLVMContextRef c;
  LLVMBuilderRef b;
  const GemmSpec *s;
  GemmBlocking bk;
  int w, nv;                /* floats per vector; vectors per row of a tile */
  int rows;                 /* rows of the micro-kernel being generated (<= MR) */
  LLVMTypeRef f32, i64, ptr, vt, ctx_ty;
  LLVMValueRef ukr, edge, packa, packb_body, body, par_for;
  LLVMValueRef ukr_rows[8]; /* NAME_ukr<2^i>, 2^i < MR: the first 2^i rows of a tile */
  LLVMValueRef ukr_w;       /* NAME_ukrw: the first W columns of a tile (NR > W) */
  LLVMValueRef packa_body, small_body;      /* the small-M path */
} Gen;

/* ---------------------------------------------------------------- blocking */

void cg_gemm_spec_init(GemmSpec *spec, const CgTarget *t, const char *name)
{
  memset(spec, 0, sizeof *spec);
  spec->name = name;
  spec->vec_floats = t->vec_floats;
  spec->vec_regs = t->vec_regs;
}

void cg_gemm_blocking(const GemmSpec *s, GemmBlocking *o)
{
  assert(s->vec_floats > 0 && s->vec_regs > 0);
  int w = s->vec_floats;
  int l1 = s->l1_bytes ? s->l1_bytes : 48 * 1024;
  int l2 = s->l2_bytes ? s->l2_bytes : 2 * 1024 * 1024;
  o->nr = s->nr ? s->nr : 2 * w;
  int nv = o->nr / w;
  o->mr = s->mr ? s->mr : (s->vec_regs - nv - 1) / nv;
  o->kc = s->kc ? s->kc : l1 / (o->nr * 4) / 8 * 8;
  if (!s->kc && o->kc > 384)
    o->kc = 384;
  if (o->kc < 8)
    o->kc = 8;
  o->mc = s->mc ? s->mc : (l2 / 2) / (o->kc * 4) / o->mr * o->mr;
  if (o->mc < o->mr)
    o->mc = o->mr;
  o->nc = s->nc ? s->nc : 4096 / o->nr * o->nr;
  assert(o->nr % w == 0 && o->mr > 0 && o->mc % o->mr == 0 && o->nc % o->nr == 0);
}

static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

int64_t cg_gemm_work_floats(const GemmSpec *s, int64_t M, int64_t N, int64_t K,
                            int threads)
{
  (void)threads;
  GemmBlocking bk;
  cg_gemm_blocking(s, &bk);
  /* packed A: KC floats per row and block; small M: all of A's blocks */
  int64_t kce = M <= bk.mc ? round_up(K, bk.kc) : bk.kc;
  int64_t ncmax = N < bk.nc ? N : bk.nc;
  int64_t afl = s->a_packed ? 0 : round_up(round_up(M, bk.mr) * kce, 16);
  return afl + K * round_up(ncmax, bk.nr);
}

/* ---------------------------------------------------------------- helpers */

static LLVMValueRef fn_new(Gen *g, const char *suffix, LLVMTypeRef *params, unsigned n,
                           bool internal)
{
  char name[256];
  snprintf(name, sizeof name, "%s%s", g->s->name, suffix);
  LLVMTypeRef fty = LLVMFunctionType(ll_void(g->c), params, n, false);
  LLVMValueRef fn = LLVMAddFunction(g->mod, name, fty);
  if (internal)
    LLVMSetLinkage(fn, LLVMInternalLinkage);
  char width[16];
  snprintf(width, sizeof width, "%d", g->w * 32);
  ll_add_attr(fn, LLVMAttributeFunctionIndex, "nounwind", NULL);
  ll_add_attr(fn, LLVMAttributeFunctionIndex, "min-legal-vector-width", width);
  ll_add_attr(fn, LLVMAttributeFunctionIndex, "prefer-vector-width", width);
  LLVMPositionBuilderAtEnd(g->b, LLVMAppendBasicBlockInContext(g->c, fn, "b_entry"));
  return fn;
}

static LLVMValueRef arg(LLVMValueRef fn, unsigned i, const char *name)
{
  LLVMValueRef v = LLVMGetParam(fn, i);
  LLVMSetValueName2(v, name, strlen(name));
  return v;
}

static LLVMValueRef i64c(Gen *g, int64_t v) { return ll_const_i64(g->c, v); }

static LLVMValueRef mul(Gen *g, LLVMValueRef x, LLVMValueRef y)
{
  return LLVMBuildNSWMul(g->b, x, y, "");
}
static LLVMValueRef add(Gen *g, LLVMValueRef x, LLVMValueRef y)
{
  return LLVMBuildNSWAdd(g->b, x, y, "");
}
static LLVMValueRef sub(Gen *g, LLVMValueRef x, LLVMValueRef y)
{
  return LLVMBuildNSWSub(g->b, x, y, "");
}
static LLVMValueRef at(Gen *g, LLVMValueRef p, LLVMValueRef i)
{
  return ll_gep_f32(g->b, p, i, "");
}

/* The packed panel of A (MR rows, one KC block; panel p at p*MR*KC): rows
** of A stay rows, KC floats apart, when A is not transposed (packing is a
** copy of each row); when it is (A stored K×M, MR consecutive floats of a
** row of A are the MR rows at one k), the MR values of each k are
** adjacent.  a_rs and a_ks are the float distances between rows and ks. */
static int a_rs(const Gen *g) { return g->s->trans_a ? 1 : g->bk.kc; }
static int a_ks(const Gen *g) { return g->s->trans_a ? g->bk.mr : 1; }
static LLVMValueRef fmuladd(Gen *g, LLVMTypeRef t, LLVMValueRef x, LLVMValueRef y,
                            LLVMValueRef z)
{
  LLVMValueRef a[3] = {x, y, z};
  return ll_call_intrinsic(g->b, g->mod, "llvm.fmuladd", t, a, 3, "");
}

/* The epilogue on a value x (vector or scalar) of column(s) at biasp:
** x + bias (spec->bias), then relu (spec->relu). */
static LLVMValueRef epilogue(Gen *g, LLVMValueRef x, LLVMValueRef biasp, LLVMTypeRef t)
{
  if (g->s->bias)
    x = LLVMBuildFAdd(g->b, x, ll_load(g->b, t, biasp, 4, "v_bias"), "");
  if (g->s->relu) {
    LLVMValueRef zero = LLVMConstNull(t);
    LLVMValueRef neg = LLVMBuildFCmp(g->b, LLVMRealOLT, x, zero, "");
    x = LLVMBuildSelect(g->b, neg, zero, x, "v_relu");
  }
  return x;
}

/* ---------------------------------------------------------------- micro-kernel */

/* One k step: acc[r][v] += Ap[r*a_rs + k*a_ks] * Bp[k*NR + v*W .. +W]. */
static void ukr_step(Gen *g, LLVMValueRef ap, LLVMValueRef bp, LLVMValueRef k,
                     LLVMValueRef *acc)
{
  int nr = g->bk.nr;
  LLVMValueRef bk = at(g, bp, mul(g, k, i64c(g, nr)));
  LLVMValueRef ak = at(g, ap, mul(g, k, i64c(g, a_ks(g))));
  LLVMValueRef bv[8];
  assert(g->nv <= 8);
  for (int v = 0; v < g->nv; v++)
    bv[v] = ll_load(g->b, g->vt, at(g, bk, i64c(g, v * g->w)), 4, "v_b");
  for (int r = 0; r < g->rows; r++) {
    LLVMValueRef a = ll_load(g->b, g->f32, at(g, ak, i64c(g, r * a_rs(g))), 4, "v_a");
    LLVMValueRef as = ll_splat(g->b, a, (unsigned)g->w, "v_as");
    for (int v = 0; v < g->nv; v++)
      acc[r * g->nv + v] = fmuladd(g, g->vt, as, bv[v], acc[r * g->nv + v]);
  }
}

/* Stores the tile: C[r, v] = epi?(acc + beta·C); returns void. */
static void ukr_store(Gen *g, LLVMValueRef *acc, LLVMValueRef cp, LLVMValueRef ldc,
                      LLVMValueRef beta, LLVMValueRef biasp, bool load_c, bool epi)
{
  LLVMValueRef vbeta = ll_splat(g->b, beta, (unsigned)g->w, "v_beta");
  for (int r = 0; r < g->rows; r++) {
    LLVMValueRef row = at(g, cp, mul(g, i64c(g, r), ldc));
    for (int v = 0; v < g->nv; v++) {
      LLVMValueRef p = at(g, row, i64c(g, v * g->w));
      LLVMValueRef x = acc[r * g->nv + v];
      if (load_c)
        x = fmuladd(g, g->vt, vbeta, ll_load(g->b, g->vt, p, 4, "v_c"), x);
      if (epi)
        x = epilogue(g, x, at(g, biasp, i64c(g, v * g->w)), g->vt);
      ll_store(g->b, x, p, 4);
    }
  }
  LLVMBuildRetVoid(g->b);
}

/* The four ways to store a tile: beta == 0 (C is not read) or not, and the
** last KC step (epilogue) or not. */
static void ukr_stores(Gen *g, LLVMValueRef *acc, LLVMValueRef cp, LLVMValueRef ldc,
                       LLVMValueRef beta, LLVMValueRef biasp, LLVMValueRef last)
{
  LLVMBasicBlockRef blk[4];
  for (int i = 0; i < 4; i++)
    blk[i] = ll_block_new(g->b, "b_st");
  LLVMBasicBlockRef nb = ll_block_new(g->b, "b_beta0"), yb = ll_block_new(g->b, "b_beta");
  LLVMValueRef is0 = LLVMBuildFCmp(g->b, LLVMRealOEQ, beta, ll_const_f32(g->c, 0), "");
  LLVMBuildCondBr(g->b, is0, nb, yb);
  LLVMPositionBuilderAtEnd(g->b, nb);
  LLVMBuildCondBr(g->b, last, blk[1], blk[0]);
  LLVMPositionBuilderAtEnd(g->b, yb);
  LLVMBuildCondBr(g->b, last, blk[3], blk[2]);
  for (int i = 0; i < 4; i++) {
    LLVMPositionBuilderAtEnd(g->b, blk[i]);
    ukr_store(g, acc, cp, ldc, beta, biasp, i >= 2, i & 1);
  }
}

/* Adds phis for the accumulators to the current block, incoming from pred. */
static void acc_phis(Gen *g, LLVMValueRef *phi, LLVMValueRef *from, LLVMBasicBlockRef pred)
{
  for (int i = 0; i < g->rows * g->nv; i++) {
    phi[i] = LLVMBuildPhi(g->b, g->vt, "v_acc");
    LLVMAddIncoming(phi[i], &from[i], &pred, 1);
  }
}

/* NAME_ukr(kc, Ap, Bp, C, ldc, beta, bias, last): the full MR×NR tile
**   C[0:MR, 0:NR] = epi?(Ap[0:MR, 0:kc] · Bp[0:kc, 0:NR] + beta·C)
** with k unrolled KUNROLL times, then the remainder one at a time.
** NAME_ukr<R> is the same for the first R rows of a tile (the packed
** panel of A still holds MR floats per k). */
static LLVMValueRef gen_ukr(Gen *g, int rows)
{
  LLVMTypeRef ps[8] = {g->i64, g->ptr, g->ptr, g->ptr, g->i64, g->f32, g->ptr,
                       ll_i1(g->c)};
  char suffix[16];
  if (g->nv < g->bk.nr / g->w)
    snprintf(suffix, sizeof suffix, "_ukrw");
  else
    snprintf(suffix, sizeof suffix, rows == g->bk.mr ? "_ukr" : "_ukr%d", rows);
  g->rows = rows;
  LLVMValueRef fn = fn_new(g, suffix, ps, 8, true);
  LLVMValueRef kc = arg(fn, 0, "kc"), ap = arg(fn, 1, "ap"), bp = arg(fn, 2, "bp");
  LLVMValueRef cp = arg(fn, 3, "c"), ldc = arg(fn, 4, "ldc"), beta = arg(fn, 5, "beta");
  LLVMValueRef biasp = arg(fn, 6, "bias"), last = arg(fn, 7, "last");
  for (unsigned i = 1; i <= 2; i++)
    ll_add_attr(fn, i + 1, "noalias", NULL);
  int na = rows * g->nv;
  LLVMValueRef zero[64], acc[64], ph4[64], ph1[64];
  assert(na <= 64);
  for (int i = 0; i < na; i++)
    zero[i] = LLVMConstNull(g->vt);
  /* the C tile is read and written once after the k loop: fetch it now */
  for (int r = 0; r < rows; r++) {
    LLVMValueRef row = at(g, cp, mul(g, i64c(g, r), ldc));
    for (int l = 0; l < g->bk.nr; l += 16) {
      LLVMValueRef pa[4] = {at(g, row, i64c(g, l)), ll_const_i32(g->c, 1),
                            ll_const_i32(g->c, 3), ll_const_i32(g->c, 1)};
      ll_call_intrinsic(g->b, g->mod, "llvm.prefetch", g->ptr, pa, 4, "");
    }
  }
  LLVMBasicBlockRef entry = LLVMGetInsertBlock(g->b);
  LLVMValueRef kc4 = LLVMBuildAnd(g->b, kc, i64c(g, -KUNROLL), "kc4");
  LLVMBasicBlockRef h4 = ll_block_new(g->b, "b_head4"), b4 = ll_block_new(g->b, "b_body4");
  LLVMBasicBlockRef mid = ll_block_new(g->b, "b_mid"), h1 = ll_block_new(g->b, "b_head1");
  LLVMBasicBlockRef b1 = ll_block_new(g->b, "b_body1"), st = ll_block_new(g->b, "b_store");
  LLVMBuildBr(g->b, h4);
  /* unrolled loop */
  LLVMPositionBuilderAtEnd(g->b, h4);
  LLVMValueRef k4 = LLVMBuildPhi(g->b, g->i64, "k");
  LLVMValueRef k0 = i64c(g, 0);
  LLVMAddIncoming(k4, &k0, &entry, 1);
  acc_phis(g, ph4, zero, entry);
  LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, k4, kc4, ""), b4, mid);
  LLVMPositionBuilderAtEnd(g->b, b4);
  memcpy(acc, ph4, sizeof(LLVMValueRef) * (size_t)na);
  for (int u = 0; u < KUNROLL; u++)
    ukr_step(g, ap, bp, add(g, k4, i64c(g, u)), acc);
  LLVMValueRef k4n = add(g, k4, i64c(g, KUNROLL));
  LLVMAddIncoming(k4, &k4n, &b4, 1);
  for (int i = 0; i < na; i++)
    LLVMAddIncoming(ph4[i], &acc[i], &b4, 1);
  LLVMBuildBr(g->b, h4);
  /* remainder loop */
  LLVMPositionBuilderAtEnd(g->b, mid);
  LLVMBuildBr(g->b, h1);
  LLVMPositionBuilderAtEnd(g->b, h1);
  LLVMValueRef k1 = LLVMBuildPhi(g->b, g->i64, "k");
  LLVMAddIncoming(k1, &k4, &mid, 1);
  acc_phis(g, ph1, ph4, mid);
  LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, k1, kc, ""), b1, st);
  LLVMPositionBuilderAtEnd(g->b, b1);
  memcpy(acc, ph1, sizeof(LLVMValueRef) * (size_t)na);
  ukr_step(g, ap, bp, k1, acc);
  LLVMValueRef k1n = add(g, k1, i64c(g, 1));
  LLVMAddIncoming(k1, &k1n, &b1, 1);
  for (int i = 0; i < na; i++)
    LLVMAddIncoming(ph1[i], &acc[i], &b1, 1);
  LLVMBuildBr(g->b, h1);
  LLVMPositionBuilderAtEnd(g->b, st);
  ukr_stores(g, ph1, cp, ldc, beta, biasp, last);
  return fn;
}

/* The tile of mr <= MR rows and NR columns at C: one call of NAME_ukr, or
** of the NAME_ukr<R> whose R add up to mr (the binary digits of mr), so
** that a short last row of tiles costs its own rows only. */
static void tile_call(Gen *g, LLVMValueRef mr, LLVMValueRef *args)
{
  LLVMBasicBlockRef full = ll_block_new(g->b, "b_tile"), part = ll_block_new(g->b, "b_rows");
  LLVMBasicBlockRef done = ll_block_new(g->b, "b_tiled");
  LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntEQ, mr, i64c(g, g->bk.mr), ""), full, part);
  LLVMPositionBuilderAtEnd(g->b, full);
  LLVMBuildCall2(g->b, LLVMGlobalGetValueType(g->ukr), g->ukr, args, 8, "");
  LLVMBuildBr(g->b, done);
  LLVMPositionBuilderAtEnd(g->b, part);
  LLVMValueRef r0 = i64c(g, 0);
  for (int i = 7; i >= 0; i--) {
    if (!g->ukr_rows[i])
      continue;
    int R = 1 << i;
    LLVMBasicBlockRef yes = ll_block_new(g->b, "b_r"), next = ll_block_new(g->b, "b_r_next");
    LLVMBasicBlockRef from = LLVMGetInsertBlock(g->b);
    LLVMValueRef bit = LLVMBuildAnd(g->b, mr, i64c(g, R), "");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntNE, bit, i64c(g, 0), ""), yes, next);
    LLVMPositionBuilderAtEnd(g->b, yes);
    LLVMValueRef a[8];
    memcpy(a, args, sizeof a);
    a[1] = at(g, args[1], mul(g, r0, i64c(g, a_rs(g))));
    a[3] = at(g, args[3], mul(g, r0, args[4]));
    LLVMBuildCall2(g->b, LLVMGlobalGetValueType(g->ukr_rows[i]), g->ukr_rows[i], a, 8, "");
    LLVMValueRef r1 = add(g, r0, i64c(g, R));
    LLVMBuildBr(g->b, next);
    LLVMPositionBuilderAtEnd(g->b, next);
    LLVMValueRef phi = LLVMBuildPhi(g->b, g->i64, "r0");
    LLVMValueRef inc[2] = {r0, r1};
    LLVMBasicBlockRef bbs[2] = {from, yes};
    LLVMAddIncoming(phi, inc, bbs, 2);
    r0 = phi;
  }
  LLVMBuildBr(g->b, done);
  LLVMPositionBuilderAtEnd(g->b, done);
}

/* NAME_edge(mr, nr, kc, Ap, Bp, C, ldc, beta, bias, last): a border tile of
** mr <= MR rows and nr <= NR columns: the micro-kernel writes a stack tile,
** then scalar code adds beta·C, applies the epilogue and stores. */
static void gen_edge(Gen *g)
{
  LLVMTypeRef ps[10] = {g->i64, g->i64, g->i64, g->ptr, g->ptr, g->ptr,
                        g->i64, g->f32, g->ptr, ll_i1(g->c)};
  LLVMValueRef fn = g->edge = fn_new(g, "_edge", ps, 10, true);
  LLVMValueRef mr = arg(fn, 0, "mr"), nr = arg(fn, 1, "nr"), kc = arg(fn, 2, "kc");
  LLVMValueRef cp = arg(fn, 5, "c"), ldc = arg(fn, 6, "ldc"), beta = arg(fn, 7, "beta");
  LLVMValueRef biasp = arg(fn, 8, "bias"), last = arg(fn, 9, "last");
  int tile_n = g->bk.mr * g->bk.nr;
  LLVMValueRef tile = LLVMBuildAlloca(g->b, LLVMArrayType(g->f32, (unsigned)tile_n), "tile");
  LLVMSetAlignment(tile, 64);
  LLVMValueRef a[8] = {kc, LLVMGetParam(fn, 3), LLVMGetParam(fn, 4), tile,
                       i64c(g, g->bk.nr), ll_const_f32(g->c, 0),
                       LLVMConstNull(g->ptr), ll_const_i1(g->c, false)};
  if (g->ukr_w) { /* at most W columns: half the multiply-adds (NR = 2W) */
    LLVMBasicBlockRef nb = ll_block_new(g->b, "b_narrow"), wb = ll_block_new(g->b, "b_wide");
    LLVMBasicBlockRef cb = ll_block_new(g->b, "b_copy");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLE, nr, i64c(g, g->w), ""), nb, wb);
    LLVMPositionBuilderAtEnd(g->b, nb);
    LLVMBuildCall2(g->b, LLVMGlobalGetValueType(g->ukr_w), g->ukr_w, a, 8, "");
    LLVMBuildBr(g->b, cb);
    LLVMPositionBuilderAtEnd(g->b, wb);
    LLVMBuildCall2(g->b, LLVMGlobalGetValueType(g->ukr), g->ukr, a, 8, "");
    LLVMBuildBr(g->b, cb);
    LLVMPositionBuilderAtEnd(g->b, cb);
  } else {
    LLVMBuildCall2(g->b, LLVMGlobalGetValueType(g->ukr), g->ukr, a, 8, "");
  }
  LLVMValueRef is0 = LLVMBuildFCmp(g->b, LLVMRealOEQ, beta, ll_const_f32(g->c, 0), "");
  LlLoop li, lj;
  ll_loop_begin(g->b, &li, i64c(g, 0), mr, i64c(g, 1), "i");
  ll_loop_begin(g->b, &lj, i64c(g, 0), nr, i64c(g, 1), "j");
  LLVMValueRef x = ll_load(g->b, g->f32,
                           at(g, tile, add(g, mul(g, li.iv, i64c(g, g->bk.nr)), lj.iv)),
                           4, "v_t");
  LLVMValueRef p = at(g, cp, add(g, mul(g, li.iv, ldc), lj.iv));
  LLVMValueRef y = fmuladd(g, g->f32, beta, ll_load(g->b, g->f32, p, 4, "v_c"), x);
  x = LLVMBuildSelect(g->b, is0, x, y, "");
  if (g->s->bias || g->s->relu) {
    LLVMValueRef e = epilogue(g, x, g->s->bias ? at(g, biasp, lj.iv) : NULL, g->f32);
    x = LLVMBuildSelect(g->b, last, e, x, "");
  }
  ll_store(g->b, x, p, 4);
  ll_loop_end(g->b, &lj);
  ll_loop_end(g->b, &li);
  LLVMBuildRetVoid(g->b);
}

/* ---------------------------------------------------------------- packing */

/* Element (k, j) of op(B) for B already offset to the block's corner. */
static LLVMValueRef b_elem(Gen *g, LLVMValueRef b, LLVMValueRef ldb, LLVMValueRef k,
                           LLVMValueRef j)
{
  LLVMValueRef idx = g->s->trans_b ? add(g, mul(g, j, ldb), k) : add(g, mul(g, k, ldb), j);
  return ll_load(g->b, g->f32, at(g, b, idx), 4, "v_b");
}

/* Transposes the W×W block of floats in v[0..W-1] (v[r][c] -> v[c][r]):
** log2(W) steps, each swapping the off-diagonal b×b blocks of every 2b×2b
** block with two-source shuffles (vpermt2ps). */
static void transpose_block(Gen *g, LLVMValueRef *v)
{
  int w = g->w;
  LLVMValueRef m1[64], m2[64];
  for (int b = w / 2; b >= 1; b /= 2) {
    for (int j = 0; j < w; j++) {
      m1[j] = ll_const_i32(g->c, (j & b) ? w + j - b : j);
      m2[j] = ll_const_i32(g->c, (j & b) ? w + j : j + b);
    }
    LLVMValueRef c1 = LLVMConstVector(m1, (unsigned)w), c2 = LLVMConstVector(m2, (unsigned)w);
    for (int i = 0; i < w; i++) {
      if (i & b)
        continue;
      LLVMValueRef x = LLVMBuildShuffleVector(g->b, v[i], v[i + b], c1, "");
      v[i + b] = LLVMBuildShuffleVector(g->b, v[i], v[i + b], c2, "");
      v[i] = x;
    }
  }
}

/* dst[k*n + r] = src[r*ld + k] for r < n, k < kc: a transposing copy.
** Blocks of W rows by W ks are loaded as W vectors (one cache line of
** each row: reading the n rows one k at a time thrashes L1 when ld is a
** large power of two, the rows sharing one set), transposed in registers
** and stored as W vectors; the last kc % W ks are copied one by one. */
static void pack_rows(Gen *g, LLVMValueRef src, LLVMValueRef ld, int n, LLVMValueRef kc,
                      LLVMValueRef dst)
{
  int w = g->w;
  assert(n % w == 0 && w <= 64);
  LLVMValueRef kw = LLVMBuildAnd(g->b, kc, i64c(g, -w), "kw");
  LlLoop lb, lr, lk;
  ll_loop_begin(g->b, &lb, i64c(g, 0), kw, i64c(g, w), "k0");
  for (int r0 = 0; r0 < n; r0 += w) {
    LLVMValueRef v[64];
    for (int r = 0; r < w; r++)
      v[r] = ll_load(g->b, g->vt, at(g, src, add(g, mul(g, i64c(g, r0 + r), ld), lb.iv)), 4,
                     "v_row");
    transpose_block(g, v);
    for (int k = 0; k < w; k++)
      ll_store(g->b, v[k], at(g, dst, add(g, mul(g, add(g, lb.iv, i64c(g, k)), i64c(g, n)),
                                          i64c(g, r0))), 4);
  }
  ll_loop_end(g->b, &lb);
  ll_loop_begin(g->b, &lr, i64c(g, 0), i64c(g, n), i64c(g, 1), "r");
  LLVMValueRef row = at(g, src, mul(g, lr.iv, ld));
  ll_loop_begin(g->b, &lk, kw, kc, i64c(g, 1), "k");
  LLVMValueRef x = ll_load(g->b, g->f32, at(g, row, lk.iv), 4, "v_a");
  ll_store(g->b, x, at(g, dst, add(g, mul(g, lk.iv, i64c(g, n)), lr.iv)), 4);
  ll_loop_end(g->b, &lk);
  ll_loop_end(g->b, &lr);
}

/* The lanes l < n of a W-float vector as an i1 mask (n in [0, W]). */
static LLVMValueRef lane_mask(Gen *g, LLVMValueRef n)
{
  LLVMTypeRef vi = LLVMVectorType(g->i64, (unsigned)g->w);
  LLVMValueRef io[64];
  for (int l = 0; l < g->w; l++)
    io[l] = i64c(g, l);
  LLVMValueRef v = LLVMBuildInsertElement(g->b, LLVMGetUndef(vi), n, ll_const_i32(g->c, 0), "");
  v = LLVMBuildShuffleVector(g->b, v, LLVMGetUndef(vi),
                             LLVMConstNull(LLVMVectorType(ll_i32(g->c), (unsigned)g->w)), "");
  return LLVMBuildICmp(g->b, LLVMIntSLT, LLVMConstVector(io, (unsigned)g->w), v, "");
}

static LLVMValueRef masked_intr(Gen *g, const char *name, LLVMTypeRef *fty)
{
  LLVMTypeRef ov[2] = {g->vt, g->ptr};
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  *fty = LLVMIntrinsicGetType(g->c, id, ov, 2);
  return LLVMGetIntrinsicDeclaration(g->mod, id, ov, 2);
}

/* W floats at p where mask is on, 0 elsewhere (lanes off are not read). */
static LLVMValueRef masked_load(Gen *g, LLVMValueRef p, LLVMValueRef mask)
{
  LLVMTypeRef fty;
  LLVMValueRef f = masked_intr(g, "llvm.masked.load", &fty);
  LLVMValueRef a[4] = {p, ll_const_i32(g->c, 4), mask, LLVMConstNull(g->vt)};
  return LLVMBuildCall2(g->b, fty, f, a, 4, "");
}

static void masked_store(Gen *g, LLVMValueRef v, LLVMValueRef p, LLVMValueRef mask)
{
  LLVMTypeRef fty;
  LLVMValueRef f = masked_intr(g, "llvm.masked.store", &fty);
  LLVMValueRef a[4] = {v, p, ll_const_i32(g->c, 4), mask};
  LLVMBuildCall2(g->b, fty, f, a, 4, "");
}

/* Packs panel p (rows p*MR .. of the mc×kc block) into dst (see a_rs);
** the last short one clamps the row and writes zeros. */
static void packa_panel(Gen *g, LLVMValueRef a, LLVMValueRef lda, LLVMValueRef mc,
                        LLVMValueRef kc, LLVMValueRef p, LLVMValueRef dst, bool full)
{
  int mr = g->bk.mr;
  LLVMValueRef row0 = mul(g, p, i64c(g, mr));
  LLVMValueRef d = at(g, dst, mul(g, p, i64c(g, (int64_t)mr * g->bk.kc)));
  if (!g->s->trans_a) {
    LlLoop lr, lk;
    ll_loop_begin(g->b, &lr, i64c(g, 0), i64c(g, mr), i64c(g, 1), "r");
    LLVMValueRef i = add(g, row0, lr.iv), in = ll_const_i1(g->c, true);
    if (!full) {
      in = LLVMBuildICmp(g->b, LLVMIntSLT, i, mc, "");
      i = ll_smin(g->b, i, sub(g, mc, i64c(g, 1)), "");
    }
    LLVMValueRef src = at(g, a, mul(g, i, lda)), dr = at(g, d, mul(g, lr.iv, i64c(g, g->bk.kc)));
    ll_loop_begin(g->b, &lk, i64c(g, 0), kc, i64c(g, 1), "k");
    LLVMValueRef v = ll_load(g->b, g->f32, at(g, src, lk.iv), 4, "v_a");
    if (!full)
      v = LLVMBuildSelect(g->b, in, v, ll_const_f32(g->c, 0), "");
    ll_store(g->b, v, at(g, dr, lk.iv), 4);
    ll_loop_end(g->b, &lk);
    ll_loop_end(g->b, &lr);
    return;
  }
  /* the MR floats of each k: masked vector loads (lanes past mc read as
  ** 0) and stores of at most W lanes */
  LLVMValueRef lim = full ? i64c(g, mr) : sub(g, mc, row0);
  LLVMValueRef mask[8];
  assert((mr + g->w - 1) / g->w <= 8);
  for (int l = 0, v = 0; l < mr; l += g->w, v++) {
    int n = mr - l < g->w ? mr - l : g->w;
    mask[v] = lane_mask(g, sub(g, ll_smin(g->b, lim, i64c(g, l + n), ""), i64c(g, l)));
  }
  LlLoop lk;
  ll_loop_begin(g->b, &lk, i64c(g, 0), kc, i64c(g, 1), "k");
  LLVMValueRef dk = at(g, d, mul(g, lk.iv, i64c(g, mr)));
  LLVMValueRef sk = at(g, a, add(g, mul(g, lk.iv, lda), row0));
  for (int l = 0, v = 0; l < mr; l += g->w, v++) {
    int n = mr - l < g->w ? mr - l : g->w;
    LLVMValueRef x = masked_load(g, at(g, sk, i64c(g, l)), mask[v]);
    masked_store(g, x, at(g, dk, i64c(g, l)), lane_mask(g, i64c(g, n)));
  }
  ll_loop_end(g->b, &lk);
}

/* NAME_packa(mc, kc, A, lda, dst): the mc×kc block of op(A) at A into
** ceil(mc/MR) panels of MR×KC floats. */
static void gen_packa(Gen *g)
{
  LLVMTypeRef ps[5] = {g->i64, g->i64, g->ptr, g->i64, g->ptr};
  LLVMValueRef fn = g->packa = fn_new(g, "_packa", ps, 5, true);
  LLVMValueRef mc = arg(fn, 0, "mc"), kc = arg(fn, 1, "kc"), a = arg(fn, 2, "a");
  LLVMValueRef lda = arg(fn, 3, "lda"), dst = arg(fn, 4, "dst");
  ll_add_attr(fn, 3, "noalias", NULL);
  ll_add_attr(fn, 5, "noalias", NULL);
  LLVMValueRef nfull = LLVMBuildSDiv(g->b, mc, i64c(g, g->bk.mr), "nfull");
  LlLoop lp;
  ll_loop_begin(g->b, &lp, i64c(g, 0), nfull, i64c(g, 1), "p");
  packa_panel(g, a, lda, mc, kc, lp.iv, dst, true);
  ll_loop_end(g->b, &lp);
  LLVMBasicBlockRef tail = ll_block_new(g->b, "b_tail"), done = ll_block_new(g->b, "b_done");
  LLVMValueRef rem = LLVMBuildSRem(g->b, mc, i64c(g, g->bk.mr), "");
  LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntNE, rem, i64c(g, 0), ""), tail, done);
  LLVMPositionBuilderAtEnd(g->b, tail);
  packa_panel(g, a, lda, mc, kc, nfull, dst, false);
  LLVMBuildBr(g->b, done);
  LLVMPositionBuilderAtEnd(g->b, done);
  LLVMBuildRetVoid(g->b);
}

static LLVMValueRef ctx_get(Gen *g, LLVMValueRef cx, int field, const char *name)
{
  LLVMValueRef p = LLVMBuildStructGEP2(g->b, g->ctx_ty, cx, (unsigned)field, "");
  return LLVMBuildLoad2(g->b, LLVMStructGetTypeAtIndex(g->ctx_ty, (unsigned)field), p, name);
}

static void ctx_set(Gen *g, LLVMValueRef cx, int field, LLVMValueRef v)
{
  LLVMBuildStore(g->b, v, LLVMBuildStructGEP2(g->b, g->ctx_ty, cx, (unsigned)field, ""));
}

/* One packed row of B panel q: NR floats of op(B) row k from column j. */
static void packb_row(Gen *g, LLVMValueRef b, LLVMValueRef ldb, LLVMValueRef k,
                      LLVMValueRef j, LLVMValueRef nc, LLVMValueRef dk, bool full)
{
  if (full && !g->s->trans_b) {
    LLVMValueRef src = at(g, b, add(g, mul(g, k, ldb), j));
    for (int v = 0; v < g->nv; v++) {
      LLVMValueRef x = ll_load(g->b, g->vt, at(g, src, i64c(g, v * g->w)), 4, "v_b");
      ll_store(g->b, x, at(g, dk, i64c(g, v * g->w)), 4);
    }
    return;
  }
  for (int c = 0; c < g->bk.nr; c++) {
    LLVMValueRef jj = add(g, j, i64c(g, c)), x;
    if (full) {
      x = b_elem(g, b, ldb, k, jj);
    } else {
      LLVMValueRef in = LLVMBuildICmp(g->b, LLVMIntSLT, jj, nc, "");
      LLVMValueRef jc = ll_smin(g->b, jj, sub(g, nc, i64c(g, 1)), "");
      x = LLVMBuildSelect(g->b, in, b_elem(g, b, ldb, k, jc), ll_const_f32(g->c, 0), "");
    }
    ll_store(g->b, x, at(g, dk, i64c(g, c)), 4);
  }
}

typedef void ChunkFn(Gen *g, LLVMValueRef cx, LLVMValueRef c);

/* The loop of a parallel body (begin and end are not used): take chunk
** c = ctx->next++ while c < n and run emit on it.  Any number of calls on
** any threads covers every chunk once, and a thread that the OS delays
** leaves its share to the others.  (Waiting here with sched_yield until
** all chunks are done, instead of in libgomp's spinning barrier, was
** measured worse on a loaded machine: the yield hands the CPU to other
** processes for whole time slices.) */
static void dynamic_loop(Gen *g, LLVMValueRef cx, int next_f, LLVMValueRef n, ChunkFn *emit)
{
  LLVMValueRef nextp = LLVMBuildStructGEP2(g->b, g->ctx_ty, cx, (unsigned)next_f, "nextp");
  LLVMBasicBlockRef take = ll_block_new(g->b, "b_take"), work = ll_block_new(g->b, "b_work");
  LLVMBasicBlockRef ret = ll_block_new(g->b, "b_ret");
  LLVMBuildBr(g->b, take);
  LLVMPositionBuilderAtEnd(g->b, take);
  LLVMValueRef c = LLVMBuildAtomicRMW(g->b, LLVMAtomicRMWBinOpAdd, nextp, i64c(g, 1),
                                      LLVMAtomicOrderingMonotonic, false);
  LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, c, n, ""), work, ret);
  LLVMPositionBuilderAtEnd(g->b, work);
  emit(g, cx, c);
  LLVMBuildBr(g->b, take);
  LLVMPositionBuilderAtEnd(g->b, ret);
  LLVMBuildRetVoid(g->b);
}

/* The rows pc .. pc+kc of panel q of the K×nc slab of B (b at column jc)
** into d; full: the panel has NR columns. */
static void packb_block(Gen *g, LLVMValueRef b, LLVMValueRef ldb, LLVMValueRef nc,
                        LLVMValueRef q, LLVMValueRef pc, LLVMValueRef kc, LLVMValueRef d,
                        bool full)
{
  LLVMValueRef NR = i64c(g, g->bk.nr), j = mul(g, q, NR);
  if (full && g->s->trans_b) {
    pack_rows(g, at(g, b, add(g, mul(g, j, ldb), pc)), ldb, g->bk.nr, kc, d);
    return;
  }
  LlLoop lk;
  ll_loop_begin(g->b, &lk, i64c(g, 0), kc, i64c(g, 1), "k");
  packb_row(g, b, ldb, add(g, pc, lk.iv), j, nc, at(g, d, mul(g, lk.iv, NR)), full);
  ll_loop_end(g->b, &lk);
}

/* Branches on whether panel q of an nc-column slab is full and emits
** emit(g, cx, q, full) on each side. */
typedef void PanelFn(Gen *g, LLVMValueRef cx, LLVMValueRef q, bool full);
static void full_or_tail(Gen *g, LLVMValueRef cx, LLVMValueRef q, LLVMValueRef nc,
                         PanelFn *emit)
{
  LLVMValueRef NR = i64c(g, g->bk.nr);
  LLVMBasicBlockRef fb = ll_block_new(g->b, "b_full"), tb = ll_block_new(g->b, "b_tail");
  LLVMBasicBlockRef nx = ll_block_new(g->b, "b_next");
  LLVMValueRef full = LLVMBuildICmp(g->b, LLVMIntSLE, add(g, mul(g, q, NR), NR), nc, "");
  LLVMBuildCondBr(g->b, full, fb, tb);
  for (int f = 1; f >= 0; f--) {
    LLVMPositionBuilderAtEnd(g->b, f ? fb : tb);
    emit(g, cx, q, f);
    LLVMBuildBr(g->b, nx);
  }
  LLVMPositionBuilderAtEnd(g->b, nx);
}

/* B at the slab's column jc. */
static LLVMValueRef b_slab(Gen *g, LLVMValueRef cx)
{
  LLVMValueRef b = ctx_get(g, cx, CX_B, "b"), ldb = ctx_get(g, cx, CX_LDB, "ldb");
  LLVMValueRef jc = ctx_get(g, cx, CX_JC, "jc");
  return at(g, b, g->s->trans_b ? mul(g, jc, ldb) : jc);
}

/* One panel q of the K×nc slab of B at column jc, into Bpack: the kc×nc
** block of step pc starts at Bpack + pc*ncr (ncr = nc rounded up to NR),
** its panel q at q*kc*NR. */
static void packb_slab_panel(Gen *g, LLVMValueRef cx, LLVMValueRef q, bool full)
{
  LLVMValueRef ldb = ctx_get(g, cx, CX_LDB, "ldb"), bp = ctx_get(g, cx, CX_BPACK, "bpack");
  LLVMValueRef K = ctx_get(g, cx, CX_K, "k"), nc = ctx_get(g, cx, CX_NC, "nc");
  LLVMValueRef ncr = ctx_get(g, cx, CX_NCR, "ncr"), NR = i64c(g, g->bk.nr);
  LLVMValueRef b = b_slab(g, cx);
  LlLoop lp;
  ll_loop_begin(g->b, &lp, i64c(g, 0), K, i64c(g, g->bk.kc), "pc");
  LLVMValueRef kc = ll_smin(g->b, i64c(g, g->bk.kc), sub(g, K, lp.iv), "kc");
  LLVMValueRef d = at(g, bp, add(g, mul(g, lp.iv, ncr), mul(g, mul(g, q, kc), NR)));
  packb_block(g, b, ldb, nc, q, lp.iv, kc, d, full);
  ll_loop_end(g->b, &lp);
}

static void packb_panel(Gen *g, LLVMValueRef cx, LLVMValueRef q)
{
  full_or_tail(g, cx, q, ctx_get(g, cx, CX_NC, "nc"), packb_slab_panel);
}

/* NAME_packb_body(begin, end, ctx): packs panels of B taken one at a time
** (dynamic_loop). */
static void gen_packb_body(Gen *g)
{
  LLVMTypeRef ps[3] = {g->i64, g->i64, g->ptr};
  LLVMValueRef fn = g->packb_body = fn_new(g, "_packb_body", ps, 3, true);
  arg(fn, 0, "begin");
  arg(fn, 1, "end");
  LLVMValueRef cx = arg(fn, 2, "ctx");
  LLVMValueRef npan = LLVMBuildSDiv(g->b, ctx_get(g, cx, CX_NCR, "ncr"),
                                    i64c(g, g->bk.nr), "npan");
  dynamic_loop(g, cx, CX_BNEXT, npan, packb_panel);
}

/* ---------------------------------------------------------------- macro-kernel */

/* The tiles of C (at cp, rows ldc apart) beside one packed kc×NR panel of
** B holding nr <= NR columns: ir over the MR panels of the packed mc×kc
** block of A; full-width tiles go to tile_call, narrower ones to the edge. */
static void tile_column(Gen *g, LLVMValueRef ablk, LLVMValueRef mc, LLVMValueRef kc,
                        LLVMValueRef bpan, LLVMValueRef nr, LLVMValueRef cp,
                        LLVMValueRef ldc, LLVMValueRef beta, LLVMValueRef biasp,
                        LLVMValueRef last)
{
  LLVMValueRef MR = i64c(g, g->bk.mr);
  LlLoop li;
  ll_loop_begin(g->b, &li, i64c(g, 0), mc, MR, "ir");
  LLVMValueRef mr = ll_smin(g->b, MR, sub(g, mc, li.iv), "mr");
  LLVMValueRef apan = at(g, ablk, mul(g, li.iv, i64c(g, g->bk.kc)));
  LLVMValueRef ct = at(g, cp, mul(g, li.iv, ldc));
  LLVMValueRef isfull = LLVMBuildICmp(g->b, LLVMIntEQ, nr, i64c(g, g->bk.nr), "");
  LLVMBasicBlockRef fb = ll_block_new(g->b, "b_full"), eb = ll_block_new(g->b, "b_edge");
  LLVMBasicBlockRef nx = ll_block_new(g->b, "b_next");
  LLVMBuildCondBr(g->b, isfull, fb, eb);
  LLVMPositionBuilderAtEnd(g->b, fb);
  LLVMValueRef ua[8] = {kc, apan, bpan, ct, ldc, beta, biasp, last};
  tile_call(g, mr, ua);
  LLVMBuildBr(g->b, nx);
  LLVMPositionBuilderAtEnd(g->b, eb);
  LLVMValueRef ea[10] = {mr, nr, kc, apan, bpan, ct, ldc, beta, biasp, last};
  LLVMBuildCall2(g->b, LLVMGlobalGetValueType(g->edge), g->edge, ea, 10, "");
  LLVMBuildBr(g->b, nx);
  LLVMPositionBuilderAtEnd(g->b, nx);
  ll_loop_end(g->b, &li);
}

/* The tiles of one packed mc×kc block of A against the packed kc×nc block
** of B: jr over NR panels (B panel in L1), ir over MR panels. */
static void macro_kernel(Gen *g, LLVMValueRef cx, LLVMValueRef ablk, LLVMValueRef i0,
                         LLVMValueRef mc, LLVMValueRef kc, LLVMValueRef bp,
                         LLVMValueRef beta, LLVMValueRef last)
{
  LLVMValueRef nc = ctx_get(g, cx, CX_NC, "nc"), jc = ctx_get(g, cx, CX_JC, "jc");
  LLVMValueRef c = ctx_get(g, cx, CX_C, "c"), ldc = ctx_get(g, cx, CX_LDC, "ldc");
  LLVMValueRef bias = ctx_get(g, cx, CX_BIAS, "bias");
  LLVMValueRef NR = i64c(g, g->bk.nr);
  LlLoop lj;
  ll_loop_begin(g->b, &lj, i64c(g, 0), nc, NR, "jr");
  LLVMValueRef nr = ll_smin(g->b, NR, sub(g, nc, lj.iv), "nr");
  LLVMValueRef bpan = at(g, bp, mul(g, kc, lj.iv));
  LLVMValueRef col = add(g, jc, lj.iv);
  LLVMValueRef biasp = g->s->bias ? at(g, bias, col) : LLVMConstNull(g->ptr);
  LLVMValueRef cp = at(g, c, add(g, mul(g, i0, ldc), col));
  tile_column(g, ablk, mc, kc, bpan, nr, cp, ldc, beta, biasp, last);
  ll_loop_end(g->b, &lj);
}

/* The KC step at pc of a K-long product: its length kc, the beta it
** applies (the caller's on the first step, then 1: accumulate) and
** whether it is the last (the epilogue's). */
static void kc_step(Gen *g, LLVMValueRef pc, LLVMValueRef K, LLVMValueRef beta,
                    LLVMValueRef *kc, LLVMValueRef *beta_k, LLVMValueRef *last)
{
  *kc = ll_smin(g->b, i64c(g, g->bk.kc), sub(g, K, pc), "kc");
  LLVMValueRef first = LLVMBuildICmp(g->b, LLVMIntEQ, pc, i64c(g, 0), "");
  *beta_k = LLVMBuildSelect(g->b, first, beta, ll_const_f32(g->c, 1), "beta_k");
  *last = LLVMBuildICmp(g->b, LLVMIntSGE, add(g, pc, *kc), K, "last");
}

/* One chunk c of CHUNK MR panels of M: for each KC step pc (once with
** kc = 0 when K = 0, so that C = beta·C) pack A into Apack at the chunk's
** own offset, then the macro-kernel against the packed B block of pc. */
static LLVMValueRef mrr_of(Gen *g, LLVMValueRef M);

static void body_chunk(Gen *g, LLVMValueRef cx, LLVMValueRef c)
{
  LLVMValueRef a = ctx_get(g, cx, CX_A, "a"), lda = ctx_get(g, cx, CX_LDA, "lda");
  LLVMValueRef ap = ctx_get(g, cx, CX_APACK, "apack"), M = ctx_get(g, cx, CX_M, "m");
  LLVMValueRef K = ctx_get(g, cx, CX_K, "k"), beta = ctx_get(g, cx, CX_BETA, "beta");
  LLVMValueRef bpack = ctx_get(g, cx, CX_BPACK, "bpack"), ncr = ctx_get(g, cx, CX_NCR, "ncr");
  LLVMValueRef chunk = ctx_get(g, cx, CX_CHUNK, "chunk");
  LLVMValueRef MR = i64c(g, g->bk.mr), KC = i64c(g, g->bk.kc), one = i64c(g, 1);
  LLVMValueRef kend = LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, K, one, ""),
                                      one, K, "kend");
  LLVMValueRef npan = LLVMBuildSDiv(g->b, add(g, M, i64c(g, g->bk.mr - 1)), MR, "npan");
  LLVMValueRef p0 = mul(g, c, chunk);
  LLVMValueRef p1 = ll_smin(g->b, add(g, p0, chunk), npan, "p1");
  LLVMValueRef i0 = mul(g, p0, MR);
  LLVMValueRef mc = sub(g, ll_smin(g->b, mul(g, p1, MR), M, ""), i0);
  LLVMValueRef ablk = at(g, ap, mul(g, i0, KC));
  LlLoop lk;
  ll_loop_begin(g->b, &lk, i64c(g, 0), kend, KC, "pc");
  LLVMValueRef pc = lk.iv, kc, beta_k, last;
  kc_step(g, pc, K, beta, &kc, &beta_k, &last);
  LLVMValueRef bpk = at(g, bpack, mul(g, pc, ncr));
  if (g->s->a_packed) { /* the caller's packed A: block pc at A + pc*mrr */
    ablk = at(g, a, add(g, mul(g, pc, mrr_of(g, M)), mul(g, i0, KC)));
  } else {
    LLVMValueRef corner = g->s->trans_a ? add(g, mul(g, pc, lda), i0)
                                        : add(g, mul(g, i0, lda), pc);
    LLVMValueRef pa[5] = {mc, kc, at(g, a, corner), lda, ablk};
    LLVMBuildCall2(g->b, LLVMGlobalGetValueType(g->packa), g->packa, pa, 5, "");
  }
  macro_kernel(g, cx, ablk, i0, mc, kc, bpk, beta_k, last);
  ll_loop_end(g->b, &lk);
}

/* NAME_body(begin, end, ctx): computes chunks of M taken one at a time
** (dynamic_loop, body_chunk). */
static void gen_body(Gen *g)
{
  LLVMTypeRef ps[3] = {g->i64, g->i64, g->ptr};
  LLVMValueRef fn = g->body = fn_new(g, "_body", ps, 3, true);
  arg(fn, 0, "begin");
  arg(fn, 1, "end");
  LLVMValueRef cx = arg(fn, 2, "ctx");
  dynamic_loop(g, cx, CX_NEXT, ctx_get(g, cx, CX_NCHUNK, "nchunk"), body_chunk);
}

/* ---------------------------------------------------------------- entry */

static LLVMValueRef par_for_decl(Gen *g)
{
  LLVMValueRef f = LLVMGetNamedFunction(g->mod, "nnrt_parallel_for");
  if (f)
    return f;
  LLVMTypeRef ps[3] = {g->i64, g->ptr, g->ptr};
  return LLVMAddFunction(g->mod, "nnrt_parallel_for",
                         LLVMFunctionType(ll_void(g->c), ps, 3, false));
}

static void call_par_for(Gen *g, LLVMValueRef n, LLVMValueRef body, LLVMValueRef cx)
{
  LLVMValueRef a[3] = {n, body, cx};
  LLVMBuildCall2(g->b, LLVMGlobalGetValueType(g->par_for), g->par_for, a, 3, "");
}

static LLVMValueRef ceil_div(Gen *g, LLVMValueRef x, int d)
{
  return LLVMBuildSDiv(g->b, add(g, x, i64c(g, d - 1)), i64c(g, d), "");
}

/* ---------------------------------------------------------------- small M */

/* When M <= MC, op(A) is packed whole, once (the block of KC step pc at
** Apack + pc*mrr, mrr = M rounded up to MR), and the parallel work is the
** NR panels of each slab of B: a task packs its panel for one KC step
** right before the ceil(M/MR) tiles that use it, so the panel is read from
** L1 and B is read from memory once.  (With chunks of M as the work, each
** chunk would read the whole packed slab of B again from L3.) */
static LLVMValueRef mrr_of(Gen *g, LLVMValueRef M)
{
  return mul(g, ceil_div(g, M, g->bk.mr), i64c(g, g->bk.mr));
}

static void packa_whole_panel(Gen *g, LLVMValueRef cx, LLVMValueRef p, bool full)
{
  LLVMValueRef a = ctx_get(g, cx, CX_A, "a"), lda = ctx_get(g, cx, CX_LDA, "lda");
  LLVMValueRef ap = ctx_get(g, cx, CX_APACK, "apack"), M = ctx_get(g, cx, CX_M, "m");
  LLVMValueRef K = ctx_get(g, cx, CX_K, "k"), mrr = mrr_of(g, M);
  LlLoop lp;
  ll_loop_begin(g->b, &lp, i64c(g, 0), K, i64c(g, g->bk.kc), "pc");
  LLVMValueRef kc = ll_smin(g->b, i64c(g, g->bk.kc), sub(g, K, lp.iv), "kc");
  LLVMValueRef corner = g->s->trans_a ? mul(g, lp.iv, lda) : lp.iv;
  packa_panel(g, at(g, a, corner), lda, M, kc, p, at(g, ap, mul(g, lp.iv, mrr)), full);
  ll_loop_end(g->b, &lp);
}

/* Panel p of A (MR rows) for every KC step. */
static void packa_whole(Gen *g, LLVMValueRef cx, LLVMValueRef p)
{
  LLVMValueRef M = ctx_get(g, cx, CX_M, "m"), MR = i64c(g, g->bk.mr);
  LLVMBasicBlockRef fb = ll_block_new(g->b, "b_full"), tb = ll_block_new(g->b, "b_tail");
  LLVMBasicBlockRef nx = ll_block_new(g->b, "b_next");
  LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLE, add(g, mul(g, p, MR), MR), M, ""),
                  fb, tb);
  for (int f = 1; f >= 0; f--) {
    LLVMPositionBuilderAtEnd(g->b, f ? fb : tb);
    packa_whole_panel(g, cx, p, f);
    LLVMBuildBr(g->b, nx);
  }
  LLVMPositionBuilderAtEnd(g->b, nx);
}

/* The MR tiles of C beside panel q of the slab, for one KC step. */
static void small_tiles(Gen *g, LLVMValueRef cx, LLVMValueRef q, LLVMValueRef pc,
                        LLVMValueRef kc, LLVMValueRef beta_k, LLVMValueRef last)
{
  LLVMValueRef M = ctx_get(g, cx, CX_M, "m"), ap = ctx_get(g, cx, CX_APACK, "apack");
  LLVMValueRef bpack = ctx_get(g, cx, CX_BPACK, "bpack"), ncr = ctx_get(g, cx, CX_NCR, "ncr");
  LLVMValueRef nc = ctx_get(g, cx, CX_NC, "nc"), jc = ctx_get(g, cx, CX_JC, "jc");
  LLVMValueRef c = ctx_get(g, cx, CX_C, "c"), ldc = ctx_get(g, cx, CX_LDC, "ldc");
  LLVMValueRef bias = ctx_get(g, cx, CX_BIAS, "bias");
  LLVMValueRef NR = i64c(g, g->bk.nr);
  LLVMValueRef j = mul(g, q, NR), col = add(g, jc, j);
  LLVMValueRef nr = ll_smin(g->b, NR, sub(g, nc, j), "nr");
  LLVMValueRef biasp = g->s->bias ? at(g, bias, col) : LLVMConstNull(g->ptr);
  LLVMValueRef bpan = at(g, bpack, add(g, mul(g, pc, ncr), mul(g, mul(g, q, kc), NR)));
  LLVMValueRef ablk = at(g, ap, mul(g, pc, mrr_of(g, M)));
  tile_column(g, ablk, M, kc, bpan, nr, at(g, c, col), ldc, beta_k, biasp, last);
}

/* Task t: the group of panels [t*G, min(t*G + G, npan)) of the slab (G in
** the context).  For each KC step it packs the group's full panels row by
** row of B, so that it reads G·NR contiguous floats of each row (a panel
** alone is NR floats of every row: one page per row, out of reach of the
** hardware prefetchers), the short last panel alone, then computes every
** tile beside the group. */
static void small_task(Gen *g, LLVMValueRef cx, LLVMValueRef t)
{
  LLVMValueRef K = ctx_get(g, cx, CX_K, "k"), beta = ctx_get(g, cx, CX_BETA, "beta");
  LLVMValueRef ldb = ctx_get(g, cx, CX_LDB, "ldb"), nc = ctx_get(g, cx, CX_NC, "nc");
  LLVMValueRef bpack = ctx_get(g, cx, CX_BPACK, "bpack"), ncr = ctx_get(g, cx, CX_NCR, "ncr");
  LLVMValueRef G = ctx_get(g, cx, CX_CHUNK, "group");
  LLVMValueRef NR = i64c(g, g->bk.nr), KC = i64c(g, g->bk.kc), one = i64c(g, 1);
  LLVMValueRef b = b_slab(g, cx);
  LLVMValueRef q0 = mul(g, t, G);
  LLVMValueRef q1 = ll_smin(g->b, add(g, q0, G), LLVMBuildSDiv(g->b, ncr, NR, ""), "q1");
  LLVMValueRef qf = ll_smin(g->b, q1, LLVMBuildSDiv(g->b, nc, NR, ""), "qfull");
  LLVMValueRef kend = LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, K, one, ""),
                                      one, K, "kend");
  LlLoop lk, lq, lr;
  ll_loop_begin(g->b, &lk, i64c(g, 0), kend, KC, "pc");
  LLVMValueRef pc = lk.iv, kc, beta_k, last;
  kc_step(g, pc, K, beta, &kc, &beta_k, &last);
  LLVMValueRef blk = at(g, bpack, mul(g, pc, ncr));
  if (g->s->trans_b) {
    ll_loop_begin(g->b, &lq, q0, qf, one, "q");
    packb_block(g, b, ldb, nc, lq.iv, pc, kc, at(g, blk, mul(g, mul(g, lq.iv, kc), NR)), true);
    ll_loop_end(g->b, &lq);
  } else {
    ll_loop_begin(g->b, &lr, i64c(g, 0), kc, one, "k");
    ll_loop_begin(g->b, &lq, q0, qf, one, "q");
    LLVMValueRef d = at(g, blk, add(g, mul(g, mul(g, lq.iv, kc), NR), mul(g, lr.iv, NR)));
    packb_row(g, b, ldb, add(g, pc, lr.iv), mul(g, lq.iv, NR), nc, d, true);
    ll_loop_end(g->b, &lq);
    ll_loop_end(g->b, &lr);
  }
  LLVMBasicBlockRef tb = ll_block_new(g->b, "b_tail"), go = ll_block_new(g->b, "b_tiles");
  LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, qf, q1, ""), tb, go);
  LLVMPositionBuilderAtEnd(g->b, tb);
  packb_block(g, b, ldb, nc, qf, pc, kc, at(g, blk, mul(g, mul(g, qf, kc), NR)), false);
  LLVMBuildBr(g->b, go);
  LLVMPositionBuilderAtEnd(g->b, go);
  ll_loop_begin(g->b, &lq, q0, q1, one, "q");
  small_tiles(g, cx, lq.iv, pc, kc, beta_k, last);
  ll_loop_end(g->b, &lq);
  ll_loop_end(g->b, &lk);
}

/* NAME_packa_body and NAME_small_body(begin, end, ctx): the two parallel
** steps of the small-M path (dynamic_loop). */
static void gen_small_bodies(Gen *g)
{
  LLVMTypeRef ps[3] = {g->i64, g->i64, g->ptr};
  LLVMValueRef fn = g->packa_body = fn_new(g, "_packa_body", ps, 3, true);
  LLVMValueRef cx = LLVMGetParam(fn, 2);
  dynamic_loop(g, cx, CX_NEXT, ceil_div(g, ctx_get(g, cx, CX_M, "m"), g->bk.mr), packa_whole);
  fn = g->small_body = fn_new(g, "_small_body", ps, 3, true);
  cx = LLVMGetParam(fn, 2);
  dynamic_loop(g, cx, CX_BNEXT, ctx_get(g, cx, CX_NCHUNK, "ntask"), small_task);
}

/* Sets the context for the slab of B's columns at jc (nc = min(NC, N -
** jc), ncr = nc rounded up to NR) and returns its number of NR panels. */
static LLVMValueRef slab_begin(Gen *g, LLVMValueRef cx, LLVMValueRef jc, LLVMValueRef N)
{
  LLVMValueRef nc = ll_smin(g->b, i64c(g, g->bk.nc), sub(g, N, jc), "nc");
  LLVMValueRef npan_n = ceil_div(g, nc, g->bk.nr);
  ctx_set(g, cx, CX_JC, jc);
  ctx_set(g, cx, CX_NC, nc);
  ctx_set(g, cx, CX_NCR, mul(g, npan_n, i64c(g, g->bk.nr)));
  return npan_n;
}

/* The jc loop of the small-M path (work: packed A, then the slab of B). */
static void small_entry(Gen *g, LLVMValueRef cx, LLVMValueRef M, LLVMValueRef N,
                        LLVMValueRef K, LLVMValueRef work)
{
  LLVMValueRef afl = mul(g, mrr_of(g, M), mul(g, ceil_div(g, K, g->bk.kc), i64c(g, g->bk.kc)));
  afl = LLVMBuildAnd(g->b, add(g, afl, i64c(g, 15)), i64c(g, -16), "");
  if (g->s->a_packed) {
    ctx_set(g, cx, CX_APACK, ctx_get(g, cx, CX_A, "a"));
    ctx_set(g, cx, CX_BPACK, work);
  } else {
    ctx_set(g, cx, CX_APACK, work);
    ctx_set(g, cx, CX_BPACK, at(g, work, afl));
    ctx_set(g, cx, CX_NEXT, i64c(g, 0));
    call_par_for(g, ceil_div(g, M, g->bk.mr), g->packa_body, cx);
  }
  LlLoop lj;
  ll_loop_begin(g->b, &lj, i64c(g, 0), N, i64c(g, g->bk.nc), "jc");
  LLVMValueRef npan_n = slab_begin(g, cx, lj.iv, N);
  /* groups of G = clamp(npan / 4, 1, 8) panels */
  LLVMValueRef G = ll_smin(g->b, i64c(g, 8), LLVMBuildSDiv(g->b, npan_n, i64c(g, 4), ""), "");
  G = LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, G, i64c(g, 1), ""),
                      i64c(g, 1), G, "group");
  LLVMValueRef ntask = LLVMBuildSDiv(g->b, sub(g, add(g, npan_n, G), i64c(g, 1)), G, "ntask");
  ctx_set(g, cx, CX_CHUNK, G);
  ctx_set(g, cx, CX_NCHUNK, ntask);
  ctx_set(g, cx, CX_BNEXT, i64c(g, 0));
  call_par_for(g, ntask, g->small_body, cx);
  ll_loop_end(g->b, &lj);
}

/* NAME(M, N, K, A, lda, B, ldb, C, ldc, beta, bias, work): the jc loop;
** each step packs the K×nc slab of B in parallel, then runs the bodies
** (two parallel regions per NC columns). */
static LLVMValueRef gen_entry(Gen *g)
{
  LLVMTypeRef ps[12] = {g->i64, g->i64, g->i64, g->ptr, g->i64, g->ptr, g->i64,
                        g->ptr, g->i64, g->f32, g->ptr, g->ptr};
  LLVMValueRef fn = fn_new(g, "", ps, 12, false);
  const char *names[12] = {"m", "n", "k", "a", "lda", "b", "ldb", "c", "ldc", "beta",
                           "bias", "work"};
  LLVMValueRef v[12];
  for (unsigned i = 0; i < 12; i++)
    v[i] = arg(fn, i, names[i]);
  LLVMValueRef M = v[0], N = v[1], K = v[2];
  LLVMValueRef cx = LLVMBuildAlloca(g->b, g->ctx_ty, "ctx");
  static const int fields[] = {CX_M, -1, CX_K, CX_A, CX_LDA, CX_B, CX_LDB, CX_C, CX_LDC,
                               CX_BETA, CX_BIAS, -1};
  for (int i = 0; i < 12; i++)
    if (fields[i] >= 0)
      ctx_set(g, cx, fields[i], v[i]);
  LLVMBasicBlockRef go = ll_block_new(g->b, "b_go"), out = ll_block_new(g->b, "b_ret");
  LLVMValueRef empty = LLVMBuildOr(g->b, LLVMBuildICmp(g->b, LLVMIntSLE, M, i64c(g, 0), ""),
                                   LLVMBuildICmp(g->b, LLVMIntSLE, N, i64c(g, 0), ""), "");
  LLVMBuildCondBr(g->b, empty, out, go);
  LLVMPositionBuilderAtEnd(g->b, go);
  LLVMBasicBlockRef sm = ll_block_new(g->b, "b_small"), lg = ll_block_new(g->b, "b_large");
  LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLE, M, i64c(g, g->bk.mc), ""), sm, lg);
  LLVMPositionBuilderAtEnd(g->b, sm);
  small_entry(g, cx, M, N, K, v[11]);
  LLVMBuildBr(g->b, out);
  LLVMPositionBuilderAtEnd(g->b, lg);
  /* work = Apack (roundup(M, MR) * KC, rounded to 16) then Bpack */
  LLVMValueRef npan_m = ceil_div(g, M, g->bk.mr);
  LLVMValueRef afl = mul(g, mul(g, npan_m, i64c(g, g->bk.mr)), i64c(g, g->bk.kc));
  afl = LLVMBuildAnd(g->b, add(g, afl, i64c(g, 15)), i64c(g, -16), "");
  ctx_set(g, cx, CX_APACK, v[11]);
  ctx_set(g, cx, CX_BPACK, g->s->a_packed ? v[11] : at(g, v[11], afl));
  /* chunks of M for the bodies: at most MC rows, at least 8 chunks when
  ** there are 8 panels, so that threads can balance the load */
  LLVMValueRef chunk = ll_smin(g->b, ceil_div(g, npan_m, 8), i64c(g, g->bk.mc / g->bk.mr), "");
  LLVMValueRef nchunk = LLVMBuildSDiv(g->b, sub(g, add(g, npan_m, chunk), i64c(g, 1)), chunk,
                                      "nchunk");
  ctx_set(g, cx, CX_CHUNK, chunk);
  ctx_set(g, cx, CX_NCHUNK, nchunk);
  LlLoop lj;
  ll_loop_begin(g->b, &lj, i64c(g, 0), N, i64c(g, g->bk.nc), "jc");
  LLVMValueRef npan_n = slab_begin(g, cx, lj.iv, N);
  for (int f = CX_NEXT; f <= CX_BNEXT; f++)
    ctx_set(g, cx, f, i64c(g, 0));
  call_par_for(g, npan_n, g->packb_body, cx);
  call_par_for(g, nchunk, g->body, cx);
  ll_loop_end(g->b, &lj);
  LLVMBuildBr(g->b, out);
  LLVMPositionBuilderAtEnd(g->b, out);
  LLVMBuildRetVoid(g->b);
  return fn;
}

LLVMValueRef cg_gemm_define(LLVMModuleRef mod, LLVMTargetMachineRef tm,
                            const GemmSpec *spec)
{
  assert(spec->name && spec->vec_floats > 0);
  if (tm && !*LLVMGetTarget(mod)) {
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(mod, dl);
    LLVMDisposeTargetData(dl);
  }
  Gen g = {.mod = mod, .c = LLVMGetModuleContext(mod), .s = spec};
  cg_gemm_blocking(spec, &g.bk);
  g.w = spec->vec_floats;
  g.nv = g.bk.nr / g.w;
  g.b = LLVMCreateBuilderInContext(g.c);
  g.f32 = ll_f32(g.c), g.i64 = ll_i64(g.c), g.ptr = ll_ptr(g.c);
  g.vt = ll_vf32(g.c, (unsigned)g.w);
  LLVMTypeRef f[CX_COUNT] = {
    [CX_A] = g.ptr, [CX_LDA] = g.i64, [CX_B] = g.ptr, [CX_LDB] = g.i64,
    [CX_C] = g.ptr, [CX_LDC] = g.i64, [CX_BETA] = g.f32, [CX_BIAS] = g.ptr,
    [CX_APACK] = g.ptr, [CX_BPACK] = g.ptr, [CX_M] = g.i64, [CX_K] = g.i64,
    [CX_JC] = g.i64, [CX_NC] = g.i64, [CX_NCR] = g.i64, [CX_NEXT] = g.i64,
    [CX_BNEXT] = g.i64, [CX_CHUNK] = g.i64,
    [CX_NCHUNK] = g.i64};
  g.ctx_ty = LLVMStructTypeInContext(g.c, f, CX_COUNT, false);
  g.par_for = par_for_decl(&g);
  g.ukr = gen_ukr(&g, g.bk.mr);
  if (g.nv > 1) { /* one vector wide, for the edge */
    g.nv = 1;
    g.ukr_w = gen_ukr(&g, g.bk.mr);
    g.nv = g.bk.nr / g.w;
  }
  for (int i = 0; i < 8 && (1 << i) < g.bk.mr; i++)
    g.ukr_rows[i] = gen_ukr(&g, 1 << i);
  gen_edge(&g);
  gen_packa(&g);
  gen_packb_body(&g);
  gen_body(&g);
  gen_small_bodies(&g);
  LLVMValueRef fn = gen_entry(&g);
  LLVMDisposeBuilder(g.b);
  return fn;
}
