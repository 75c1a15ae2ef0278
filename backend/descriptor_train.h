/*
** This file contains the interface of the training half of the model
** descriptor (backend/descriptor_train.c): the ABI 2 fields of NnrtModel
** (runtime/nnrt.h) and the entry wrappers of @train_step, @eval_step and
** @average.  backend/descriptor.c calls it while it builds P_desc.
*/
#ifndef NNC_DESCRIPTOR_TRAIN_H
#define NNC_DESCRIPTOR_TRAIN_H

#include <stdbool.h>

#include <llvm-c/Core.h>

#include "emit.h"

/* The ABI 2 tail of NnrtModel, from ntrain_inputs to steps. */
#define EMIT_TRAIN_TAIL 12

/* Defines the entry wrappers P_train_step_entry, P_eval_step_entry and
** P_average_entry (those whose IR function exists) in j->mod and sets:
** *train_step, *eval_step: the NnrtModel fields (null pointers when
** absent); tail[0 .. EMIT_TRAIN_TAIL): the constants of the ABI 2 fields.
** May raise j->sizes.arena_bytes: @train_step's `@X` results are staged
** in the arena after its own scratch and copied into the parameter block
** once the call has succeeded.  Returns false with a diagnostic on a
** module it cannot describe. */
bool emit_train_desc(EmitJob *j, LLVMValueRef *train_step,
                     LLVMValueRef *eval_step, LLVMValueRef *tail, Diag *d);

#endif
