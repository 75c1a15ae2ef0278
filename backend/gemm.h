/*
** This file contains the interface of the SGEMM generator: a packed,
** register-blocked matrix product (BLIS structure) emitted as LLVM vector
** IR and sized from the target's vector width and register count.
**
** The generated function (named spec->name) is
**
**   void NAME(int64_t M, int64_t N, int64_t K,
**             const float *A, int64_t lda, const float *B, int64_t ldb,
**             float *C, int64_t ldc, float beta,
**             const float *bias, float *work);
**
** and computes, row-major, C = epi(op(A)·op(B) + beta·C) where op(A) is
** M×K (A itself, or Aᵀ when trans_a: then A is stored K×M), op(B) is K×N
** (B, or Bᵀ when trans_b: then B is stored N×K), and epi adds bias[j] to
** column j (spec->bias) then applies max(x, 0) (spec->relu).  When beta is
** 0, C is only written (it may hold NaNs).  bias may be NULL unless
** spec->bias.  work is scratch of cg_gemm_work_floats() floats (64-byte
** alignment is best, 4 is enough).  Threads come from the runtime:
** nnrt_parallel_for(n, body, ctx) is declared in the module and called
** on generated outlined bodies.
*/
#ifndef NNC_GEMM_H
#define NNC_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "target.h"

typedef struct GemmSpec {
  const char *name;   /* symbol of the generated function */
  bool trans_a;       /* A is stored K×M */
  bool trans_b;       /* B is stored N×K */
  bool bias;          /* epilogue: + bias[j] */
  bool relu;          /* epilogue: max(x, 0), after the bias */
  bool a_packed;      /* A is op(A) already packed (the caller's im2col writes
                         it so): element (i, k) at A[(k/KC)·KC·mrr + (i/MR)·MR·KC
                         + (trans_a ? (k%KC)·MR + i%MR : (i%MR)·KC + k%KC)],
                         mrr = M rounded up to MR; rows M .. mrr-1 are read,
                         their results dropped; lda is not used */
  int vec_floats;     /* from CgTarget: 16, 8 or 4 */
  int vec_regs;       /* from CgTarget: 32 or 16 */
  /* Blocking; 0 picks the default (see cg_gemm_blocking). */
  int mr, nr;         /* micro-tile: MR rows of C by NR columns */
  int kc, mc, nc;     /* cache blocks along K, M, N */
  int l1_bytes;       /* data cache sizes the defaults assume (0: 48 KiB L1d and
                         2 MiB L2 per core, as on this Xeon; Skylake-X has 32 KiB
                         and 1 MiB: KC is then 256 and MC 504) */
  int l2_bytes;
} GemmSpec;

/* The blocking in effect for a spec, defaults resolved. */
typedef struct GemmBlocking {
  int mr, nr, kc, mc, nc;
} GemmBlocking;

/* The C type of a generated function. */
typedef void CgGemmFn(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                      const float *B, int64_t ldb, float *C, int64_t ldc, float beta,
                      const float *bias, float *work);

/* A spec for target t with every blocking left to the defaults. */
void cg_gemm_spec_init(GemmSpec *spec, const CgTarget *t, const char *name);

/* Resolves the defaults of spec into out:
**   NR = 2 vectors, MR = (registers - NR/W - 1) / (NR/W) rows (6×16 AVX2,
**   14×32 AVX-512): MR·NR/W accumulators + NR/W loads of B + 1 broadcast.
**   KC: a KC×NR micro-panel of packed B fills L1, at most 384 (384 for
**       AVX-512 with a 48 KiB L1; measured better than half of L1, 192).
**   MC: an MC×KC block of packed A takes half of L2 (672 rows for AVX-512
**       with KC 384 and 2 MiB); the parallel bodies take chunks of M of
**       at most MC rows, smaller when that leaves fewer than 8 chunks.
**   NC: 4096 columns (the packed KC×NC block of B lives in L3). */
void cg_gemm_blocking(const GemmSpec *spec, GemmBlocking *out);

/* Floats of scratch the generated function needs for these sizes:
** roundup(M, MR)·KC (roundup(M, MR)·roundup(K, KC) when M <= MC: all of
** A is packed at once; none when a_packed) (rounded to 16) for packed A, then
** K·roundup(min(N, NC), NR) for packed B.  It does not depend on the
** thread count (threads is accepted for later use). */
int64_t cg_gemm_work_floats(const GemmSpec *spec, int64_t M, int64_t N, int64_t K,
                            int threads);

/* Defines spec->name and its internal helpers (NAME_ukr, NAME_edge,
** NAME_packa, NAME_packb_body, NAME_body) in mod, and sets the module's
** triple and data layout from tm when it has none.  Returns the function. */
LLVMValueRef cg_gemm_define(LLVMModuleRef mod, LLVMTargetMachineRef tm,
                            const GemmSpec *spec);

#endif
