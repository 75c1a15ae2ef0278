/*
** This file contains the unit tests of the memplan pass
** (passes/memplan.c): on the IR of every example, after canonicalize and
** memplan, no two results that are live at the same time share a byte,
** every non-returned result is placed, offsets are aligned, and the arena
** is smaller than the sum of the buffers (memory is reused); a corrupted
** plan is caught by the checker.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "../../ir/arena.h"
#include "../../ir/diag.h"
#include "../../ir/ir.h"
#include "../../frontend/frontend.h"
#include "../../passes/memplan.h"
#include "../../passes/pass.h"

#ifndef NNC_SOURCE_DIR
#define NNC_SOURCE_DIR "."
#endif

static int arena_setup(void **state) {
  *state = arena_new();
  return 0;
}

static int arena_teardown(void **state) {
  arena_free(*state);
  return 0;
}

static bool run_passes(IrModule *m, const char *list) {
  Arena *scratch = arena_new();
  Diag *d = diag_new(stderr);
  PassOpts po = {.verify = true};
  PassCtx cx = {.scratch = scratch, .diag = d, .opt = &po};
  bool ok = pass_run_pipeline(m, list, &cx);
  diag_free(d);
  arena_free(scratch);
  return ok;
}

/* Sum of the buffer sizes of b's non-returned results. */
static int64_t sum_bytes(const IrBlock *b) {
  int64_t s = 0;
  for (const IrNode *n = b->first; n; n = n->next) {
    const IrAttr *at = ir_attr_get(&n->attrs, MEMPLAN_ATTR);
    for (int r = 0; at && r < n->nres; r++)
      if (at->ints[r] >= 0) s += memplan_value_bytes(&n->res[r]->type);
    if (n->body) s += sum_bytes(n->body);
  }
  return s;
}

/* Plan every function of one example and check the plan. */
static int check_file(Arena *a, const char *file, int *reused) {
  const char *path = arena_printf(a, "%s/examples/%s", NNC_SOURCE_DIR, file);
  const char *inc[] = {NNC_SOURCE_DIR "/std"};
  FrontendOpts fo = {.incdirs = inc, .nincdirs = 1};
  Diag *d = diag_new(stderr);
  IrModule *m = frontend_compile(d, path, &fo);
  diag_free(d);
  if (!m) fail_msg("%s does not compile", file);
  assert_int_equal(memplan_func_bytes(m->funcs), -1); /* not planned yet */
  assert_true(run_passes(m, "canonicalize,memplan"));
  int nf = 0;
  for (IrFunc *f = m->funcs; f; f = f->next, nf++) {
    Arena *s = arena_new();
    const char *err = NULL;
    if (!memplan_check(m, f, s, &err)) fail_msg("%s @%s: %s", file, f->name, err);
    arena_free(s);
    int64_t top = memplan_func_bytes(f), sum = sum_bytes(f->body);
    assert_true(top >= 0 && top <= sum);
    if (top < sum) (*reused)++;
  }
  assert_true(memplan_module_bytes(m) >= 0);
  ir_module_free(m);
  return nf;
}

static void test_memplan_examples_sound(void **state) {
  Arena *a = *state;
  DIR *dp = opendir(NNC_SOURCE_DIR "/examples");
  assert_non_null(dp);
  int nfiles = 0, nfuncs = 0, reused = 0;
  for (struct dirent *e; (e = readdir(dp));) {
    size_t n = strlen(e->d_name);
    if (n < 4 || strcmp(e->d_name + n - 3, ".nn") != 0) continue;
    nfuncs += check_file(a, arena_strdup(a, e->d_name), &reused);
    nfiles++;
  }
  closedir(dp);
  assert_true(nfiles >= 8);
  assert_true(nfuncs >= 20);
  assert_true(reused >= nfuncs / 2);
}

static IrModule *parse(Arena *a, const char *text) {
  const char *err = NULL;
  IrModule *m = ir_parse("t.nnir", text, strlen(text), a, &err);
  if (!m) fail_msg("%s", err ? err : "parse failed");
  return m;
}

/* The checker is not a tautology: two live values at one offset fail. */
static void test_memplan_check_catches_overlap(void **state) {
  Arena *a = *state;
  const char *text =
      "func @f(%x: f32[16]) -> (y: f32[16]) {\n"
      "  %0 = exp %x {mem_offset = [0]} : f32[16]\n"
      "  %1 = neg %x {mem_offset = [0]} : f32[16]\n"
      "  %2 = add %0, %1 {mem_offset = [-1]} : f32[16]\n"
      "  return %2\n"
      "}\n";
  IrModule *m = parse(a, text);
  const char *err = NULL;
  assert_false(memplan_check(m, m->funcs, a, &err));
  assert_non_null(strstr(err, "overlap"));
  assert_int_equal(memplan_func_bytes(m->funcs), 64);
  /* The pass repairs it. */
  assert_true(run_passes(m, "memplan"));
  assert_true(memplan_check(m, m->funcs, a, &err));
  assert_int_equal(memplan_func_bytes(m->funcs), 128);
  ir_module_free(m);
}

/* Misaligned and missing offsets are rejected. */
static void test_memplan_check_alignment(void **state) {
  Arena *a = *state;
  const char *text =
      "func @f(%x: f32[16]) -> (y: f32[16]) {\n"
      "  %0 = exp %x {mem_offset = [8]} : f32[16]\n"
      "  %1 = neg %0 {mem_offset = [-1]} : f32[16]\n"
      "  return %1\n"
      "}\n";
  IrModule *m = parse(a, text);
  const char *err = NULL;
  assert_false(memplan_check(m, m->funcs, a, &err));
  assert_non_null(strstr(err, "aligned"));
  ir_module_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_memplan_examples_sound, arena_setup,
                                      arena_teardown),
      cmocka_unit_test_setup_teardown(test_memplan_check_catches_overlap,
                                      arena_setup, arena_teardown),
      cmocka_unit_test_setup_teardown(test_memplan_check_alignment,
                                      arena_setup, arena_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
