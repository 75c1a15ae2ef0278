/*
** This file contains the differential tests of two parts of the lowering's
** plan (backend/cg_plan.c) that the optimiser step relies on:
**
**   multi-output fusion  a returned elementwise value that a later
**                        elementwise kernel reads at its own index is
**                        computed and stored by that kernel;
**   in-place updates     in CgOpts.inplace_func a result `@X` is written
**                        straight into global X when X's other reads all
**                        come first and the writing kernel reads X only at
**                        the element it writes (codegen.h).
**
** Each case runs through the interpreter and the generated code at 1 and 2
** threads (ops_harness.h: results written in place are read back from
** their globals, every other global must keep its bytes, and all of them
** when the step fails).  The cases that must not go in place are the ones
** whose results would be wrong if they did: a later read of the old value,
** a transposed or broadcast read in the writing kernel.
*/
#include "ops_harness.h"

#define TOL {.lo = -1, .hi = 1, .rtol = 1e-5, .atol = 1e-6, .inplace = "step"}

/* Build text, check every function, and return the in-place flags of
** function `step` (copied to flags[0..n)) and its kernel count. */
static int build_check(const char *text, Spec sp, bool *flags, int n) {
  Lib L;
  bool ok = lib_build(&L, text, &sp, false);
  if (!ok) lib_free(&L);
  assert_true(ok);
  int bad = 0, nf = 0, nk = L.nkernels;
  for (const IrFunc *f = L.m->funcs; f; f = f->next, nf++) {
    bad += check_func(&L, f, &sp, 0x51ED2701ULL + (uint64_t)nf);
    if (strcmp(f->name, "step") != 0) continue;
    const bool *ip = lib_func(&L, f)->inplace;
    for (int i = 0; i < n; i++) flags[i] = ip && ip[i];
  }
  lib_free(&L);
  assert_int_equal(bad, 0);
  return nk;
}

/* AdamW's update: both moments and the parameter in one kernel, all three
** written over their globals; odd sizes, a scalar input broadcast. */
static const char adamw_nnir[] =
    "module @t\n"
    "param @w : f32[17,33] = zeros\n"
    "state @m : f32[17,33] = zeros\n"
    "state @v : f32[17,33] = zeros\n"
    "func @step(%g: f32[17,33], %lr: f32[]) -> (@w: f32[17,33], @m: f32[17,33], "
    "@v: f32[17,33]) {\n"
    "  %0 = constant {value = 0.9} : f32[]\n"
    "  %1 = constant {value = 0.1} : f32[]\n"
    "  %2 = mul %0, @m : f32[17,33]\n"
    "  %3 = mul %1, %g : f32[17,33]\n"
    "  %4 = add %2, %3 : f32[17,33]\n"
    "  %5 = constant {value = 0.99} : f32[]\n"
    "  %6 = constant {value = 0.01} : f32[]\n"
    "  %7 = mul %5, @v : f32[17,33]\n"
    "  %8 = mul %g, %g : f32[17,33]\n"
    "  %9 = mul %6, %8 : f32[17,33]\n"
    "  %10 = add %7, %9 : f32[17,33]\n"
    "  %11 = sqrt %10 : f32[17,33]\n"
    "  %12 = constant {value = 1e-8} : f32[]\n"
    "  %13 = add %11, %12 : f32[17,33]\n"
    "  %14 = div %4, %13 : f32[17,33]\n"
    "  %15 = mul %6, @w : f32[17,33]\n"
    "  %16 = add %14, %15 : f32[17,33]\n"
    "  %17 = mul %lr, %16 : f32[17,33]\n"
    "  %18 = sub @w, %17 : f32[17,33]\n"
    "  return %18, %4, %10\n"
    "}\n";

static void test_adamw_one_kernel(void **state) {
  (void)state;
  bool ip[3];
  int nk = build_check(adamw_nnir, (Spec)TOL, ip, 3);
  assert_true(ip[0] && ip[1] && ip[2]);
  assert_int_equal(nk, 1); /* %4 and %10 stored by %18's kernel */
}

/* The same with in-place updates off: still one kernel, three outputs. */
static void test_multi_output_only(void **state) {
  (void)state;
  bool ip[3];
  Spec sp = TOL;
  sp.inplace = NULL;
  int nk = build_check(adamw_nnir, sp, ip, 3);
  assert_false(ip[0] || ip[1] || ip[2]);
  assert_int_equal(nk, 1);
  sp.no_fuse = true; /* and the plain plan agrees */
  check_module(adamw_nnir, &sp);
}

/* SGD with Nesterov momentum and weight decay: the decayed gradient %2
** has two uses, both in the update's kernel, so it is fused there too.
** %10 has uses in two kernels (%11 and the sum): it keeps its own.  %11
** reads the new @w at its own index, so it stores %9 (and %5) itself. */
static const char nesterov_nnir[] =
    "module @t\n"
    "param @w : f32[13,31] = zeros\n"
    "state @b : f32[13,31] = zeros\n"
    "func @step(%g: f32[13,31], %lr: f32[]) -> (@w: f32[13,31], @b: f32[13,31], "
    "s: f32[], t: f32[13,31]) {\n"
    "  %0 = constant {value = 0.01} : f32[]\n"
    "  %1 = mul %0, @w : f32[13,31]\n"
    "  %2 = add %g, %1 : f32[13,31]\n"
    "  %3 = constant {value = 0.9} : f32[]\n"
    "  %4 = mul %3, @b : f32[13,31]\n"
    "  %5 = add %4, %2 : f32[13,31]\n"
    "  %6 = mul %3, %5 : f32[13,31]\n"
    "  %7 = add %2, %6 : f32[13,31]\n"
    "  %8 = mul %lr, %7 : f32[13,31]\n"
    "  %9 = sub @w, %8 : f32[13,31]\n"
    "  %10 = mul %g, %g : f32[13,31]\n"
    "  %11 = add %10, %9 : f32[13,31]\n"
    "  %12 = sum %10 : f32[]\n"
    "  %13 = add %12, %12 : f32[]\n"
    "  return %9, %5, %13, %11\n"
    "}\n";

static void test_shared_value_fused(void **state) {
  (void)state;
  bool ip[4];
  int nk = build_check(nesterov_nnir, (Spec)TOL, ip, 4);
  assert_true(ip[0] && ip[1]);
  assert_int_equal(nk, 4); /* %10, %11 (storing %9 and %5), the sum, %13 */
}

/* @w's old value is read after its update (the sum): not in place.  @m's
** update reads @m transposed: not in place.  @v's reads row 0 of @v in
** every row (a broadcast slice): not in place.  @u is safe. */
static const char unsafe_nnir[] =
    "module @t\n"
    "param @w : f32[9,9] = zeros\n"
    "state @m : f32[9,9] = zeros\n"
    "state @v : f32[5,7] = zeros\n"
    "state @u : f32[5,7] = zeros\n"
    "func @step(%x: f32[9,9]) -> (@w: f32[9,9], s: f32[], @m: f32[9,9], "
    "@v: f32[5,7], @u: f32[5,7]) {\n"
    "  %0 = add @w, %x : f32[9,9]\n"
    "  %1 = sum @w : f32[]\n"
    "  %2 = transpose @m {perm = [1, 0]} : f32[9,9]\n"
    "  %3 = add @m, %2 : f32[9,9]\n"
    "  %4 = slice @v {axis = 0, start = 0, end = 1} : f32[1,7]\n"
    "  %5 = add @v, %4 : f32[5,7]\n"
    "  %6 = mul @u, @u : f32[5,7]\n"
    "  return %0, %1, %3, %5, %6\n"
    "}\n";

static void test_unsafe_not_in_place(void **state) {
  (void)state;
  bool ip[5];
  build_check(unsafe_nnir, (Spec)TOL, ip, 5);
  assert_false(ip[0]);
  assert_false(ip[2]);
  assert_false(ip[3]);
  assert_true(ip[4]);
}

/* A label out of range is found before the update: the step fails and no
** global changes (ihi 10 draws labels up to 9 for 4 classes).  With the
** labels in range the update goes in place. */
static const char labels_nnir[] =
    "module @t\n"
    "param @w : f32[6,4] = zeros\n"
    "func @step(%x: f32[6,4], %y: i32[6]) -> (loss: f32[], @w: f32[6,4]) {\n"
    "  %0 = mul %x, @w : f32[6,4]\n"
    "  %1 = cross_entropy %0, %y : f32[]\n"
    "  %2 = mul @w, %1 : f32[6,4]\n"
    "  %3 = sub @w, %2 : f32[6,4]\n"
    "  return %1, %3\n"
    "}\n";

static void test_error_leaves_globals(void **state) {
  (void)state;
  bool ip[2];
  Spec sp = TOL;
  sp.ihi = 10;
  build_check(labels_nnir, sp, ip, 2);
  assert_true(ip[1]);
  sp.ihi = 4;
  build_check(labels_nnir, sp, ip, 2);
  assert_true(ip[1]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_adamw_one_kernel),
      cmocka_unit_test(test_multi_output_only),
      cmocka_unit_test(test_shared_value_fused),
      cmocka_unit_test(test_unsafe_not_in_place),
      cmocka_unit_test(test_error_leaves_globals),
  };
  return cmocka_run_group_tests(tests, harness_setup, NULL);
}
