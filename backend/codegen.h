/*
** This file contains the interface of the lowering of the tensor IR to LLVM
** IR (backend/codegen.c and backend/cg_*.c).
**
** For every function F of an IrModule M, cg_lower_module defines in the
** LLVM module the external function
**
**   int32_t <prefix>_<F>(void *arena, void *const *globals,
**                        void *const *inputs, void *const *outputs,
**                        uint64_t seed, uint64_t step);
**
**   arena    scratch memory of at least CgFuncInfo.arena_bytes bytes (the
**            maximum over the functions is CgResult.arena_bytes), aligned
**            to 64 bytes; its contents on entry do not matter and are
**            clobbered.  It may be NULL when arena_bytes is 0.
**   globals  one pointer per parameter/state of M, in module order.
**   inputs   one pointer per argument of F, in order.
**   outputs  one pointer per result of F, in order, each to a buffer of
**            the result's full size, written by the call.
**   seed, step  the stream of the `rand` op (IrInterpOpts.seed / .step of
**            the interpreter: same Philox4x32-10 numbers).
**   returns  0, or a CG_ERR_* code for a run-time error (a label or index
**            out of range, an integer division by zero).  Outputs are then
**            unspecified; globals are unchanged.
**
** Tensors are dense, row-major, in their dtype: f32 float, f64 double, f16
** IEEE half, bf16 bfloat16 (both computed in f32), i32/i64, u8 and bool
** one byte each (bool 0/1).  Inputs and globals are only read, except in
** the function CgOpts.inplace_func: there a result named `@X` (X a global
** of the same type) may be written straight into X's memory, where that
** is safe (every other read of X comes before the kernel that writes it,
** which reads X at the element it writes; no run-time error can be raised
** after it).  CgFuncInfo.inplace[r] says which; outputs[r] is then not
** written, and on a run-time error no global has been written.  Output
** buffers must not overlap the inputs, the globals, the arena or each
** other, nor may the arena overlap inputs or globals (kernel pointers are
** noalias); inputs may overlap each other.
** Dimension symbols take their static value (the bound of a bounded one):
** the function always works on the full static shape.
**
** Kernels: every materialised node becomes an internal function named
** k<id>_<op> (id = the node's number in the printed IR), for example
** k12_matmul or k7_fused_relu_add when elementwise producers are fused
** into it; large ones run in parallel through nnrt_parallel_for (declared
** external, defined by libnnrt).
*/
#ifndef NNC_CODEGEN_H
#define NNC_CODEGEN_H

#include <stdbool.h>
#include <stdint.h>

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "diag.h"
#include "ir.h"

/* Run-time error codes of a generated function. */
enum {
  CG_OK = 0,
  CG_ERR_RANGE = 1,   /* a label or index out of range */
  CG_ERR_INTDIV = 2,  /* integer division by zero, negative int exponent */
};

typedef struct CgOpts {
  const char *prefix;     /* symbol prefix; NULL: the module's name */
  int64_t par_threshold;  /* parallel when the work of a kernel exceeds it
                             (0: default 32768; < 0: never parallel) */
  bool no_fuse;           /* materialise every value (debugging) */
  const char *inplace_func; /* results `@X` of this function may update
                               global X in place (see above) */
} CgOpts;

typedef struct CgFuncInfo {
  const char *name;       /* the IR function's name */
  const char *symbol;     /* <prefix>_<name> */
  uint64_t arena_bytes;   /* scratch this function needs */
  bool *inplace;          /* per result: written into its global, not to
                             outputs[r] (NULL: none) */
} CgFuncInfo;

typedef struct CgResult {
  uint64_t arena_bytes;   /* maximum over the functions */
  int nfuncs;
  CgFuncInfo *funcs;      /* in module order, allocated in the given arena */
} CgResult;

/* Lower every function of m into mod (created by the caller in its
** context; the target triple and data layout are set from tm).  Strings
** and arrays of *res go in a.  Returns false with diagnostics on an
** unsupported construct (e.g. a type the backend cannot handle). */
bool cg_lower_module(const IrModule *m, LLVMModuleRef mod,
                     LLVMTargetMachineRef tm, const CgOpts *o, Arena *a,
                     CgResult *res, Diag *d);

/* Optimise mod with the new pass manager ("default<O3>" for level 3). */
bool cg_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int level,
                 Diag *d);

/* True when op has a lowering (tests walk IR_OP_COUNT). */
bool cg_has_lowering(IrOp op);

#endif
