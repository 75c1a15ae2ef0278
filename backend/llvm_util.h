/*
** This file contains the ll_* helpers: short wrappers around the LLVM C API
** for the constants, types, intrinsic calls and counted loops that the
** code generators build over and over (PostgreSQL's llvmjit_emit.h).  All
** are static inline except the ones in llvm_util.c that need more than a
** few lines.
*/
#ifndef NNC_LLVM_UTIL_H
#define NNC_LLVM_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

/* ---------------------------------------------------------------- types */

static inline LLVMTypeRef ll_i1(LLVMContextRef c) { return LLVMInt1TypeInContext(c); }
static inline LLVMTypeRef ll_i32(LLVMContextRef c) { return LLVMInt32TypeInContext(c); }
static inline LLVMTypeRef ll_i64(LLVMContextRef c) { return LLVMInt64TypeInContext(c); }
static inline LLVMTypeRef ll_f32(LLVMContextRef c) { return LLVMFloatTypeInContext(c); }
static inline LLVMTypeRef ll_ptr(LLVMContextRef c) { return LLVMPointerTypeInContext(c, 0); }
static inline LLVMTypeRef ll_void(LLVMContextRef c) { return LLVMVoidTypeInContext(c); }
static inline LLVMTypeRef ll_vf32(LLVMContextRef c, unsigned w)
{
  return LLVMVectorType(LLVMFloatTypeInContext(c), w);
}

/* ---------------------------------------------------------------- constants */

static inline LLVMValueRef ll_const_i64(LLVMContextRef c, int64_t v)
{
  return LLVMConstInt(LLVMInt64TypeInContext(c), (unsigned long long)v, true);
}
static inline LLVMValueRef ll_const_i32(LLVMContextRef c, int32_t v)
{
  return LLVMConstInt(LLVMInt32TypeInContext(c), (unsigned long long)v, true);
}
static inline LLVMValueRef ll_const_f32(LLVMContextRef c, double v)
{
  return LLVMConstReal(LLVMFloatTypeInContext(c), v);
}
static inline LLVMValueRef ll_const_i1(LLVMContextRef c, bool v)
{
  return LLVMConstInt(LLVMInt1TypeInContext(c), v, false);
}

/* ---------------------------------------------------------------- builder helpers */

static inline LLVMContextRef ll_ctx(LLVMBuilderRef b)
{
  return LLVMGetTypeContext(LLVMTypeOf(LLVMGetBasicBlockParent(LLVMGetInsertBlock(b))));
}

/* &p[i] for a float pointer p and an i64 index i. */
static inline LLVMValueRef ll_gep_f32(LLVMBuilderRef b, LLVMValueRef p,
                                      LLVMValueRef i, const char *name)
{
  LLVMContextRef c = LLVMGetTypeContext(LLVMTypeOf(p));
  return LLVMBuildInBoundsGEP2(b, ll_f32(c), p, &i, 1, name);
}

/* A load or store with an explicit alignment in bytes. */
static inline LLVMValueRef ll_load(LLVMBuilderRef b, LLVMTypeRef t, LLVMValueRef p,
                                   unsigned align, const char *name)
{
  LLVMValueRef v = LLVMBuildLoad2(b, t, p, name);
  LLVMSetAlignment(v, align);
  return v;
}
static inline LLVMValueRef ll_store(LLVMBuilderRef b, LLVMValueRef v, LLVMValueRef p,
                                    unsigned align)
{
  LLVMValueRef s = LLVMBuildStore(b, v, p);
  LLVMSetAlignment(s, align);
  return s;
}

static inline LLVMValueRef ll_smin(LLVMBuilderRef b, LLVMValueRef x, LLVMValueRef y,
                                   const char *name)
{
  return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, x, y, ""), x, y, name);
}

/* The block a builder is in; a new block appended to the current function. */
static inline LLVMBasicBlockRef ll_block_new(LLVMBuilderRef b, const char *name)
{
  LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(b));
  return LLVMAppendBasicBlockInContext(LLVMGetTypeContext(LLVMTypeOf(fn)), fn, name);
}

/* ---------------------------------------------------------------- out-of-line helpers */

/* A call to the overloaded intrinsic NAME (e.g. "llvm.fma") specialised at
** type t, with n arguments. */
LLVMValueRef ll_call_intrinsic(LLVMBuilderRef b, LLVMModuleRef mod, const char *name,
                               LLVMTypeRef t, LLVMValueRef *args, unsigned n,
                               const char *vname);

/* <w x float> with every lane equal to the float x. */
LLVMValueRef ll_splat(LLVMBuilderRef b, LLVMValueRef x, unsigned w, const char *name);

/* Adds the string attribute key=value, or an enum attribute (value NULL),
** to the function (idx LLVMAttributeFunctionIndex) or to parameter idx. */
void ll_add_attr(LLVMValueRef fn, unsigned idx, const char *key, const char *value);

/* A counted loop `for (i = start; i < end; i += step)`, i64, with the test
** at the top so that it runs zero times when start >= end:
**   LlLoop l; ll_loop_begin(b, &l, start, end, step, "i");
**   ... body, l.iv is i ...
**   ll_loop_end(b, &l);
** The builder is left after the loop. */
typedef struct LlLoop {
  LLVMValueRef iv, end, step;
  LLVMBasicBlockRef head, body, exit;
} LlLoop;
void ll_loop_begin(LLVMBuilderRef b, LlLoop *l, LLVMValueRef start, LLVMValueRef end,
                   LLVMValueRef step, const char *name);
void ll_loop_end(LLVMBuilderRef b, LlLoop *l);

/* Writes the module as an object (LLVMObjectFile) or assembly file.
** Returns false and sets *err (free with LLVMDisposeMessage) on failure. */
bool ll_emit_file(LLVMModuleRef mod, LLVMTargetMachineRef tm, const char *path,
                  LLVMCodeGenFileType kind, char **err);

/* Runs the new pass manager pipeline (e.g. "default<O3>") over mod.
** Returns false and sets *err (free with LLVMDisposeMessage) on failure. */
bool ll_run_passes(LLVMModuleRef mod, LLVMTargetMachineRef tm, const char *pipeline,
                   char **err);

#endif
