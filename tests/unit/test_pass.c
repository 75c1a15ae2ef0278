/*
** This file contains the unit tests of the pass manager (passes/pass.c)
** and of the canonicalize pass: the registry, pipelines with unknown
** names, the verifier hook, --print-after dumps that parse back, and the
** semantics of canonicalize: every function of every .nnir case in
** tests/passes/canonicalize/ is run through the reference
** interpreter before and after the pass on seeded random inputs, and the
** outputs must agree.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../ir/arena.h"
#include "../../ir/diag.h"
#include "../../ir/ir.h"
#include "../../frontend/frontend.h"
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

/* Parse text or fail the test with the parser's message. */
static IrModule *parse(Arena *a, const char *name, const char *text) {
  const char *err = NULL;
  IrModule *m = ir_parse(name, text, strlen(text), a, &err);
  if (!m) fail_msg("%s: %s", name, err ? err : "parse failed");
  return m;
}

/* A captured stream: a temporary file, read back into the arena. */
typedef struct Capture {
  FILE *f;
} Capture;

static void cap_open(Capture *c) {
  c->f = tmpfile();
  assert_non_null(c->f);
}

static char *cap_close(Arena *a, Capture *c) {
  long n = ftell(c->f);
  assert_true(n >= 0);
  rewind(c->f);
  char *s = arena_alloc(a, (size_t)n + 1, 1);
  assert_int_equal(fread(s, 1, (size_t)n, c->f), (size_t)n);
  s[n] = '\0';
  fclose(c->f);
  return s;
}

/* The module printed to a string in arena a. */
static char *print(Arena *a, const IrModule *m) {
  Capture c;
  cap_open(&c);
  IrPrintOpts po = {0};
  ir_print_module(c.f, m, &po);
  return cap_close(a, &c);
}

static const char simple_ir[] =
    "func @f(%x: f32[4]) -> (y: f32[4]) {\n"
    "  %0 = constant {value = 2.0} : f32[]\n"
    "  %1 = constant {value = 3.0} : f32[]\n"
    "  %2 = mul %0, %1 : f32[]\n"
    "  %3 = mul %x, %2 : f32[4]\n"
    "  %4 = exp %x : f32[4]\n"
    "  return %3\n"
    "}\n";

/* ------------------------------------------------------------- registry */

static void test_pass_lookup_registry(void **state) {
  (void)state;
  assert_true(pass_count >= 1);
  const PassInfo *p = pass_lookup("canonicalize");
  assert_non_null(p);
  assert_ptr_equal(p->fn, pass_canonicalize);
  assert_null(pass_lookup("canonicalise"));
  assert_null(pass_lookup(""));
  assert_null(pass_lookup(NULL));
  for (int i = 0; i < pass_count; i++) {
    assert_true(strlen(pass_table[i].summary) > 0);
    assert_ptr_equal(pass_lookup(pass_table[i].name), &pass_table[i]);
    for (int j = 0; j < i; j++)
      assert_string_not_equal(pass_table[i].name, pass_table[j].name);
  }
}

/* Every name of the default pipeline is registered. */
static void test_pass_default_pipeline_resolves(void **state) {
  Arena *a = *state;
  char *list = arena_strdup(a, pass_default_pipeline), *save = NULL;
  int n = 0;
  for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    assert_non_null(pass_lookup(t));
    n++;
  }
  assert_true(n >= 1);
}

/* ------------------------------------------------------------- pipeline */

typedef struct Run {
  Arena *scratch;
  Diag *diag;
  Capture err, dump;
  PassOpts opt;
  PassCtx cx;
} Run;

static void run_open(Run *r, const char *print_after) {
  memset(r, 0, sizeof *r);
  cap_open(&r->err);
  cap_open(&r->dump);
  r->scratch = arena_new();
  r->diag = diag_new(r->err.f);
  r->opt = (PassOpts){.print_after = print_after, .verify = true,
                      .dump = r->dump.f};
  r->cx = (PassCtx){.scratch = r->scratch, .diag = r->diag, .opt = &r->opt};
}

static void run_close(Arena *a, Run *r, char **err, char **dump) {
  fflush(r->err.f);
  diag_free(r->diag);
  arena_free(r->scratch);
  *err = cap_close(a, &r->err);
  *dump = cap_close(a, &r->dump);
}

/* An unknown name fails the pipeline before any pass touches the module. */
static void test_pass_pipeline_unknown(void **state) {
  Arena *a = *state;
  IrModule *m = parse(a, "t.nnir", simple_ir);
  char *before = print(a, m), *err, *dump;
  Run r;
  run_open(&r, NULL);
  assert_false(pass_run_pipeline(m, "canonicalize, bogus", &r.cx));
  int nerr = r.diag->nerrors;
  run_close(a, &r, &err, &dump);
  assert_int_equal(nerr, 1);
  assert_non_null(strstr(err, "unknown pass 'bogus' (see 'nnc passes')"));
  assert_string_equal(before, print(a, m));
  ir_module_free(m);
}

/* Empty items are skipped; an empty list runs nothing. */
static void test_pass_pipeline_empty(void **state) {
  Arena *a = *state;
  IrModule *m = parse(a, "t.nnir", simple_ir);
  char *before = print(a, m), *err, *dump;
  Run r;
  run_open(&r, "all");
  assert_true(pass_run_pipeline(m, "", &r.cx));
  assert_true(pass_run_pipeline(m, " , ,", &r.cx));
  run_close(a, &r, &err, &dump);
  assert_string_equal(err, "");
  assert_string_equal(dump, "");
  assert_string_equal(before, print(a, m));
  ir_module_free(m);
}

/* --print-after: the header, then text that parses back to the module. */
static void test_pass_print_after_parses(void **state) {
  Arena *a = *state;
  IrModule *m = parse(a, "t.nnir", simple_ir);
  char *err, *dump;
  Run r;
  run_open(&r, "canonicalize");
  assert_true(pass_run_pipeline(m, "canonicalize", &r.cx));
  run_close(a, &r, &err, &dump);
  assert_string_equal(err, "");
  const char *hdr = "; ---- IR after canonicalize ----\n";
  assert_memory_equal(dump, hdr, strlen(hdr));
  assert_string_equal(dump + strlen(hdr), print(a, m));
  IrModule *back = parse(a, "dump.nnir", dump);
  assert_true(ir_verify(back, stderr));
  assert_string_equal(print(a, back), print(a, m));
  /* The pass did its work: the mul of constants folded, exp is dead. */
  assert_null(strstr(dump, "exp"));
  assert_non_null(strstr(dump, "value = 6.0"));
  ir_module_free(back);
  ir_module_free(m);
}

static int count_of(const char *s, const char *sub) {
  int n = 0;
  for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub)) n++;
  return n;
}

/* "all" dumps after every pass; a name dumps after that pass only. */
static void test_pass_print_after_all(void **state) {
  Arena *a = *state;
  IrModule *m = parse(a, "t.nnir", simple_ir);
  char *err, *dump;
  Run r;
  run_open(&r, "all");
  assert_true(pass_run_pipeline(m, "canonicalize,canonicalize", &r.cx));
  run_close(a, &r, &err, &dump);
  assert_int_equal(count_of(dump, "; ---- IR after canonicalize ----\n"), 2);
  ir_module_free(m);
}

/* A module the verifier rejects after a pass is an internal error with the
** verifier's lines and the dump. */
static void test_pass_verify_after_pass(void **state) {
  Arena *a = *state;
  IrModule *m = parse(a, "t.nnir",
                      "func @f(%x: f32[4]) -> (y: f32[4]) {\n"
                      "  %0 = exp %x : f32[4]\n"
                      "  return %0\n"
                      "}\n");
  /* Break the module behind the verifier's back. */
  IrValue *v = m->funcs->body->first->res[0];
  v->type.dim[0] = 5;
  char *err, *dump;
  Run r;
  run_open(&r, NULL);
  assert_false(pass_run_pipeline(m, "canonicalize", &r.cx));
  run_close(a, &r, &err, &dump);
  assert_non_null(strstr(err, "nnc: internal error after pass 'canonicalize'\n"));
  assert_non_null(strstr(err, "func @f"));
  ir_module_free(m);
}

/* ------------------------------------------------------------ semantics */

/* A 64-bit LCG (Knuth MMIX): the same inputs on every run. */
static double rnd(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(*s >> 11) / 9007199254740992.0;
}

static double elem_get(const IrTensor *t, int64_t i) {
  switch (t->type.dtype) {
  case DT_F64: return ((double *)t->data)[i];
  case DT_I32: return ((int32_t *)t->data)[i];
  case DT_I64: return (double)((int64_t *)t->data)[i];
  case DT_U8: case DT_BOOL: return ((uint8_t *)t->data)[i];
  default: return ((float *)t->data)[i];
  }
}

static void elem_set(IrTensor *t, int64_t i, double x) {
  switch (t->type.dtype) {
  case DT_F64: ((double *)t->data)[i] = x; break;
  case DT_I32: ((int32_t *)t->data)[i] = (int32_t)x; break;
  case DT_I64: ((int64_t *)t->data)[i] = (int64_t)x; break;
  case DT_U8: case DT_BOOL: ((uint8_t *)t->data)[i] = (uint8_t)x; break;
  default: ((float *)t->data)[i] = (float)x; break;
  }
}

/* A random tensor of type t: floats in [-2, 2), ints 0 or 1 (valid labels
** and indices for any class count), bools. */
static IrTensor random_tensor(Arena *a, IrType t, uint64_t *seed) {
  IrTensor x = {t, NULL};
  int64_t n = ir_type_numel(&t);
  x.data = arena_zalloc(a, (size_t)(n ? n : 1) * 8, 16);
  for (int64_t i = 0; i < n; i++) {
    double r = rnd(seed);
    if (ir_dtype_is_float(t.dtype)) elem_set(&x, i, 4 * r - 2);
    else if (t.dtype == DT_BOOL) elem_set(&x, i, r < 0.5);
    else elem_set(&x, i, floor(2 * r));
  }
  return x;
}

static bool close_enough(double x, double y) {
  if (isnan(x) || isnan(y)) return isnan(x) && isnan(y);
  if (isinf(x) || isinf(y)) return x == y;
  return fabs(x - y) <= 1e-5 + 1e-5 * fabs(y);
}

/* Run f0 (of m0) and f1 (of m1) on the same random inputs; fail on any
** difference. */
static void compare_funcs(Arena *a, const char *where, IrModule *m0,
                          IrFunc *f0, IrModule *m1, IrFunc *f1) {
  uint64_t seed = 12345;
  int nin = f0->body->nargs, ng = 0;
  for (IrGlobal *g = m0->globals; g; g = g->next) ng++;
  IrTensor *in = ARENA_ARRAY(a, IrTensor, nin + 1);
  IrTensor *gl = ARENA_ARRAY(a, IrTensor, ng + 1);
  for (int i = 0; i < nin; i++)
    in[i] = random_tensor(a, f0->body->args[i]->type, &seed);
  int k = 0;
  for (IrGlobal *g = m0->globals; g; g = g->next)
    gl[k++] = random_tensor(a, g->type, &seed);
  int nout = f0->body->nrets;
  assert_int_equal(nout, f1->body->nrets);
  IrTensor *o0 = ARENA_ARRAY(a, IrTensor, nout + 1);
  IrTensor *o1 = ARENA_ARRAY(a, IrTensor, nout + 1);
  IrInterpOpts io = {.seed = 7};
  const char *err = NULL;
  if (!ir_interp(m0, f0, in, gl, o0, &io, a, &err))
    fail_msg("%s: interp before: %s", where, err ? err : "?");
  if (!ir_interp(m1, f1, in, gl, o1, &io, a, &err))
    fail_msg("%s: interp after: %s", where, err ? err : "?");
  for (int r = 0; r < nout; r++) {
    assert_true(ir_type_eq(&o0[r].type, &o1[r].type));
    int64_t n = ir_type_numel(&o0[r].type);
    for (int64_t i = 0; i < n; i++) {
      double x = elem_get(&o0[r], i), y = elem_get(&o1[r], i);
      if (!close_enough(x, y))
        fail_msg("%s: result %d element %lld: %.9g before, %.9g after", where,
                 r, (long long)i, x, y);
    }
  }
}

/* Parse chunk twice, canonicalize one copy, compare every function. */
static int check_chunk(Arena *a, const char *name, const char *text) {
  IrModule *m0 = parse(a, name, text), *m1 = parse(a, name, text);
  Arena *scratch = arena_new();
  Diag *d = diag_new(stderr);
  PassOpts po = {.verify = true};
  PassCtx cx = {.scratch = scratch, .diag = d, .opt = &po};
  assert_true(pass_run_pipeline(m1, "canonicalize", &cx));
  /* The result is a fixed point: a second run changes nothing. */
  char *once = print(a, m1);
  assert_true(pass_run_pipeline(m1, "canonicalize", &cx));
  assert_string_equal(once, print(a, m1));
  diag_free(d);
  arena_free(scratch);
  int n = 0;
  for (IrFunc *f0 = m0->funcs; f0; f0 = f0->next) {
    IrFunc *f1 = ir_func_find(m1, f0->name);
    assert_non_null(f1);
    char *where = arena_printf(a, "%s @%s", name, f0->name);
    compare_funcs(a, where, m0, f0, m1, f1);
    n++;
  }
  ir_module_free(m0);
  ir_module_free(m1);
  return n;
}

static char *slurp(Arena *a, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = arena_alloc(a, (size_t)n + 1, 1);
  assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
  s[n] = '\0';
  fclose(f);
  return s;
}

/* Every function of every canonicalize test case computes the same before
** and after the pass. */
static void test_canonicalize_semantics(void **state) {
  Arena *a = *state;
  const char *dir = NNC_SOURCE_DIR "/tests/passes/canonicalize";
  DIR *dp = opendir(dir);
  assert_non_null(dp);
  int nfuncs = 0, nfiles = 0;
  struct dirent *e;
  while ((e = readdir(dp))) {
    size_t len = strlen(e->d_name);
    if (len < 6 || strcmp(e->d_name + len - 5, ".nnir") != 0) continue;
    char *path = arena_printf(a, "%s/%s", dir, e->d_name);
    char *text = slurp(a, path);
    nfiles++;
    /* Split at lines "; -----" as the FileCheck runner does. */
    int chunk = 0;
    for (char *p = text;; chunk++) {
      char *sep = strstr(p, "\n; -----");
      if (sep) sep[1] = '\0';
      char *name = arena_printf(a, "%s#%d", e->d_name, chunk);
      nfuncs += check_chunk(a, name, p);
      if (!sep) break;
      char *eol = strchr(sep + 2, '\n');
      if (!eol) break;
      p = eol + 1;
    }
  }
  closedir(dp);
  assert_true(nfiles >= 4);
  assert_true(nfuncs >= 20);
}

/* Compile an example (shrunk with -D) twice, canonicalize one copy, and
** compare every function of the two on random inputs and parameters. */
static int check_example(Arena *a, const char *file, const char **defs,
                         int ndefs) {
  const char *path = arena_printf(a, "%s/examples/%s", NNC_SOURCE_DIR, file);
  const char *inc[] = {NNC_SOURCE_DIR "/std"};
  FrontendOpts fo = {.incdirs = inc, .nincdirs = 1, .defines = defs,
                     .ndefines = ndefs};
  Diag *d = diag_new(stderr);
  IrModule *m0 = frontend_compile(d, path, &fo);
  IrModule *m1 = frontend_compile(d, path, &fo);
  assert_non_null(m0);
  assert_non_null(m1);
  char *before = print(a, m1);
  Arena *scratch = arena_new();
  PassOpts po = {.verify = true};
  PassCtx cx = {.scratch = scratch, .diag = d, .opt = &po};
  assert_true(pass_run_pipeline(m1, "canonicalize", &cx));
  arena_free(scratch);
  diag_free(d);
  int n = 0;
  for (IrFunc *f0 = m0->funcs; f0; f0 = f0->next, n++) {
    char *where = arena_printf(a, "%s @%s", file, f0->name);
    compare_funcs(a, where, m0, f0, m1, ir_func_find(m1, f0->name));
  }
  bool changed = strcmp(before, print(a, m1)) != 0;
  ir_module_free(m0);
  ir_module_free(m1);
  return changed ? n : -n;
}

/* Real programs: the pass changes them and they compute the same. */
static void test_canonicalize_examples(void **state) {
  Arena *a = *state;
  const char *lstm[] = {"T=5", "H=8", "E=4", "B=2"};
  const char *gpt[] = {"T=4", "D=8", "HEADS=2", "LAYERS=1", "B=2"};
  const char *unet[] = {"S=8", "B=2"};
  const char *tiny[] = {"B=3"};
  assert_true(check_example(a, "char_lstm.nn", lstm, 4) >= 3);
  assert_true(check_example(a, "char_gru.nn", lstm, 4) >= 3);
  assert_true(check_example(a, "char_gpt.nn", gpt, 5) >= 3);
  assert_true(check_example(a, "unet.nn", unet, 2) >= 3);
  assert_true(check_example(a, "mlp_tiny.nn", tiny, 1) != 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_pass_lookup_registry, arena_setup,
                                      arena_teardown),
      cmocka_unit_test_setup_teardown(test_pass_default_pipeline_resolves,
                                      arena_setup, arena_teardown),
      cmocka_unit_test_setup_teardown(test_pass_pipeline_unknown, arena_setup,
                                      arena_teardown),
      cmocka_unit_test_setup_teardown(test_pass_pipeline_empty, arena_setup,
                                      arena_teardown),
      cmocka_unit_test_setup_teardown(test_pass_print_after_parses,
                                      arena_setup, arena_teardown),
      cmocka_unit_test_setup_teardown(test_pass_print_after_all, arena_setup,
                                      arena_teardown),
      cmocka_unit_test_setup_teardown(test_pass_verify_after_pass, arena_setup,
                                      arena_teardown),
      cmocka_unit_test_setup_teardown(test_canonicalize_semantics, arena_setup,
                                      arena_teardown),
      cmocka_unit_test_setup_teardown(test_canonicalize_examples, arena_setup,
                                      arena_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
