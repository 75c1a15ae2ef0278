/*
** This file contains the pass manager: the registry generated from
** passes.def, the one signature every pass has, and the pipeline runner
** that verifies the IR after each pass and prints it on --print-after.
*/
#ifndef NNC_PASS_H
#define NNC_PASS_H

#include <stdbool.h>
#include <stdio.h>

#include "../ir/arena.h"
#include "../ir/diag.h"
#include "../ir/ir.h"

typedef struct PassOpts {
  const char *print_after; /* pass name, "all", or NULL */
  bool verify;             /* run ir_verify after every pass */
  bool print_locs;
  FILE *dump;              /* where --print-after goes (stdout) */
} PassOpts;

typedef struct PassCtx {
  Arena *scratch;          /* reset after every pass */
  Diag *diag;
  const PassOpts *opt;
} PassCtx;

/* false = failed; diagnostics already emitted. */
typedef bool PassFn(IrModule *m, PassCtx *cx);

typedef struct PassInfo {
  const char *name;        /* CLI name, e.g. "canonicalize" */
  PassFn *fn;
  const char *summary;
} PassInfo;

#define PASS(id, name, summary) bool pass_##id(IrModule *m, PassCtx *cx);
#include "passes.def"
#undef PASS

extern const PassInfo pass_table[];
extern const int pass_count;
const PassInfo *pass_lookup(const char *name);

/* The default pipeline, comma separated. */
extern const char *const pass_default_pipeline;

/* Run the comma-separated list of pass names over m.  Unknown names are
** reported to cx->diag.  Returns false when a pass fails or the verifier
** rejects its output ("internal error after pass 'X'" with the IR dump). */
bool pass_run_pipeline(IrModule *m, const char *list, PassCtx *cx);

#endif
