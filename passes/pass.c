/*
** This file contains the pass manager: the registry of passes expanded from
** passes.def, the lookup by CLI name, and pass_run_pipeline(), which runs a
** comma-separated list of passes over a module.  Around each pass it resets
** the scratch arena (QBE freeall), runs the verifier when asked (QBE
** ssacheck) and prints the module after the pass on --print-after (MLIR):
**
**   ; ---- IR after canonicalize ----
**   module @m
**   ...
**
** The dump is the ordinary .nnir text, so it can be fed back to
** `nnc build -x ir`.
*/
#include "pass.h"

#include <string.h>

/* ORDER PASS: the table follows passes.def. */
const PassInfo pass_table[] = {
#define PASS(id, name, summary) {name, pass_##id, summary},
#include "passes.def"
#undef PASS
};
const int pass_count = (int)(sizeof pass_table / sizeof pass_table[0]);

const char *const pass_default_pipeline =
    "canonicalize,autodiff,optimizer,canonicalize";

/* The pass whose CLI name is name, or NULL. */
const PassInfo *pass_lookup(const char *name) {
  if (!name) return NULL;
  for (int i = 0; i < pass_count; i++)
    if (strcmp(pass_table[i].name, name) == 0) return &pass_table[i];
  return NULL;
}

/* Split list at commas into trimmed, non-empty names (in cx->scratch). */
static int split_names(Arena *a, const char *list, const char ***out) {
  int cap = 1;
  for (const char *p = list; *p; p++) cap += *p == ',';
  const char **v = ARENA_ARRAY(a, const char *, cap);
  int n = 0;
  const char *p = list;
  while (*p) {
    const char *end = strchr(p, ',');
    if (!end) end = p + strlen(p);
    const char *s = p, *e = end;
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    if (e > s) v[n++] = arena_strndup(a, s, (size_t)(e - s));
    p = *end ? end + 1 : end;
  }
  *out = v;
  return n;
}

/* The verifier rejected the module after pass `name`: a compiler bug, so
** the message is not a user diagnostic.  Prints the verifier's lines and
** the IR it rejected. */
static void report_broken(IrModule *m, const char *name, PassCtx *cx) {
  FILE *out = cx->diag && cx->diag->out ? cx->diag->out : stderr;
  fprintf(out, "nnc: internal error after pass '%s'\n", name);
  ir_verify(m, out);
  fprintf(out, "; ---- IR after %s (rejected by the verifier) ----\n", name);
  IrPrintOpts po = {.locs = cx->opt && cx->opt->print_locs};
  ir_print_module(out, m, &po);
  if (cx->diag) cx->diag->nerrors++;
}

static bool wants_dump(const PassOpts *o, const char *name) {
  return o && o->print_after &&
         (strcmp(o->print_after, "all") == 0 ||
          strcmp(o->print_after, name) == 0);
}

/* Run one registered pass with the bookkeeping around it. */
static bool run_one(IrModule *m, const PassInfo *p, PassCtx *cx) {
  arena_reset(cx->scratch);
  bool ok = p->fn(m, cx);
  arena_reset(cx->scratch);
  if (!ok) return false;
  if (cx->opt && cx->opt->verify && !ir_verify(m, NULL)) {
    report_broken(m, p->name, cx);
    return false;
  }
  if (wants_dump(cx->opt, p->name)) {
    FILE *out = cx->opt->dump ? cx->opt->dump : stdout;
    fprintf(out, "; ---- IR after %s ----\n", p->name);
    IrPrintOpts po = {.locs = cx->opt->print_locs};
    ir_print_module(out, m, &po);
  }
  return true;
}

/* Every name is checked before any pass runs, so a typo in the last name
** does not leave a half-transformed module behind. */
bool pass_run_pipeline(IrModule *m, const char *list, PassCtx *cx) {
  NNC_ASSERT(m && cx && cx->scratch && cx->diag);
  if (!list) return true;
  const char **names;
  int n = split_names(cx->scratch, list, &names);
  const PassInfo **todo = ARENA_ARRAY(cx->scratch, const PassInfo *, n + 1);
  bool ok = true;
  for (int i = 0; i < n; i++) {
    todo[i] = pass_lookup(names[i]);
    if (!todo[i]) {
      diag_error(cx->diag, (SrcLoc){0}, "unknown pass '%s' (see 'nnc passes')",
                 names[i]);
      ok = false;
    }
  }
  /* todo[] lives in scratch, which each pass resets: copy it out first. */
  const PassInfo *local[64];
  if (!ok || n > 64) {
    if (ok) diag_error(cx->diag, (SrcLoc){0}, "too many passes in one list");
    arena_reset(cx->scratch);
    return false;
  }
  memcpy(local, todo, sizeof(local[0]) * (size_t)n);
  for (int i = 0; i < n; i++)
    if (!run_one(m, local[i], cx)) return false;
  return true;
}
