/*
** This file contains the fixture the frontend's unit tests share
** (test_sema.c, test_lower.c): compile .nn text from a string through
** frontend_compile in a temporary folder, collect the diagnostics, and a few
** helpers to look at the resulting module.  Include it after cmocka.h.
*/
#ifndef NNC_TEST_FRONTEND_FIXTURE_H
#define NNC_TEST_FRONTEND_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend.h"

/* Test fixture: compile .nn text through frontend_compile. */
typedef struct Fx {
  Arena *a;
  FILE *f;
  Diag *d;
  IrModule *m;
  char dir[64];
  char path[128];
} Fx;

static int fx_setup(void **state) {
  Arena *a = arena_new();
  Fx *fx = ARENA_NEW(a, Fx);
  fx->a = a;
  snprintf(fx->dir, sizeof fx->dir, "/tmp/nnc_sema_XXXXXX");
  if (!mkdtemp(fx->dir)) return -1;
  snprintf(fx->path, sizeof fx->path, "%s/t.nn", fx->dir);
  *state = fx;
  return 0;
}

static void fx_reset(Fx *fx) {
  if (fx->m) ir_module_free(fx->m);
  fx->m = NULL;
  if (fx->d) diag_free(fx->d);
  if (fx->f) fclose(fx->f);
  fx->d = NULL;
  fx->f = NULL;
}

static int fx_teardown(void **state) {
  Fx *fx = *state;
  fx_reset(fx);
  remove(fx->path);
  char sub[160];
  snprintf(sub, sizeof sub, "%s/lib.nn", fx->dir);
  remove(sub);
  rmdir(fx->dir);
  arena_free(fx->a);
  return 0;
}

static void fx_write(Fx *fx, const char *name, const char *text) {
  char p[160];
  snprintf(p, sizeof p, "%s/%s", fx->dir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* Compile text as t.nn with the given -D definitions; NULL on errors. */
static IrModule *fx_compile_d(Fx *fx, const char *text, const char **defs,
                              int ndefs) {
  fx_reset(fx);
  fx->f = tmpfile();
  assert_non_null(fx->f);
  fx->d = diag_new(fx->f);
  fx_write(fx, "t.nn", text);
  const char *inc[] = {NNC_SOURCE_DIR "/std"};
  FrontendOpts o = {0};
  o.incdirs = inc;
  o.nincdirs = 1;
  o.defines = defs;
  o.ndefines = ndefs;
  fx->m = frontend_compile(fx->d, fx->path, &o);
  /* what the frontend produces must satisfy the IR's invariants */
  if (fx->m && !ir_verify(fx->m, stderr)) fail_msg("ir_verify failed");
  return fx->m;
}

static IrModule *fx_compile(Fx *fx, const char *text) {
  return fx_compile_d(fx, text, NULL, 0);
}

/* Everything the Diag printed so far. */
static const char *fx_errors(Fx *fx) {
  fflush(fx->f);
  long n = ftell(fx->f);
  char *buf = arena_alloc(fx->a, (size_t)n + 1, 1);
  rewind(fx->f);
  size_t r = fread(buf, 1, (size_t)n, fx->f);
  buf[r] = 0;
  return buf;
}

static const char *fx_type(Fx *fx, const IrType *t) {
  return ir_type_str(fx->a, fx->m, t);
}

/* The type of result `name` of function `fn`, as text. */
static const char *ret_type(Fx *fx, const char *fn, const char *name) {
  IrFunc *f = ir_func_find(fx->m, fn);
  if (!f) return "<no function>";
  for (int i = 0; i < f->body->nrets; i++)
    if (!strcmp(f->ret_names[i], name))
      return fx_type(fx, &f->body->rets[i]->type);
  return "<no result>";
}

static const char *global_type(Fx *fx, const char *name) {
  IrGlobal *g = ir_global_find(fx->m, name);
  return g ? fx_type(fx, &g->type) : "<no global>";
}

static int count_op(IrBlock *b, IrOp op) {
  int n = 0;
  for (IrNode *x = b->first; x; x = x->next) {
    if (x->op == op) n++;
    if (x->body) n += count_op(x->body, op);
  }
  return n;
}

#define assert_compiles(fx, text)                                       \
  do {                                                                  \
    if (!fx_compile(fx, text)) fail_msg("errors:\n%s", fx_errors(fx));  \
  } while (0)

#endif
