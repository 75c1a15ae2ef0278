/*
** This file contains the out-of-line ll_* helpers of llvm_util.h:
** intrinsic calls, splats, attributes, counted loops, file emission and the
** new-pass-manager pipeline.
*/
#include "llvm_util.h"

#include <string.h>

#include <llvm-c/Transforms/PassBuilder.h>

LLVMValueRef ll_call_intrinsic(LLVMBuilderRef b, LLVMModuleRef mod, const char *name,
                               LLVMTypeRef t, LLVMValueRef *args, unsigned n,
                               const char *vname)
{
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(mod, id, &t, 1);
  LLVMTypeRef fty = LLVMIntrinsicGetType(LLVMGetModuleContext(mod), id, &t, 1);
  return LLVMBuildCall2(b, fty, fn, args, n, vname);
}

LLVMValueRef ll_splat(LLVMBuilderRef b, LLVMValueRef x, unsigned w, const char *name)
{
  LLVMContextRef c = LLVMGetTypeContext(LLVMTypeOf(x));
  LLVMValueRef v = LLVMBuildInsertElement(b, LLVMGetUndef(ll_vf32(c, w)), x,
                                          ll_const_i32(c, 0), "");
  LLVMValueRef mask = LLVMConstNull(LLVMVectorType(ll_i32(c), w));
  return LLVMBuildShuffleVector(b, v, LLVMGetUndef(ll_vf32(c, w)), mask, name);
}

void ll_add_attr(LLVMValueRef fn, unsigned idx, const char *key, const char *value)
{
  LLVMContextRef c = LLVMGetTypeContext(LLVMTypeOf(fn));
  LLVMAttributeRef a;
  if (value) {
    a = LLVMCreateStringAttribute(c, key, (unsigned)strlen(key), value,
                                  (unsigned)strlen(value));
  } else {
    unsigned kind = LLVMGetEnumAttributeKindForName(key, strlen(key));
    a = LLVMCreateEnumAttribute(c, kind, 0);
  }
  LLVMAddAttributeAtIndex(fn, idx, a);
}

void ll_loop_begin(LLVMBuilderRef b, LlLoop *l, LLVMValueRef start, LLVMValueRef end,
                   LLVMValueRef step, const char *name)
{
  LLVMContextRef c = LLVMGetTypeContext(LLVMTypeOf(start));
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(b);
  l->end = end;
  l->step = step;
  l->head = ll_block_new(b, "b_head");
  l->body = ll_block_new(b, "b_body");
  l->exit = ll_block_new(b, "b_exit");
  LLVMBuildBr(b, l->head);
  LLVMPositionBuilderAtEnd(b, l->head);
  l->iv = LLVMBuildPhi(b, ll_i64(c), name);
  LLVMAddIncoming(l->iv, &start, &pre, 1);
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, l->iv, end, ""), l->body, l->exit);
  LLVMPositionBuilderAtEnd(b, l->body);
}

void ll_loop_end(LLVMBuilderRef b, LlLoop *l)
{
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(b);
  LLVMValueRef next = LLVMBuildNSWAdd(b, l->iv, l->step, "");
  LLVMAddIncoming(l->iv, &next, &latch, 1);
  LLVMBuildBr(b, l->head);
  LLVMPositionBuilderAtEnd(b, l->exit);
}

bool ll_emit_file(LLVMModuleRef mod, LLVMTargetMachineRef tm, const char *path,
                  LLVMCodeGenFileType kind, char **err)
{
  *err = NULL;
  return !LLVMTargetMachineEmitToFile(tm, mod, path, kind, err);
}

bool ll_run_passes(LLVMModuleRef mod, LLVMTargetMachineRef tm, const char *pipeline,
                   char **err)
{
  LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
  LLVMErrorRef e = LLVMRunPasses(mod, pipeline, tm, opts);
  LLVMDisposePassBuilderOptions(opts);
  *err = NULL;
  if (e) {
    char *msg = LLVMGetErrorMessage(e);
    *err = LLVMCreateMessage(msg);
    LLVMDisposeErrorMessage(msg);
    return false;
  }
  return true;
}
