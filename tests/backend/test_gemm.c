/*
** This file contains the tests of the SGEMM generator (backend/gemm.c):
** generated kernels are emitted as an object for the host, linked with
** libnnrt (nnrt_parallel_for) into a shared library with the C compiler
** and dlopen'ed, then compared with a
** triple loop in double on random inputs at odd sizes, strides larger
** than the widths, beta 0 and 1, transposed operands and the epilogue, at
** 1 and 2 OpenMP threads, and A packed by the caller (NaN in the packed
** layout's unused slots and padding rows).  Tolerance: |c - ref| <= 1e-4 * (sum_k |a_ik
** b_kj| + |beta c_ij|) + 1e-6, i.e. a relative 1e-4 of the magnitude of the
** terms summed (f32 accumulation over K <= 300 terms stays near 1e-6).
** The assembly test checks vector registers and FMA instructions.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llvm-c/Analysis.h>

#include "gemm.h"
#include "llvm_util.h"
#include "target.h"

enum { K_NN, K_TN, K_NT, K_TT, K_EPI, K_SMALL, K_SMALL_TT, K_PACKED, K_PACKED_T, K_COUNT };

typedef struct Kernels {
  void *so;
  CgGemmFn *fn[K_COUNT];
  GemmSpec spec[K_COUNT];
  char dir[64];
} Kernels;

static const char *const knames[K_COUNT] = {"g_nn",    "g_tn",       "g_nt",
                                            "g_tt",    "g_epi",      "g_small",
                                            "g_small_tt", "g_packed", "g_packed_t"};

static void make_specs(GemmSpec *s, const CgTarget *t)
{
  for (int i = 0; i < K_COUNT; i++)
    cg_gemm_spec_init(&s[i], t, knames[i]);
  s[K_TN].trans_a = s[K_TT].trans_a = s[K_SMALL_TT].trans_a = s[K_PACKED_T].trans_a = true;
  s[K_NT].trans_b = s[K_TT].trans_b = s[K_SMALL_TT].trans_b = s[K_PACKED].trans_b = true;
  s[K_EPI].bias = s[K_EPI].relu = true;
  s[K_PACKED].a_packed = s[K_PACKED_T].a_packed = true;
  /* tiny blocks so that small sizes run every loop (jc, pc, ic) many times */
  for (int i = K_SMALL; i <= K_PACKED_T; i++) {
    s[i].kc = 8;
    GemmBlocking bk;
    cg_gemm_blocking(&s[i], &bk);
    s[i].mc = 2 * bk.mr;
    s[i].nc = 2 * bk.nr;
    s[i].bias = i == K_SMALL;
  }
}

static int run(const char *cmd)
{
  int rc = system(cmd);
  return rc;
}

static int setup(void **state)
{
  static Kernels k;
  CgTarget t;
  char *err = NULL;
  if (!cg_target_init(&t, NULL, NULL, NULL, &err)) {
    fprintf(stderr, "target: %s\n", err);
    return -1;
  }
  LLVMContextRef c = LLVMContextCreate();
  LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("gemm_test", c);
  make_specs(k.spec, &t);
  for (int i = 0; i < K_COUNT; i++)
    cg_gemm_define(mod, t.tm, &k.spec[i]);
  if (LLVMVerifyModule(mod, LLVMPrintMessageAction, &err)) {
    fprintf(stderr, "verify: %s\n", err);
    return -1;
  }
  LLVMDisposeMessage(err);
  if (!ll_run_passes(mod, t.tm, "default<O3>", &err)) {
    fprintf(stderr, "passes: %s\n", err);
    return -1;
  }
  strcpy(k.dir, "/tmp/nnc_gemm_XXXXXX");
  if (!mkdtemp(k.dir))
    return -1;
  char obj[128], so[128], cmd[512];
  snprintf(obj, sizeof obj, "%s/gemm.o", k.dir);
  snprintf(so, sizeof so, "%s/gemm.so", k.dir);
  if (!ll_emit_file(mod, t.tm, obj, LLVMObjectFile, &err)) {
    fprintf(stderr, "emit: %s\n", err);
    return -1;
  }
  snprintf(cmd, sizeof cmd, "%s -shared -o %s %s %s %s", NNC_CC, so, obj, NNRT_LIB,
           NNC_OMP_FLAGS);
  if (run(cmd) != 0)
    return -1;
  k.so = dlopen(so, RTLD_NOW);
  if (!k.so) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return -1;
  }
  for (int i = 0; i < K_COUNT; i++)
    k.fn[i] = (CgGemmFn *)dlsym(k.so, knames[i]);
  LLVMDisposeModule(mod);
  LLVMContextDispose(c);
  cg_target_free(&t);
  *state = &k;
  return 0;
}

static int teardown(void **state)
{
  Kernels *k = *state;
  char cmd[128];
  dlclose(k->so);
  snprintf(cmd, sizeof cmd, "rm -rf %s", k->dir);
  return run(cmd);
}

/* ---------------------------------------------------------------- reference */

static uint64_t rng_next(uint64_t *s)
{
  *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
  return *s;
}
static float rnd(uint64_t *s) { return (float)((rng_next(s) >> 11) * 0x1.0p-53 * 2 - 1); }

typedef struct Case {
  int m, n, k;
  int pad;       /* added to every leading dimension */
  float beta;
} Case;

/* Runs kernel kind on one case at the current thread count and compares. */
static void check_case(Kernels *kk, int kind, Case cs)
{
  const GemmSpec *s = &kk->spec[kind];
  int64_t M = cs.m, N = cs.n, K = cs.k;
  int64_t ar = s->trans_a ? K : M, ac = s->trans_a ? M : K;
  int64_t br = s->trans_b ? N : K, bc = s->trans_b ? K : N;
  int64_t lda = ac + cs.pad, ldb = bc + cs.pad, ldc = N + cs.pad;
  float *a = malloc(sizeof(float) * (size_t)(ar * lda + 1));
  float *b = malloc(sizeof(float) * (size_t)(br * ldb + 1));
  float *c = malloc(sizeof(float) * (size_t)(M * ldc + 1));
  float *c0 = malloc(sizeof(float) * (size_t)(M * ldc + 1));
  float *bias = malloc(sizeof(float) * (size_t)N);
  int64_t wn = cg_gemm_work_floats(s, M, N, K, omp_get_max_threads());
  /* 64 canary floats after the work area the spec asks for */
  float *work = aligned_alloc(64, (size_t)(wn + 64) * sizeof(float));
  for (int i = 0; i < 64; i++)
    work[wn + i] = -7.25f;
  uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)(M * 131 + N * 17 + K);
  for (int64_t i = 0; i < ar * lda; i++)
    a[i] = rnd(&seed);
  for (int64_t i = 0; i < br * ldb; i++)
    b[i] = rnd(&seed);
  for (int64_t i = 0; i < M * ldc; i++)
    c0[i] = c[i] = cs.beta == 0 ? NAN : rnd(&seed);
  for (int64_t j = 0; j < N; j++)
    bias[j] = rnd(&seed);
  float *ap = a;
  if (s->a_packed) { /* the layout of gemm.h; NaN where nothing is */
    GemmBlocking bk;
    cg_gemm_blocking(s, &bk);
    int64_t mrr = (M + bk.mr - 1) / bk.mr * bk.mr, kcr = (K + bk.kc - 1) / bk.kc * bk.kc;
    ap = malloc(sizeof(float) * (size_t)(mrr * kcr + 1));
    for (int64_t i = 0; i < mrr * kcr; i++)
      ap[i] = NAN;
    for (int64_t i = 0; i < M; i++)
      for (int64_t p = 0; p < K; p++)
        ap[p / bk.kc * bk.kc * mrr + i / bk.mr * bk.mr * bk.kc +
           (s->trans_a ? p % bk.kc * bk.mr + i % bk.mr : i % bk.mr * bk.kc + p % bk.kc)] =
            s->trans_a ? a[p * lda + i] : a[i * lda + p];
  }
  kk->fn[kind](M, N, K, ap, lda, b, ldb, c, ldc, cs.beta, bias, work);
  if (ap != a)
    free(ap);
  int bad = 0;
  for (int64_t i = 0; i < M && bad < 5; i++) {
    for (int64_t j = 0; j < N; j++) {
      double sum = 0, mag = 0;
      for (int64_t p = 0; p < K; p++) {
        double x = s->trans_a ? a[p * lda + i] : a[i * lda + p];
        double y = s->trans_b ? b[j * ldb + p] : b[p * ldb + j];
        sum += x * y, mag += fabs(x * y);
      }
      if (cs.beta != 0)
        sum += cs.beta * (double)c0[i * ldc + j], mag += fabs(cs.beta * c0[i * ldc + j]);
      if (s->bias)
        sum += bias[j], mag += fabs(bias[j]);
      if (s->relu && sum < 0)
        sum = 0;
      double got = c[i * ldc + j];
      if (!(fabs(got - sum) <= 1e-4 * mag + 1e-6)) {
        if (bad++ < 5)
          fprintf(stderr, "%s M=%d N=%d K=%d pad=%d beta=%g threads=%d: C[%ld,%ld] = %.9g, "
                  "want %.9g\n", knames[kind], cs.m, cs.n, cs.k, cs.pad, cs.beta,
                  omp_get_max_threads(), (long)i, (long)j, got, sum);
      }
    }
  }
  /* the padding columns of C are never written */
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = N; j < ldc && i * ldc + j < M * ldc; j++)
      if (!(c[i * ldc + j] == c0[i * ldc + j] || (isnan(c[i * ldc + j]) && isnan(c0[i * ldc + j]))))
        bad++;
  for (int i = 0; i < 64; i++)
    bad += work[wn + i] != -7.25f;
  free(a), free(b), free(c), free(c0), free(bias), free(work);
  assert_int_equal(bad, 0);
}

static const int sizes[] = {1, 3, 17, 63, 64, 65, 257};
enum { NSIZES = sizeof sizes / sizeof sizes[0] };

/* Square sizes, then non-square combinations, with and without padding. */
static void check_kind(Kernels *k, int kind)
{
  for (int threads = 1; threads <= 2; threads++) {
    omp_set_num_threads(threads);
    for (int i = 0; i < NSIZES; i++)
      for (int beta = 0; beta <= 1; beta++)
        check_case(k, kind, (Case){sizes[i], sizes[i], sizes[i], beta * 3, (float)beta});
    for (int i = 0; i < NSIZES; i++)
      for (int j = 0; j < NSIZES; j++) {
        int m = sizes[i], n = sizes[j], kk = sizes[(i + j + 3) % NSIZES];
        check_case(k, kind, (Case){m, n, kk, (i + j) % 3 * 5, (float)((i + j) % 2)});
      }
    check_case(k, kind, (Case){33, 47, 0, 0, 1});   /* K = 0: C = beta·C */
    check_case(k, kind, (Case){19, 29, 0, 2, 0});
  }
}

static void test_gemm_nn(void **st) { check_kind(*st, K_NN); }
static void test_gemm_trans_a(void **st) { check_kind(*st, K_TN); }
static void test_gemm_trans_b(void **st) { check_kind(*st, K_NT); }
static void test_gemm_trans_ab(void **st) { check_kind(*st, K_TT); }
static void test_gemm_bias_relu(void **st) { check_kind(*st, K_EPI); }
static void test_gemm_small_blocks(void **st) { check_kind(*st, K_SMALL); }
static void test_gemm_small_blocks_tt(void **st) { check_kind(*st, K_SMALL_TT); }
/* A packed by the caller (gemm.h a_packed), small blocks: both paths. */
static void test_gemm_a_packed(void **st) { check_kind(*st, K_PACKED); }
static void test_gemm_a_packed_t(void **st) { check_kind(*st, K_PACKED_T); }

/* A larger product with the default blocking: several KC and MC blocks. */
static void test_gemm_large(void **st)
{
  for (int threads = 1; threads <= 2; threads++) {
    omp_set_num_threads(threads);
    check_case(*st, K_NN, (Case){517, 389, 601, 7, 1});
    check_case(*st, K_TT, (Case){300, 700, 450, 0, 0});
  }
}

/* ---------------------------------------------------------------- target and assembly */

static void test_target_vector_shape(void **st)
{
  (void)st;
  int w, r;
  bool fma;
  cg_target_vector_shape("x86_64-pc-linux-gnu", "x", "+sse2,+avx512f,+avx2,+fma", &w, &r, &fma);
  assert_true(w == 16 && r == 32 && fma);
  cg_target_vector_shape("x86_64-pc-linux-gnu", "x", "+sse2,-avx512f,+avx,+avx2,+fma", &w, &r, &fma);
  assert_true(w == 8 && r == 16 && fma);
  cg_target_vector_shape("x86_64-pc-linux-gnu", "x", "+sse2,-avx", &w, &r, &fma);
  assert_true(w == 4 && r == 16 && !fma);
  cg_target_vector_shape("x86_64-pc-linux-gnu", "haswell", NULL, &w, &r, &fma);
  assert_true(w == 8 && r == 16 && fma);
  cg_target_vector_shape("x86_64-pc-linux-gnu", "skylake-avx512", NULL, &w, &r, &fma);
  assert_true(w == 16 && r == 32);
  cg_target_vector_shape("aarch64-linux-gnu", "generic", "+neon", &w, &r, &fma);
  assert_true(w == 4 && r == 32);
  GemmSpec s = {.name = "x", .vec_floats = 8, .vec_regs = 16};
  GemmBlocking bk;
  cg_gemm_blocking(&s, &bk);
  assert_true(bk.mr == 6 && bk.nr == 16);
  s.vec_floats = 16, s.vec_regs = 32;
  cg_gemm_blocking(&s, &bk);
  assert_true(bk.mr == 14 && bk.nr == 32 && bk.mc % bk.mr == 0);
}

/* The assembly of a gemm for target (triple, cpu); the caller frees it. */
static char *gemm_asm(const char *triple, const char *cpu, CgTarget *t)
{
  char *err = NULL;
  assert_true(cg_target_init(t, triple, cpu, NULL, &err));
  LLVMContextRef c = LLVMContextCreate();
  LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("gemm_asm", c);
  GemmSpec s;
  cg_gemm_spec_init(&s, t, "g_asm");
  cg_gemm_define(mod, t->tm, &s);
  assert_true(ll_run_passes(mod, t->tm, "default<O3>", &err));
  LLVMMemoryBufferRef buf;
  assert_false(LLVMTargetMachineEmitToMemoryBuffer(t->tm, mod, LLVMAssemblyFile, &err, &buf));
  size_t n = LLVMGetBufferSize(buf);
  char *text = malloc(n + 1);
  memcpy(text, LLVMGetBufferStart(buf), n);
  text[n] = 0;
  LLVMDisposeMemoryBuffer(buf);
  LLVMDisposeModule(mod);
  LLVMContextDispose(c);
  return text;
}

/* Counts lines that hold both an FMA mnemonic and register class reg. */
static int count_fma(const char *text, const char *reg)
{
  int n = 0;
  for (const char *p = text; (p = strstr(p, "vfmadd")); p++) {
    const char *eol = strchr(p, '\n');
    const char *r = strstr(p, reg);
    if (r && (!eol || r < eol))
      n++;
  }
  return n;
}

static void test_gemm_asm_host(void **st)
{
  (void)st;
  CgTarget t;
  char *text = gemm_asm(NULL, NULL, &t);
  const char *reg = t.vec_floats == 16 ? "%zmm" : t.vec_floats == 8 ? "%ymm" : "%xmm";
  GemmBlocking bk;
  GemmSpec s;
  cg_gemm_spec_init(&s, &t, "x");
  cg_gemm_blocking(&s, &bk);
  /* the unrolled k loop alone holds KUNROLL (4) * MR * NR/W vector FMAs */
  int want = 4 * bk.mr * bk.nr / t.vec_floats;
  int got = t.has_fma ? count_fma(text, reg) : 0;
  if (t.has_fma && got < want)
    fprintf(stderr, "host %s: %d FMAs on %s, want >= %d\n", t.cpu, got, reg, want);
  assert_true(!t.has_fma || got >= want);
  assert_non_null(strstr(text, reg));
  free(text);
  cg_target_free(&t);
}

static void test_gemm_asm_haswell(void **st)
{
  (void)st;
  CgTarget t;
  char *text = gemm_asm("x86_64-unknown-linux-gnu", "haswell", &t);
  assert_int_equal(t.vec_floats, 8);
  assert_true(count_fma(text, "%ymm") >= 4 * 6 * 2);
  assert_null(strstr(text, "%zmm"));
  free(text);
  cg_target_free(&t);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_target_vector_shape),
    cmocka_unit_test(test_gemm_asm_host),
    cmocka_unit_test(test_gemm_asm_haswell),
    cmocka_unit_test(test_gemm_nn),
    cmocka_unit_test(test_gemm_trans_a),
    cmocka_unit_test(test_gemm_trans_b),
    cmocka_unit_test(test_gemm_trans_ab),
    cmocka_unit_test(test_gemm_bias_relu),
    cmocka_unit_test(test_gemm_small_blocks),
    cmocka_unit_test(test_gemm_small_blocks_tt),
    cmocka_unit_test(test_gemm_a_packed),
    cmocka_unit_test(test_gemm_a_packed_t),
    cmocka_unit_test(test_gemm_large),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
