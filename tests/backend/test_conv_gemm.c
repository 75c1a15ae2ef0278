/*
** This file contains the differential tests of the SGEMM paths of the
** convolutions (backend/cg_vision.c) that tests/backend/test_ops.c does
** not reach: the tap form of conv1d / conv2d (conv_taps_geo: a kernel
** with more taps than the output has positions - the weight gradient
** that autodiff writes as conv2d(x [C,N,H,W], dy [O,N,OH,OW]) over
** transposed views - one SGEMM per sample n of the conv's channel axis
** into per-chunk partial sums), and the vector rows of im2col and col2im
** (stride 1 along the width: masked loads and stores, rows wider than a
** vector, padding, dilation, height strides).  Each case is compared with
** the reference interpreter at 1 and 2 threads (ops_harness.h), must be
** lowered on the path it is meant for (the kernel names: k<id>_<op>_taps
** or _gemm), and must give the same bits at 1 and 2 threads (training is
** compared bit for bit across thread counts, tests/e2e/train.sh).
*/
#include "ops_harness.h"

#define RED {.lo = -2, .hi = 2, .rtol = 1e-4, .atol = 1e-5}

/* The weight gradients of conv2d layers as autodiff writes them (operands
** transposed views, result transposed back): fashion_cnn's (padding 2,
** stride 1) at odd sizes with 3 samples (3 chunks); stride 2 (dilation 2
** in the gradient conv) with 5 samples (uneven chunks) and a crop of the
** result; one input channel and more output channels (11) than output
** positions (9).  Then dense operands: one sample and one channel (a single
** chunk: the SGEMM's own parallel loop), a bias and a stride; nine
** samples, one output channel (the weight's row stride unused); conv1d;
** and a weight whose taps are not contiguous (the direct kernel). */
static const char taps_nnir[] =
    "module @t\n"
    "func @dw(%x: f32[3,5,13,11], %dy: f32[3,7,13,11], %x2: f32[5,2,18,13], "
    "%dy2: f32[5,4,9,7], %x3: f32[6,1,12,12], %dy3: f32[6,11,10,10]) -> "
    "(w: f32[7,5,5,5], w2: f32[4,2,3,3], w3: f32[11,1,3,3]) {\n"
    "  %0 = transpose %x {perm = [1, 0, 2, 3]} : f32[5,3,13,11]\n"
    "  %1 = transpose %dy {perm = [1, 0, 2, 3]} : f32[7,3,13,11]\n"
    "  %2 = conv2d %0, %1 {padding = [2, 2]} : f32[5,7,5,5]\n"
    "  %3 = transpose %2 {perm = [1, 0, 2, 3]} : f32[7,5,5,5]\n"
    "  %4 = transpose %x2 {perm = [1, 0, 2, 3]} : f32[2,5,18,13]\n"
    "  %5 = transpose %dy2 {perm = [1, 0, 2, 3]} : f32[4,5,9,7]\n"
    "  %6 = conv2d %4, %5 {padding = [1, 1], dilation = [2, 2]} : f32[2,4,4,3]\n"
    "  %7 = slice %6 {axis = 2, start = 0, end = 3} : f32[2,4,3,3]\n"
    "  %8 = transpose %7 {perm = [1, 0, 2, 3]} : f32[4,2,3,3]\n"
    "  %9 = transpose %x3 {perm = [1, 0, 2, 3]} : f32[1,6,12,12]\n"
    "  %10 = transpose %dy3 {perm = [1, 0, 2, 3]} : f32[11,6,10,10]\n"
    "  %11 = conv2d %9, %10 : f32[1,11,3,3]\n"
    "  %12 = transpose %11 {perm = [1, 0, 2, 3]} : f32[11,1,3,3]\n"
    "  return %3, %8, %12\n"
    "}\n"
    "func @dense(%a: f32[1,1,20,20], %wa: f32[3,1,12,12], %ba: f32[3], %x: f32[2,9,6,7], "
    "%w: f32[1,9,6,5], %s: f32[3,4,40], %ws: f32[2,4,33], %bs: f32[2], "
    "%y: f32[2,2,12,10], %t: f32[3,2,7,9]) -> (a: f32[1,3,6,6], b: f32[2,1,3,5], c: f32[3,2,10], "
    "d: f32[2,3,4,4]) {\n"
    "  %0 = conv2d %a, %wa, %ba {stride = [2, 2], padding = [1, 1]} : f32[1,3,6,6]\n"
    "  %1 = conv2d %x, %w {padding = [1, 1]} : f32[2,1,3,5]\n"
    "  %2 = conv1d %s, %ws, %bs {padding = [1]} : f32[3,2,10]\n"
    "  %3 = transpose %t {perm = [0, 1, 3, 2]} : f32[3,2,9,7]\n"
    "  %4 = conv2d %y, %3 : f32[2,3,4,4]\n"
    "  return %0, %1, %2, %4\n"
    "}\n";

/* im2col (conv2d) and col2im (conv_transpose2d) rows over 37 columns
** with padding, dilation and height strides; a transposed input whose
** columns are strided takes the scalar im2col. */
static const char rows_nnir[] =
    "module @t\n"
    "func @rows(%x: f32[2,3,9,37], %w: f32[4,3,3,5], %b: f32[4], %wt: f32[3,4,3,5], "
    "%bt: f32[4], %xt: f32[2,3,37,9]) -> (a: f32[2,4,5,33], b: f32[2,4,20,41], "
    "c: f32[2,4,7,41], d: f32[2,4,5,35], e: f32[2,4,7,29]) {\n"
    "  %0 = conv2d %x, %w, %b {stride = [2, 1], padding = [1, 2], dilation = [1, 2]} "
    ": f32[2,4,5,33]\n"
    "  %1 = conv_transpose2d %x, %wt, %bt {stride = [2, 1], padding = [1, 2], "
    "dilation = [2, 2], output_padding = [1, 0]} : f32[2,4,20,41]\n"
    "  %2 = conv_transpose2d %x, %wt {padding = [2, 0]} : f32[2,4,7,41]\n"
    "  %3 = conv_transpose2d %x, %wt, %bt {padding = [3, 3]} : f32[2,4,5,35]\n"
    "  %4 = transpose %xt {perm = [0, 1, 3, 2]} : f32[2,3,9,37]\n"
    "  %5 = conv2d %4, %w {dilation = [1, 2]} : f32[2,4,7,29]\n"
    "  return %0, %1, %2, %3, %5\n"
    "}\n";

/* The orientations of the SGEMM: conv2d computing out[n]ᵀ = colᵀ · Wᵀ
** (conv_tout: 32 channels of 7×7 positions, and 17 channels of 6×6 with
** a stride, no bias), against the plain form (20 channels of 7×4: the
** tiles fit both ways equally); the tap form with Tᵀ = col · dyᵀ (taps_cost:
** 16 channels of dy against 8·5·5 rows of col) over a kernel of more than
** KC taps (20×20: im2col not written as packed A) and of fewer (9×9: col
** written as the SGEMM's packed A). */
static const char forms_nnir[] =
    "module @t\n"
    "func @fwd(%x: f32[2,8,7,7], %w: f32[32,8,5,5], %b: f32[32], %x2: f32[3,6,11,11], "
    "%w2: f32[17,6,3,3], %x3: f32[3,5,9,6], %w3: f32[20,5,3,3]) -> "
    "(a: f32[2,32,7,7], b: f32[3,17,6,6], c: f32[3,20,7,4]) {\n"
    "  %0 = conv2d %x, %w, %b {padding = [2, 2]} : f32[2,32,7,7]\n"
    "  %1 = conv2d %x2, %w2 {stride = [2, 2], padding = [1, 1]} : f32[3,17,6,6]\n"
    "  %2 = conv2d %x3, %w3 : f32[3,20,7,4]\n"
    "  return %0, %1, %2\n"
    "}\n"
    "func @dw(%x: f32[1,8,24,24], %dy: f32[1,16,20,20], %x2: f32[3,8,9,9], "
    "%dy2: f32[3,16,9,9]) -> (w: f32[16,8,5,5], w2: f32[16,8,5,5]) {\n"
    "  %0 = transpose %x {perm = [1, 0, 2, 3]} : f32[8,1,24,24]\n"
    "  %1 = transpose %dy {perm = [1, 0, 2, 3]} : f32[16,1,20,20]\n"
    "  %2 = conv2d %0, %1 : f32[8,16,5,5]\n"
    "  %3 = transpose %2 {perm = [1, 0, 2, 3]} : f32[16,8,5,5]\n"
    "  %4 = transpose %x2 {perm = [1, 0, 2, 3]} : f32[8,3,9,9]\n"
    "  %5 = transpose %dy2 {perm = [1, 0, 2, 3]} : f32[16,3,9,9]\n"
    "  %6 = conv2d %4, %5 {padding = [2, 2]} : f32[8,16,5,5]\n"
    "  %7 = transpose %6 {perm = [1, 0, 2, 3]} : f32[16,8,5,5]\n"
    "  return %3, %7\n"
    "}\n";

/* Runs f at 1 and 2 threads on the same inputs; false when a result's
** bytes differ. */
static bool same_bits(Lib *L, const IrFunc *f, const Spec *sp) {
  const IrBlock *b = f->body;
  Arena *a = arena_new();
  uint64_t s = 99;
  void **in = ARENA_ARRAY(a, void *, b->nargs + 1);
  for (int i = 0; i < b->nargs; i++) {
    IrTensor t = make_input(a, &b->args[i]->type, sp, &s);
    in[i] = to_native(a, &t);
  }
  char sym[256];
  snprintf(sym, sizeof sym, "t_%s", f->name);
  EntryFn *fn = (EntryFn *)dlsym(L->so, sym);
  void **out[2];
  size_t *bytes = ARENA_ARRAY(a, size_t, b->nrets + 1);
  void *arena = arena_alloc(a, L->res.arena_bytes + 64, 64);
  bool same = fn != NULL;
  for (int th = 0; same && th < 2; th++) {
    out[th] = ARENA_ARRAY(a, void *, b->nrets + 1);
    for (int i = 0; i < b->nrets; i++) {
      const IrType *t = &b->rets[i]->type;
      bytes[i] = (size_t)ir_type_numel(t) * ir_dtype_size(t->dtype);
      out[th][i] = arena_alloc(a, bytes[i] + 64, 64);
    }
    omp_set_num_threads(th + 1);
    same = fn(arena, NULL, (void *const *)in, (void *const *)out[th], 1, 0) == 0;
  }
  for (int i = 0; same && i < b->nrets; i++)
    if (memcmp(out[0][i], out[1][i], bytes[i])) {
      fprintf(stderr, "%s: result %d differs at 1 and 2 threads\n", f->name, i);
      same = false;
    }
  arena_free(a);
  return same;
}

/* Checks every function of text against the interpreter and across
** thread counts, and that the kernels want[] exist and none of not[]. */
static void check_conv_spec(const char *text, const char *const *want,
                            const char *const *not, Spec sp) {
  Lib L;
  bool ok = lib_build(&L, text, &sp, false);
  int bad = 0, nf = 0;
  bool same = true;
  for (const IrFunc *f = ok ? L.m->funcs : NULL; f; f = f->next, nf++) {
    bad += check_func(&L, f, &sp, 0x5EED + (uint64_t)nf);
    same &= same_bits(&L, f, &sp);
  }
  bool named = ok;
  for (int i = 0; ok && want[i]; i++)
    if (!strstr(L.kernels, want[i])) {
      fprintf(stderr, "no kernel %s in: %s\n", want[i], L.kernels);
      named = false;
    }
  for (int i = 0; ok && not[i]; i++)
    if (strstr(L.kernels, not[i])) {
      fprintf(stderr, "unexpected kernel %s in: %s\n", not[i], L.kernels);
      named = false;
    }
  lib_free(&L);
  assert_true(ok);
  assert_int_equal(bad, 0);
  assert_true(named);
  assert_true(same);
  /* every value materialised, kernels called without the parallel loop */
  sp.no_fuse = true;
  sp.par = -1;
  check_module(text, &sp);
}

static void check_conv(const char *text, const char *const *want, const char *const *not) {
  check_conv_spec(text, want, not, (Spec)RED);
}

static void test_conv_taps(void **state) {
  (void)state;
  /* the tap form for every conv but k4 of @dense (taps not contiguous) */
  static const char *const want[] = {"k2_conv2d_taps ", "k6_conv2d_taps ",
                                     "k11_conv2d_taps ", "k0_conv2d_taps_tp ",
                                     "k1_conv2d_taps ", "k2_conv1d_taps ", NULL};
  static const char *const not[] = {"k4_conv2d_taps", NULL};
  check_conv(taps_nnir, want, not);
}

static void test_conv_rows(void **state) {
  (void)state;
  static const char *const want[] = {"k0_conv2d_gemm ", "k1_conv_transpose2d_gemm ",
                                     "k2_conv_transpose2d_gemm ",
                                     "k3_conv_transpose2d_gemm ", "k5_conv2d_gemm ", NULL};
  static const char *const not[] = {NULL};
  check_conv(rows_nnir, want, not);
}

static void test_conv_forms(void **state) {
  (void)state;
  static const char *const want[] = {"k0_conv2d_gemm_t ", "k1_conv2d_gemm_t ",
                                     "k2_conv2d_gemm ", "k2_conv2d_taps_t ",
                                     "k6_conv2d_taps_tp ", NULL};
  static const char *const not[] = {NULL};
  /* sums of 400 to 800 products: f32 rounding of the magnitude of the
  ** terms, not of the result, so inputs in [-1, 1) and atol 1e-4 */
  check_conv_spec(forms_nnir, want, not, (Spec){.lo = -1, .hi = 1, .rtol = 1e-4, .atol = 1e-4});
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conv_forms),
      cmocka_unit_test(test_conv_taps),
      cmocka_unit_test(test_conv_rows),
  };
  return cmocka_run_group_tests(tests, harness_setup, NULL);
}
