/*
** This file contains the private interface between the files of the
** lowering (backend/codegen.c, backend/cg_*.c): the lowering state, the
** per-value plan, the element emitters every op rule implements and the
** helpers they share (loops, loads, conversions, math).
**
** The model: every op has an element emitter, CgElemFn, that emits the
** scalar value of one element of its result at a multi-index (i64 LLVM
** values, one per dimension) in the current kernel.  An operand is read
** with cg_elem(): a materialised value is a load from its buffer (strides
** per dimension, stride 0 along broadcast dimensions), a fused (inlined)
** value is its own element emitter, recursively - so producers fuse into
** any consumer.  A materialised node becomes a kernel: a loop nest over its
** result calling its element emitter and storing, or, for ops that are
** not naturally per-element (matmul, softmax), a custom CgKernFn.
*/
#ifndef NNC_CG_INT_H
#define NNC_CG_INT_H

#include "codegen.h"

/* Where a materialised value lives. */
typedef enum CgBufKind {
  CGB_NONE, CGB_ARENA, CGB_INPUT, CGB_GLOBAL, CGB_OUTPUT, CGB_VIEW
} CgBufKind;

/* The plan of one IR value. */
typedef struct CgVal {
  const IrValue *v;
  bool inl;              /* fused: computed where used, never stored */
  CgBufKind kind;
  int64_t off;           /* CGB_ARENA: byte offset */
  int index;             /* CGB_INPUT/GLOBAL/OUTPUT: position */
  int64_t bytes;
  int64_t st[IR_MAX_RANK]; /* element strides */
  struct CgVal *root;    /* the value whose memory this one uses (self) */
  struct CgVal *base;    /* CGB_VIEW of an operand: that operand */
  int64_t vofs;          /* CGB_VIEW: element offset from base */
  const IrNode *gemm;    /* computed by the SGEMM of this matmul node */
  const IrValue *bias;   /* its epilogue: + bias[j] (NULL: none) */
  bool relu;             /* its epilogue: max(x, 0) */
  struct CgVal *alias;   /* written in place over this global (its kernel
                            reads and writes it through one pointer) */
  struct CgVal *coout;   /* fused, but also stored by the kernel of coout
                            (multi-output fusion; in its `extra` list) */
  struct CgVal **extra;  /* values this kernel also stores, nextra of them */
  int nextra;
  int nuses;             /* operand uses + returns */
  int last;              /* position of the last use (liveness) */
  bool returned;
  bool scanuse;          /* an operand of a scan (needs a buffer) */
  bool live;             /* holds arena memory now (planning) */
  LLVMValueRef ptr;      /* base pointer in the entry function */
} CgVal;

typedef struct CgMap CgMap;

/* The kernel being emitted. */
typedef struct CgKern {
  LLVMValueRef fn;
  LLVMBasicBlockRef entry;
  int nleaf, capleaf;
  CgVal **leaf;          /* materialised values read (and written) */
  LLVMValueRef *lptr;    /* their pointers inside the kernel */
  LLVMValueRef err, seed, step;
} CgKern;

typedef struct Cg {
  const IrModule *m;
  const CgOpts *o;
  Arena *a;
  Diag *diag;
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;      /* kernel code */
  LLVMBuilderRef eb;     /* the entry function */
  LLVMTypeRef i1, i8, i16, i32, i64, f16, bf16, f32, f64, ptr, vd;
  CgMap *vals;           /* IrValue -> CgVal */
  CgKern *k;             /* current kernel */
  const char *prefix;
  const char *fname;     /* the IR function being lowered */
  int nnodes;            /* numbering of nodes (kernel names) */
  CgVal ***scratch;      /* by scan node id: second buffer of each carry */
  /* entry function state */
  LLVMValueRef efn, earena, eglobals, einputs, eoutputs, eseed, estep, eerr;
  int64_t par_threshold;
  int vec_floats, vec_regs; /* target vector shape (SGEMM) */
  bool *inplace;         /* per result of the function being lowered */
  const IrNode *first_inplace; /* the first kernel writing a global in
                            place (NULL: none); errors are checked before it */
  bool failed;
} Cg;

typedef LLVMValueRef CgElemFn(Cg *cg, const IrNode *n, LLVMValueRef *idx);
/* A whole kernel body over rows [begin, end) of the node's result. */
typedef void CgKernFn(Cg *cg, const IrNode *n, LLVMValueRef begin,
                      LLVMValueRef end);

/* ---- cg_util.c: the value map ---- */
CgVal *cg_val(Cg *cg, const IrValue *v);  /* created on first use */
void cg_vals_reset(Cg *cg);               /* empty (per function) */
/* ---- cg_plan.c: fusion, views, SGEMM choice, memory; false on error ---- */
bool cg_plan_func(Cg *cg, const IrFunc *f, int64_t *arena_bytes);
/* ---- codegen.c: element access, kernels ---- */
/* The element of v at idx (v's rank entries) in its compute type. */
LLVMValueRef cg_elem(Cg *cg, const IrValue *v, LLVMValueRef *idx);
/* Address of element idx of a materialised value in the current kernel. */
LLVMValueRef cg_addr(Cg *cg, const IrValue *v, LLVMValueRef *idx);
void cg_store(Cg *cg, const IrValue *v, LLVMValueRef *idx, LLVMValueRef x);
/* The rows (all dims but the last) and columns of a type. */
int64_t cg_rows(const IrType *t);
int64_t cg_cols(const IrType *t);
/* Split a row number into the leading indices of t (rank-1 of them). */
void cg_row_index(Cg *cg, const IrType *t, LLVMValueRef row, LLVMValueRef *idx);
/* Set a run-time error code (atomically) in the current kernel. */
void cg_set_err(Cg *cg, LLVMValueRef cond, int code);
void cg_fail(Cg *cg, const IrNode *n, const char *msg);

/* ---- helpers (cg_util.c) ---- */
LLVMValueRef cg_to_bf16(Cg *cg, LLVMValueRef f32);    /* -> i16 bits, RNE */
LLVMValueRef cg_from_bf16(Cg *cg, LLVMValueRef bits); /* -> f32 */
typedef struct CgLoop {
  LLVMBasicBlockRef head, body, exit;
  LLVMValueRef iv, phi;
} CgLoop;
/* for (iv = lo; iv < hi; iv++): returns iv, positions at the body. */
LLVMValueRef cg_loop_begin(Cg *cg, CgLoop *l, LLVMValueRef lo, LLVMValueRef hi);
void cg_loop_end(Cg *cg, CgLoop *l);
/* An alloca in the entry block of the current kernel. */
LLVMValueRef cg_alloca(Cg *cg, LLVMTypeRef t, const char *name);
LLVMValueRef cg_i64(Cg *cg, int64_t v);
LLVMValueRef cg_i32(Cg *cg, int64_t v);
/* The LLVM type values of dtype t are computed in (f16/bf16: float). */
LLVMTypeRef cg_ctype(Cg *cg, DType t);
/* The LLVM type dtype t is stored as. */
LLVMTypeRef cg_stype(Cg *cg, DType t);
/* A constant of dtype t's compute type. */
LLVMValueRef cg_const(Cg *cg, DType t, double v);
/* Convert x (compute type of `from`) to the compute type of `to` with the
** interpreter's cast rules. */
LLVMValueRef cg_convert(Cg *cg, LLVMValueRef x, DType from, DType to);
/* Round a float result to f16/bf16 precision when t is one of them. */
LLVMValueRef cg_round(Cg *cg, DType t, LLVMValueRef x);
/* x in the floating type ft (float or double), from any compute type. */
LLVMValueRef cg_to_fp(Cg *cg, LLVMValueRef x, DType from, LLVMTypeRef ft);
/* A call to an LLVM intrinsic overloaded on x's type. */
LLVMValueRef cg_intr1(Cg *cg, const char *name, LLVMValueRef x);
LLVMValueRef cg_intr2(Cg *cg, const char *name, LLVMValueRef x, LLVMValueRef y);
/* A call to a libm function (name for double, name"f" for float). */
LLVMValueRef cg_libm1(Cg *cg, const char *name, LLVMValueRef x);
/* Fast-math flags on a float instruction (contract; reassoc when asked). */
LLVMValueRef cg_fm(LLVMValueRef inst, bool reassoc);
bool cg_is_fp(LLVMTypeRef t);
/* Normalise axis against rank (asserting the verifier already checked). */
int cg_axis(int64_t axis, int rank);
/* Attribute ints of a conv-like op read as rank values. */
void cg_attr_ivec(const IrNode *n, const char *name, int rank, int64_t dflt,
                  int64_t *out);
/* Map idx of `out` to the indices of `in` under NumPy broadcasting. */
void cg_bcast_index(Cg *cg, const IrType *in, const IrType *out,
                    LLVMValueRef *idx, LLVMValueRef *iidx);

/* ---- element emitters, by family ---- */
/* cg_elementwise.c */
CgElemFn cg_elementwise, cg_cast, cg_glu, cg_constant, cg_causal_mask,
    cg_rand, cg_iota;
LLVMValueRef cg_scalar(Cg *cg, IrOp op, const IrAttrs *attrs, DType in,
                       DType out, LLVMValueRef *x);
LLVMValueRef cg_sigmoid(Cg *cg, LLVMValueRef x);
LLVMValueRef cg_exp(Cg *cg, LLVMValueRef x);
LLVMValueRef cg_log(Cg *cg, LLVMValueRef x);
LLVMValueRef cg_fmax_nan(Cg *cg, LLVMValueRef a, LLVMValueRef b);
/* Mark the current kernel (if any) as preferring full-width vectors
** (prefer-vector-width = vec_floats * 32 bits): its loops compute
** polynomial math (exp, erf) that gains from the widest vectors. */
void cg_kern_wide(Cg *cg);
/* cg_shape.c; cg_checked_label: a label x of dtype t checked against
** [0, n), as i64 (0 with CG_ERR_RANGE set when outside). */
LLVMValueRef cg_checked_label(Cg *cg, LLVMValueRef x, DType t, int64_t n);
CgElemFn cg_reshape, cg_transpose, cg_broadcast, cg_concat, cg_slice,
    cg_pad, cg_stack, cg_one_hot, cg_gather;
/* cg_reduce.c */
CgElemFn cg_reduce, cg_argmax;
CgKernFn cg_softmax_kernel;
CgElemFn cg_softmax;
/* cg_linalg.c */
CgElemFn cg_matmul, cg_attention;
CgKernFn cg_matmul_kernel, cg_attention_kernel;
/* cg_vision.c */
CgKernFn cg_conv_kernel;
CgElemFn cg_conv, cg_conv_transpose2d, cg_pool2d, cg_upsample_nearest,
    cg_upsample_bilinear, cg_pixel_shuffle;
/* cg_pool.c: max_pool2d_grad (the element emitter is the gather form) */
CgElemFn cg_max_pool2d_grad;
CgKernFn cg_max_pool2d_grad_kernel;
/* cg_loss.c */
CgElemFn cg_cross_entropy, cg_nll, cg_pointwise_loss, cg_soft_accuracy,
    cg_soft_f1, cg_accuracy, cg_f1, cg_top_k;
/* cg_linalg.c: the SGEMM path of an f32 matmul (operand layouts it takes),
** its scratch floats, and the call from the entry function. */
bool cg_gemm_ok(Cg *cg, const IrNode *mm);
int64_t cg_gemm_work(Cg *cg, const IrNode *mm);
void cg_gemm_emit(Cg *cg, const IrNode *n, CgVal *out, CgVal *work);
/* The plain SGEMM function (no epilogue) of that layout, defined on first
** use; *work (when not NULL) gets its scratch floats for M, N, K.  Its
** type is the 12-parameter CgGemmFn of gemm.h. */
LLVMValueRef cg_sgemm_fn(Cg *cg, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                         int64_t *work);
/* The same with A already packed by the caller (GemmSpec.a_packed). */
LLVMValueRef cg_sgemm_apacked_fn(Cg *cg, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                                 int64_t *work);
/* The LLVM type of those functions (CgGemmFn). */
LLVMTypeRef cg_sgemm_type(Cg *cg);
/* The SGEMM's micro-tile (MR rows × NR columns) and KC (gemm.h). */
void cg_sgemm_tile(Cg *cg, int *mr, int *nr, int *kc);
/* cg_vision.c: an f32 conv1d/conv2d lowered as im2col + SGEMM (planned by
** cg_plan.c through CgVal.gemm = the conv node; cg_gemm_work and
** cg_gemm_emit dispatch here for a non-matmul node). */
bool cg_conv_gemm_ok(Cg *cg, const IrNode *n);
int64_t cg_conv_gemm_work(Cg *cg, const IrNode *n);
void cg_conv_gemm_emit(Cg *cg, const IrNode *n, CgVal *out, CgVal *work);
/* cg_scan.c: the scan node inside the entry function. */
void cg_scan(Cg *cg, const IrNode *n);
CgElemFn cg_scan_elem;

/* codegen.c, used by cg_scan.c and cg_plan.c */
void cg_emit_block(Cg *cg, const IrBlock *b);
/* Emit a copy kernel dst[idx] = src[idx] (same shape) and call it. */
void cg_emit_copy(Cg *cg, const char *name, const IrValue *src, CgVal *dst);

#endif
