/*
** This file contains the differential tests of the transformer attention
** path of the lowering: the direct kernel of small batched f32 matmuls
** (backend/cg_linalg.c: register tiles over a packed panel of B, masked
** stores, bias/relu epilogue, any operand strides and broadcast batch
** dims), the folding of a batch into the rows of one SGEMM when B has no
** batch, and the row-buffer softmax kernel (backend/cg_reduce.c: explicit
** vector passes, rows not a multiple of the vector width, -inf and NaN
** rows, strided axes, the long-row and f64 fallbacks), and reshapes of
** strided values as views (backend/cg_plan.c).  Every function is
** compared with the interpreter at 1 and 2 threads (ops_harness.h,
** tolerance rel 1e-4 as for matmul and softmax in test_ops.c), and its
** results at 1 and 2 threads must be bit-identical (training is compared
** bit for bit across thread counts).
*/
#include "ops_harness.h"

#define RED {.lo = -2, .hi = 2, .rtol = 1e-4, .atol = 1e-5}

/* Run every function of L at 1 and 2 threads; the number of results whose
** bytes differ between the two. */
static int thread_bits(Lib *L, const Spec *sp) {
  int bad = 0;
  for (const IrFunc *f = L->m->funcs; f; f = f->next) {
    const IrBlock *b = f->body;
    Arena *a = arena_new();
    uint64_t s = 77;
    void **nin = ARENA_ARRAY(a, void *, b->nargs + 1);
    for (int i = 0; i < b->nargs; i++) {
      IrTensor t = make_input(a, &b->args[i]->type, sp, &s);
      nin[i] = to_native(a, &t);
    }
    char sym[256];
    snprintf(sym, sizeof sym, "t_%s", f->name);
    EntryFn *fn = (EntryFn *)dlsym(L->so, sym);
    assert_non_null(fn);
    void *arena = arena_alloc(a, L->res.arena_bytes + 64, 64);
    void **out[2];
    for (int th = 1; th <= 2; th++) {
      out[th - 1] = ARENA_ARRAY(a, void *, b->nrets + 1);
      for (int i = 0; i < b->nrets; i++) {
        const IrType *t = &b->rets[i]->type;
        size_t n = (size_t)ir_type_numel(t) * ir_dtype_size(t->dtype);
        out[th - 1][i] = arena_alloc(a, n + 1, 64);
        memset(out[th - 1][i], 0xA5, n);
      }
      omp_set_num_threads(th);
      assert_int_equal(fn(arena, NULL, (void *const *)nin, (void *const *)out[th - 1], 1, 2), 0);
    }
    for (int i = 0; i < b->nrets; i++) {
      const IrType *t = &b->rets[i]->type;
      size_t n = (size_t)ir_type_numel(t) * ir_dtype_size(t->dtype);
      if (memcmp(out[0][i], out[1][i], n)) {
        fprintf(stderr, "%s: result %d differs between 1 and 2 threads\n", f->name, i);
        bad++;
      }
    }
    arena_free(a);
  }
  return bad;
}

/* check_module, then the bitwise thread check; *asm_out (if given) gets
** whether the assembly mentions `word`. */
static void check_all(const char *text, const char *word, bool *has_word) {
  Spec sp = RED;
  check_module(text, &sp);
  Lib L;
  bool ok = lib_build(&L, text, &sp, word != NULL);
  assert_true(ok);
  if (word) *has_word = L.asm_text && strstr(L.asm_text, word);
  int bad = thread_bits(&L, &sp);
  lib_free(&L);
  assert_int_equal(bad, 0);
}

/* ------------------------------------------------- direct batched matmul */

static const char direct_nnir[] =
    "module @t\n"
    /* 13 rows: two full tiles and a partial one; 70 columns: a block of
    ** four vectors and one of a partial vector (masked store); epilogue */
    "func @bias(%a: f32[2,3,13,7], %b: f32[2,3,7,70], %c: f32[70]) -> (y: f32[2,3,13,70]) {\n"
    "  %0 = matmul %a, %b : f32[2,3,13,70]\n"
    "  %1 = add %0, %c : f32[2,3,13,70]\n"
    "  %2 = relu %1 : f32[2,3,13,70]\n"
    "  return %2\n"
    "}\n"
    /* wide: column blocks in a loop, then a tail of vectors (150), or none
    ** (128) */
    "func @wide(%a: f32[2,7,3], %b: f32[2,3,150], %c: f32[2,3,128]) -> "
    "(y: f32[2,7,150], z: f32[2,7,128]) {\n"
    "  %0 = matmul %a, %b : f32[2,7,150]\n"
    "  %1 = matmul %a, %c : f32[2,7,128]\n"
    "  return %0, %1\n"
    "}\n"
    /* broadcast batch dims on both sides */
    "func @bcast(%a: f32[2,1,5,3], %b: f32[1,4,3,17]) -> (y: f32[2,4,5,17]) {\n"
    "  %0 = matmul %a, %b : f32[2,4,5,17]\n"
    "  return %0\n"
    "}\n"
    /* A transposed (a strided view), N = 1, K = 1 */
    "func @strided(%t: f32[2,9,6], %b: f32[2,9,33], %u: f32[3,1,8], %v: f32[3,8,20], "
    "%p: f32[4,6,1], %q: f32[4,1,5]) -> (y: f32[2,6,33], z: f32[3,1,20], w: f32[4,6,5]) {\n"
    "  %0 = transpose %t {perm = [0, 2, 1]} : f32[2,6,9]\n"
    "  %1 = matmul %0, %b : f32[2,6,33]\n"
    "  %2 = matmul %u, %v : f32[3,1,20]\n"
    "  %3 = matmul %p, %q : f32[4,6,5]\n"
    "  return %1, %2, %3\n"
    "}\n"
    /* the attention of examples/char_gpt.nn written out: q kT (B a
    ** transposed view), scale, causal mask, softmax, then times v */
    "func @attn(%q: f32[2,3,64,32], %k: f32[2,3,64,32], %v: f32[2,3,64,32]) -> "
    "(y: f32[2,3,64,32]) {\n"
    "  %0 = transpose %k {perm = [0, 1, 3, 2]} : f32[2,3,32,64]\n"
    "  %1 = matmul %q, %0 : f32[2,3,64,64]\n"
    "  %2 = constant {value = 5.656854249492381} : f32[]\n"
    "  %3 = div %1, %2 : f32[2,3,64,64]\n"
    "  %4 = causal_mask : f32[64,64]\n"
    "  %5 = add %3, %4 : f32[2,3,64,64]\n"
    "  %6 = softmax %5 : f32[2,3,64,64]\n"
    "  %7 = matmul %6, %v : f32[2,3,64,32]\n"
    "  return %7\n"
    "}\n";

static void test_direct_matmul(void **state) {
  bool sgemm = true;
  check_all(direct_nnir, "nnc_sgemm", &sgemm);
  /* every matmul here took the direct kernel, none the SGEMM */
  assert_false(sgemm);
}

/* ------------------------------------------------ batch folded into rows */

static const char fold_nnir[] =
    "module @t\n"
    "func @fold(%x: f32[4,5,7], %w: f32[7,9], %c: f32[9], %w1: f32[1,7,9], "
    "%s: f32[4,5,20], %r: f32[4,9,7], %x2: f32[3,40,33], %w2: f32[33,65]) -> "
    "(a: f32[4,5,9], b: f32[4,5,9], d: f32[4,5,9], e: f32[4,5,9], f: f32[3,40,65]) {\n"
    "  %0 = matmul %x, %w : f32[4,5,9]\n"
    "  %1 = add %0, %c : f32[4,5,9]\n"
    "  %2 = matmul %x, %w1 : f32[4,5,9]\n"
    /* rows of lda 20: the batch stride 100 is 5 rows: folds */
    "  %3 = slice %s {axis = 2, start = 0, end = 7} : f32[4,5,7]\n"
    "  %4 = matmul %3, %w : f32[4,5,9]\n"
    /* batch stride 63 is not 5 rows of 7: stays batched */
    "  %5 = slice %r {axis = 1, start = 2, end = 7} : f32[4,5,7]\n"
    "  %6 = matmul %5, %w : f32[4,5,9]\n"
    "  %7 = matmul %x2, %w2 : f32[3,40,65]\n"
    "  return %1, %2, %4, %6, %7\n"
    "}\n";

static void test_fold_batch(void **state) { check_all(fold_nnir, NULL, NULL); }

/* --------------------------------------------------------------- softmax */

static const char softmax_nnir[] =
    "module @t\n"
    "func @rows(%x: f32[5,3,70], %y: f32[4,33], %z: f32[19,6], %l: f32[2,4100], "
    "%d: f64[3,17]) -> (a: f32[5,3,70], b: f32[4,33], c: f32[19,6], e: f32[2,4100], "
    "f: f64[3,17], g: f32[4,33]) {\n"
    "  %0 = softmax %x : f32[5,3,70]\n"
    "  %1 = log_softmax %y : f32[4,33]\n"
    "  %2 = softmax %z {axis = 0} : f32[19,6]\n"
    "  %3 = softmax %l : f32[2,4100]\n"
    "  %4 = softmax %d : f64[3,17]\n"
    "  %5 = softmax %y : f32[4,33]\n"
    "  return %0, %1, %2, %3, %4, %5\n"
    "}\n"
    /* -inf entries (row 0 all -inf: NaN in both engines), and one NaN in
    ** row 3 of the second result */
    "func @special(%x: f32[6,9]) -> (a: f32[6,9], b: f32[6,9], c: f32[6,9]) {\n"
    "  %i = iota {axis = 0} : f32[6,9]\n"
    "  %j = iota {axis = 1} : f32[6,9]\n"
    "  %m = lt %j, %i : bool[6,9]\n"
    "  %z = constant {value = 0} : f32[]\n"
    "  %ninf = log %z : f32[]\n"
    "  %nan = div %z, %z : f32[]\n"
    "  %0 = where %m, %x, %ninf : f32[6,9]\n"
    "  %1 = softmax %0 : f32[6,9]\n"
    "  %three = constant {value = 3} : f32[]\n"
    "  %four = constant {value = 4} : f32[]\n"
    "  %r = eq %i, %three : bool[6,9]\n"
    "  %c = eq %j, %four : bool[6,9]\n"
    "  %rc = and %r, %c : bool[6,9]\n"
    "  %2 = where %rc, %nan, %x : f32[6,9]\n"
    "  %3 = softmax %2 : f32[6,9]\n"
    "  %4 = log_softmax %0 : f32[6,9]\n"
    "  return %1, %3, %4\n"
    "}\n";

static void test_softmax_rows(void **state) { check_all(softmax_nnir, NULL, NULL); }

/* ------------------------------------------------ reshapes as strided views */

/* The heads of char_gpt's attention: q, k, v are slices of one qkv
** product, split into heads by a reshape and permuted; all are views of
** the product (no copy kernel), read in place by the direct kernel. */
static const char heads_nnir[] =
    "module @t\n"
    "func @heads(%x: f32[2,8,16], %w: f32[16,48]) -> (y: f32[2,8,16], r: f32[24,2], "
    "s: f32[2,8,2,3]) {\n"
    "  %0 = matmul %x, %w : f32[2,8,48]\n"
    "  %1 = slice %0 {axis = 2, start = 0, end = 16} : f32[2,8,16]\n"
    "  %2 = slice %0 {axis = 2, start = 16, end = 32} : f32[2,8,16]\n"
    "  %3 = slice %0 {axis = 2, start = 32, end = 48} : f32[2,8,16]\n"
    "  %4 = reshape %1 : f32[2,8,4,4]\n"
    "  %5 = transpose %4 {perm = [0, 2, 1, 3]} : f32[2,4,8,4]\n"
    "  %6 = reshape %2 : f32[2,8,4,4]\n"
    "  %7 = transpose %6 {perm = [0, 2, 3, 1]} : f32[2,4,4,8]\n"
    "  %8 = reshape %3 : f32[2,8,4,4]\n"
    "  %9 = transpose %8 {perm = [0, 2, 1, 3]} : f32[2,4,8,4]\n"
    "  %10 = matmul %5, %7 : f32[2,4,8,8]\n"
    "  %11 = softmax %10 : f32[2,4,8,8]\n"
    "  %12 = matmul %11, %9 : f32[2,4,8,4]\n"
    "  %13 = transpose %12 {perm = [0, 2, 1, 3]} : f32[2,8,4,4]\n"
    "  %14 = reshape %13 : f32[2,8,16]\n"
    /* needs a copy: merging dims that are not contiguous together */
    "  %15 = transpose %x {perm = [1, 2, 0]} : f32[8,16,2]\n"
    "  %16 = slice %15 {axis = 0, start = 0, end = 3} : f32[3,16,2]\n"
    "  %17 = reshape %16 : f32[3,8,2,2]\n"
    "  %18 = transpose %17 {perm = [1, 0, 2, 3]} : f32[8,3,2,2]\n"
    "  %19 = reshape %18 : f32[24,2,2]\n"
    "  %20 = sum %19 {axes = [2]} : f32[24,2]\n"
    /* a view with dims of 1 inserted and a reversed slice underneath */
    "  %21 = slice %x {axis = 2, start = 0, end = 6} : f32[2,8,6]\n"
    "  %22 = reshape %21 : f32[2,1,8,2,1,3]\n"
    "  %23 = reshape %22 : f32[2,8,2,3]\n"
    "  %24 = exp %23 : f32[2,8,2,3]\n"
    "  return %14, %20, %24\n"
    "}\n";

static void test_reshape_views(void **state) {
  check_all(heads_nnir, NULL, NULL);
  Spec sp = RED;
  Lib L;
  assert_true(lib_build(&L, heads_nnir, &sp, false));
  bool copies = strstr(L.kernels, "_transpose_reshape") || strstr(L.kernels, "_reshape_slice");
  if (copies) fprintf(stderr, "kernels: %s\n", L.kernels);
  lib_free(&L);
  assert_false(copies);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_direct_matmul),
      cmocka_unit_test(test_fold_batch),
      cmocka_unit_test(test_softmax_rows),
      cmocka_unit_test(test_reshape_views),
  };
  return cmocka_run_group_tests(tests, harness_setup, NULL);
}
