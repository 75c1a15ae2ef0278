/*
** This file contains the interface of the last step of the backend: from an
** IrModule to the files a user runs and links (backend/emit.c), the model
** descriptor the runtime reads (backend/descriptor.c) and the C header of
** an object file (backend/header.c).
**
**   EmitJob j;
**   emit_lower(&j, m, &opts, arena, diag);   IR -> LLVM module, descriptor,
**                                            optimised
**   emit_write(&j, EMITK_OBJ, "m.o", diag);   .o / .s / .ll
**   emit_header(&j, "m.h", diag);            the C API of m.o
**   emit_link_exe(&j, "m.o", "m", diag);     cc m.o main.c libnnrt.a ...
**   emit_free(&j);
**
** Symbols of the object, for a model (or .nnir module) named P:
**   P_<func>      one native function per IR function (backend/codegen.h)
**   P_desc        the NnrtModel constant (runtime/nnrt.h) of @forward
**   P_forward_entry  the NnrtEntryFn that P_desc.forward points at
*/
#ifndef NNC_EMIT_H
#define NNC_EMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <llvm-c/Core.h>

#include "codegen.h"
#include "diag.h"
#include "ir.h"
#include "target.h"

typedef enum EmitKind { EMITK_OBJ, EMITK_ASM, EMITK_LLVM } EmitKind;

typedef struct EmitOpts {
  const char *triple;    /* NULL: the host */
  const char *cpu;       /* NULL: the host CPU (or "generic" elsewhere) */
  int opt_level;         /* 0..3 */
  const char *runtime_dir; /* where libnnrt.a is; NULL: search (emit.c) */
  const char *cc;        /* the C compiler that links; NULL: $CC or "cc" */
  bool verbose;          /* print the link command on stderr */
} EmitOpts;

/* Sizes of a model, as the descriptor and the header state them. */
typedef struct EmitSizes {
  uint64_t arena_bytes;  /* the scratch of the largest function */
  uint64_t param_bytes;  /* the parameter block (64-aligned entries) */
  int64_t param_count;   /* scalars in parameters (states excluded) */
  int64_t flops_forward; /* estimated per call of @forward */
} EmitSizes;

typedef struct EmitJob {
  const IrModule *m;
  const IrFunc *forward; /* @forward, or the first function */
  const char *prefix;    /* C identifier prefix of every symbol */
  EmitOpts o;
  Arena *a;
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  CgTarget tgt;
  bool have_tgt;
  CgResult cg;
  EmitSizes sizes;
  uint64_t *offsets;     /* byte offset of each global (module order) */
} EmitJob;

/* Lower m into a fresh LLVM module with its descriptor, and optimise it.
** Returns false with diagnostics on failure (j is then still freed with
** emit_free). */
bool emit_lower(EmitJob *j, const IrModule *m, const EmitOpts *o, Arena *a,
                Diag *d);
/* Write the module to path ("-" is stdout for asm/llvm). */
bool emit_write(EmitJob *j, EmitKind kind, const char *path, Diag *d);
/* Link the object at obj into the executable out: a generated main that
** calls nnrt_main(&P_desc, argc, argv), libnnrt.a, -fopenmp -lz -lm. */
bool emit_link_exe(EmitJob *j, const char *obj, const char *out, Diag *d);
void emit_free(EmitJob *j);

/* The folder holding libnnrt.a (see emit.c for the search), or NULL. */
const char *emit_find_runtime(const EmitOpts *o, Arena *a);

/* descriptor.c: byte offsets of the globals in the parameter block
** (parameters then states, each 64-aligned), sizes, and the NnrtModel
** constant P_desc with its entry wrapper, defined in j->mod. */
void emit_layout(EmitJob *j);
bool emit_descriptor(EmitJob *j, Diag *d);
/* The estimated floating-point operations of one call of f. */
int64_t emit_flops(const IrFunc *f);

/* header.c: the C header of the object (see the generated text). */
bool emit_header(EmitJob *j, const char *path, Diag *d);
void emit_header_write(EmitJob *j, FILE *out);

#endif
