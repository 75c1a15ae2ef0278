/*
** This file contains the differential tests of max_pool2d_grad's lowering
** (backend/cg_pool.c) against the reference interpreter (ir/interp_nn.c),
** at 1 and 2 threads (ops_harness.h; a parallel threshold of 64, so the
** rows split between the threads, in places through the middle of a
** window).  Both kernel forms: disjoint windows (stride = kernel,
** dilation 1: straight-line taps inside, checked taps at the padding, the
** thread split and kernels of more than 16 taps, zeros where no window
** reaches; f32 rows of unit stride as masked vectors, kernel widths 1 to
** 4) and the gather (overlapping windows, stride > kernel,
** dilation, a window entirely in the padding).  Odd sizes, rank 3 and 4,
** a strided (transposed) x, f16/bf16/f64, and ties: x drawn from {0, 1, 2}
** (equal maxima in most windows), and log(x - 1), which adds -inf ties
** and NaN windows (no gradient).  Results must match to rounding (the
** gather sums in f32 where the interpreter sums in f64).
*/
#include "ops_harness.h"

#define POOL {.lo = -2, .hi = 2, .rtol = 1e-5, .atol = 1e-6}

/* Random floats: a unique maximum in almost every window. */
static const char disjoint_nnir[] =
    "module @t\n"
    "func @disjoint(%a: f32[2,3,9,11], %da: f32[2,3,4,5], %b: f32[2,3,7,5], "
    "%db: f32[2,3,4,2], %c: f32[2,2,10,10], %dc: f32[2,2,4,4], %e: f32[1,1,9,10], "
    "%de: f32[1,1,4,5], %f: f32[3,9,7], %df: f32[3,4,3], %g: f32[2,2,17,23], "
    "%dg: f32[2,2,3,4], %h: f32[2,2,5,8], %dh: f32[2,2,5,4], %i: f32[1,2,8,8], "
    "%di: f32[1,2,5,5], %j: f32[2,2,11,9], %dj: f32[2,2,4,5], %k: f32[1,2,6,5], "
    "%dk: f32[1,2,3,5], %l: f32[1,2,3,17], %dl: f32[1,2,3,4]) -> "
    "(a: f32[2,3,9,11], b: f32[2,3,7,5], c: f32[2,2,10,10], e: f32[1,1,9,10], "
    "f: f32[3,9,7], g: f32[2,2,17,23], h: f32[2,2,5,8], i: f32[1,2,8,8], "
    "j: f32[2,2,9,11], k: f32[1,2,6,5], l: f32[1,2,3,17]) {\n"
    "  %0 = max_pool2d_grad %a, %da {kernel = [2, 2]} : f32[2,3,9,11]\n"
    "  %1 = max_pool2d_grad %b, %db {kernel = [2, 3], padding = [1, 1]} : f32[2,3,7,5]\n"
    "  %2 = max_pool2d_grad %c, %dc {kernel = 3, padding = 1} : f32[2,2,10,10]\n"
    "  %3 = max_pool2d_grad %e, %de {kernel = 2, stride = 2} : f32[1,1,9,10]\n"
    "  %4 = max_pool2d_grad %f, %df {kernel = 2} : f32[3,9,7]\n"
    "  %5 = max_pool2d_grad %g, %dg {kernel = 5} : f32[2,2,17,23]\n"
    "  %6 = max_pool2d_grad %h, %dh {kernel = [1, 2]} : f32[2,2,5,8]\n"
    "  %7 = max_pool2d_grad %i, %di {kernel = 2, padding = 1} : f32[1,2,8,8]\n"
    "  %8 = transpose %j {perm = [0, 1, 3, 2]} : f32[2,2,9,11]\n"
    "  %9 = max_pool2d_grad %8, %dj {kernel = 2} : f32[2,2,9,11]\n"
    "  %10 = max_pool2d_grad %k, %dk {kernel = [2, 1]} : f32[1,2,6,5]\n"
    "  %11 = max_pool2d_grad %l, %dl {kernel = [1, 4]} : f32[1,2,3,17]\n"
    "  return %0, %1, %2, %3, %4, %5, %6, %7, %9, %10, %11\n"
    "}\n";

static const char gather_nnir[] =
    "module @t\n"
    "func @gather(%a: f32[2,3,9,8], %da: f32[2,3,5,4], %b: f32[2,2,7,6], "
    "%db: f32[2,2,7,6], %c: f32[2,2,6,9], %dc: f32[2,2,5,4], %e: f32[2,2,10,11], "
    "%de: f32[2,2,3,4], %f: f32[2,2,9,7], %df: f32[2,2,4,3], %g: f32[1,2,8,7], "
    "%dg: f32[1,2,6,5], %h: f32[1,2,1,5], %dh: f32[1,2,1,5], %i: f32[3,8,9], "
    "%di: f32[3,3,4]) -> (a: f32[2,3,9,8], b: f32[2,2,7,6], c: f32[2,2,6,9], "
    "e: f32[2,2,10,11], f: f32[2,2,9,7], g: f32[1,2,8,7], h: f32[1,2,1,5], "
    "i: f32[3,8,9]) {\n"
    "  %0 = max_pool2d_grad %a, %da {kernel = 3, padding = 1, stride = 2} : f32[2,3,9,8]\n"
    "  %1 = max_pool2d_grad %b, %db {kernel = 3, padding = 1, stride = 1} : f32[2,2,7,6]\n"
    "  %2 = max_pool2d_grad %c, %dc {kernel = [2, 3], stride = [1, 2]} : f32[2,2,6,9]\n"
    "  %3 = max_pool2d_grad %e, %de {kernel = 2, stride = 3} : f32[2,2,10,11]\n"
    "  %4 = max_pool2d_grad %f, %df {dilation = 2, kernel = 2, stride = 2} : f32[2,2,9,7]\n"
    "  %5 = max_pool2d_grad %g, %dg {dilation = 2, kernel = 3, padding = 1, stride = 1} : f32[1,2,8,7]\n"
    "  %6 = max_pool2d_grad %h, %dh {dilation = [2, 1], kernel = [2, 1], padding = [1, 0], "
    "stride = 1} : f32[1,2,1,5]\n"
    "  %7 = max_pool2d_grad %i, %di {kernel = 2, padding = [1, 0], stride = [3, 2]} : f32[3,8,9]\n"
    "  return %0, %1, %2, %3, %4, %5, %6, %7\n"
    "}\n";

/* Ties: integer x in [0, 3) as floats; log(x - 1) is NaN, -inf or 0. */
static const char ties_nnir[] =
    "module @t\n"
    "func @ties(%a: i32[2,3,9,11], %da: f32[2,3,4,5], %b: i32[2,3,7,5], %db: f32[2,3,4,2], "
    "%c: i32[2,2,9,8], %dc: f32[2,2,5,4], %e: i32[2,2,10,11], %de: f32[2,2,3,4], "
    "%f: i32[2,2,17,23], %df: f32[2,2,3,4]) -> (a: f32[2,3,9,11], b: f32[2,3,7,5], "
    "c: f32[2,2,9,8], e: f32[2,2,10,11], f: f32[2,2,17,23], la: f32[2,3,9,11], "
    "lb: f32[2,3,7,5], lc: f32[2,2,9,8], le: f32[2,2,10,11], lf: f32[2,2,17,23]) {\n"
    "  %a1 = cast %a : f32[2,3,9,11]\n"
    "  %b1 = cast %b : f32[2,3,7,5]\n"
    "  %c1 = cast %c : f32[2,2,9,8]\n"
    "  %e1 = cast %e : f32[2,2,10,11]\n"
    "  %f1 = cast %f : f32[2,2,17,23]\n"
    "  %0 = max_pool2d_grad %a1, %da {kernel = 2} : f32[2,3,9,11]\n"
    "  %1 = max_pool2d_grad %b1, %db {kernel = [2, 3], padding = [1, 1]} : f32[2,3,7,5]\n"
    "  %2 = max_pool2d_grad %c1, %dc {kernel = 3, padding = 1, stride = 2} : f32[2,2,9,8]\n"
    "  %3 = max_pool2d_grad %e1, %de {kernel = 2, stride = 3} : f32[2,2,10,11]\n"
    "  %4 = max_pool2d_grad %f1, %df {kernel = 5} : f32[2,2,17,23]\n"
    "  %one = constant {value = 1.0} : f32[]\n"
    "  %a2 = sub %a1, %one : f32[2,3,9,11]\n"
    "  %a3 = log %a2 : f32[2,3,9,11]\n"
    "  %b2 = sub %b1, %one : f32[2,3,7,5]\n"
    "  %b3 = log %b2 : f32[2,3,7,5]\n"
    "  %c2 = sub %c1, %one : f32[2,2,9,8]\n"
    "  %c3 = log %c2 : f32[2,2,9,8]\n"
    "  %e2 = sub %e1, %one : f32[2,2,10,11]\n"
    "  %e3 = log %e2 : f32[2,2,10,11]\n"
    "  %f2 = sub %f1, %one : f32[2,2,17,23]\n"
    "  %f3 = log %f2 : f32[2,2,17,23]\n"
    "  %5 = max_pool2d_grad %a3, %da {kernel = 2} : f32[2,3,9,11]\n"
    "  %6 = max_pool2d_grad %b3, %db {kernel = [2, 3], padding = [1, 1]} : f32[2,3,7,5]\n"
    "  %7 = max_pool2d_grad %c3, %dc {kernel = 3, padding = 1, stride = 2} : f32[2,2,9,8]\n"
    "  %8 = max_pool2d_grad %e3, %de {kernel = 2, stride = 3} : f32[2,2,10,11]\n"
    "  %9 = max_pool2d_grad %f3, %df {kernel = 5} : f32[2,2,17,23]\n"
    "  return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9\n"
    "}\n";

/* Other float dtypes, both forms (ties through the cast). */
static const char dtypes_nnir[] =
    "module @t\n"
    "func @dtypes(%a: i32[2,3,9,11], %da: f16[2,3,4,5], %db: bf16[2,3,4,5], "
    "%dd: f64[2,3,4,5], %c: f64[2,3,9,8], %dc: f64[2,3,5,4], %h: f16[2,3,9,8], "
    "%dh: f16[2,3,5,4]) -> (a: f16[2,3,9,11], b: bf16[2,3,9,11], d: f64[2,3,9,11], "
    "c: f64[2,3,9,8], h: f16[2,3,9,8]) {\n"
    "  %a16 = cast %a : f16[2,3,9,11]\n"
    "  %ab = cast %a : bf16[2,3,9,11]\n"
    "  %a64 = cast %a : f64[2,3,9,11]\n"
    "  %0 = max_pool2d_grad %a16, %da {kernel = 2} : f16[2,3,9,11]\n"
    "  %1 = max_pool2d_grad %ab, %db {kernel = 2} : bf16[2,3,9,11]\n"
    "  %2 = max_pool2d_grad %a64, %dd {kernel = 2} : f64[2,3,9,11]\n"
    "  %3 = max_pool2d_grad %c, %dc {kernel = 3, padding = 1, stride = 2} : f64[2,3,9,8]\n"
    "  %4 = max_pool2d_grad %h, %dh {kernel = 3, padding = 1, stride = 2} : f16[2,3,9,8]\n"
    "  return %0, %1, %2, %3, %4\n"
    "}\n";

static void test_pool_grad_disjoint(void **state) {
  (void)state;
  Spec sp = POOL;
  check_module(disjoint_nnir, &sp);
  sp.par = 1 << 30; /* one call over all rows */
  check_module(disjoint_nnir, &sp);
}

static void test_pool_grad_gather(void **state) {
  (void)state;
  Spec sp = POOL;
  check_module(gather_nnir, &sp);
}

static void test_pool_grad_ties(void **state) {
  (void)state;
  Spec sp = POOL;
  sp.ihi = 3;
  check_module(ties_nnir, &sp);
  check_module(dtypes_nnir, &sp);
}

/* dy must have max_pool2d's result shape: the verifier rejects others. */
static void test_pool_grad_shape_rule(void **state) {
  (void)state;
  static const char *const bad[] = {
      "func @f(%x: f32[1,2,8,8], %d: f32[1,2,4,3]) -> (a: f32[1,2,8,8]) {\n"
      "  %0 = max_pool2d_grad %x, %d {kernel = 2} : f32[1,2,8,8]\n  return %0\n}\n",
      "func @f(%x: f32[1,2,8,8], %d: f16[1,2,4,4]) -> (a: f32[1,2,8,8]) {\n"
      "  %0 = max_pool2d_grad %x, %d {kernel = 2} : f32[1,2,8,8]\n  return %0\n}\n",
      "func @f(%x: i32[1,2,8,8], %d: i32[1,2,4,4]) -> (a: i32[1,2,8,8]) {\n"
      "  %0 = max_pool2d_grad %x, %d {kernel = 2} : i32[1,2,8,8]\n  return %0\n}\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    Arena *a = arena_new();
    const char *err = NULL;
    IrModule *m = ir_parse("t.nnir", bad[i], strlen(bad[i]), a, &err);
    assert_null(m);
    assert_non_null(err);
    arena_free(a);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pool_grad_disjoint),
      cmocka_unit_test(test_pool_grad_gather),
      cmocka_unit_test(test_pool_grad_ties),
      cmocka_unit_test(test_pool_grad_shape_rule),
  };
  return cmocka_run_group_tests(tests, harness_setup, NULL);
}
