/*
** test_rt_init.c: the initialisers: constants, argument handling and
** errors, fans, glorot/he bounds and standard deviations on large
** tensors, orthogonal (W^T W = I, semi-orthogonal both ways, gain),
** hippo_legs against the oracle of /work/shared/reference/oracles.py,
** s4d_real and s4d_lin.
*/
#include "rt_test.h"

#include <math.h>

static double sd(const float *x, int64_t n, double *mean) {
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < n; i++) s += x[i];
  *mean = s / (double)n;
  for (int64_t i = 0; i < n; i++) s2 += (x[i] - *mean) * (x[i] - *mean);
  return sqrt(s2 / (double)n);
}

static void test_constants_and_args(void **state) {
  float x[6];
  int64_t d[2] = {2, 3};
  NnrtErr e = {0};
  NnrtInitArg v = {"value", 2.5};
  assert_int_equal(nnrt_init_tensor(x, d, 2, "ones", NULL, 0, 0, 0, &e), 0);
  for (int i = 0; i < 6; i++) assert_true(x[i] == 1);
  assert_int_equal(nnrt_init_tensor(x, d, 2, "constant", &v, 1, 0, 0, &e), 0);
  for (int i = 0; i < 6; i++) assert_true(x[i] == 2.5f);
  assert_int_equal(nnrt_init_tensor(x, d, 2, NULL, NULL, 0, 0, 0, &e), 0);
  for (int i = 0; i < 6; i++) assert_true(x[i] == 0);
  assert_int_equal(nnrt_init_tensor(x, d, 2, "xavier", NULL, 0, 0, 0, &e),
                   NNRT_E_ARG);
  assert_string_equal(e.msg, "unknown initialiser 'xavier'");
  NnrtInitArg bad = {"std", 1};
  assert_int_equal(nnrt_init_tensor(x, d, 2, "uniform", &bad, 1, 0, 0, &e),
                   NNRT_E_ARG);
  assert_string_equal(e.msg, "initialiser 'uniform' takes no argument 'std'");
  NnrtInitArg lh[2] = {{"low", 2}, {"high", 1}};
  assert_int_equal(nnrt_init_tensor(x, d, 2, "uniform", lh, 2, 0, 0, &e),
                   NNRT_E_ARG);
  assert_contains(e.msg, "low 2 is above high 1");
  NnrtInitArg neg = {"std", -1};
  assert_int_equal(nnrt_init_tensor(x, d, 2, "normal", &neg, 1, 0, 0, &e),
                   NNRT_E_ARG);
  int64_t ns[2] = {2, 3};
  assert_int_equal(nnrt_init_tensor(x, ns, 2, "hippo_legs", NULL, 0, 0, 0, &e),
                   NNRT_E_ARG);
  assert_contains(e.msg, "square [N, N] tensor, got [2,3]");
}

static void test_fans(void **state) {
  double fi, fo;
  int64_t dense[2] = {784, 512}, conv[4] = {32, 4, 3, 5}, vec[1] = {7};
  nnrt_fans(dense, 2, &fi, &fo);
  assert_true(fi == 784 && fo == 512);
  nnrt_fans(conv, 4, &fi, &fo);
  assert_true(fi == 4 * 15 && fo == 32 * 15);
  nnrt_fans(vec, 1, &fi, &fo);
  assert_true(fi == 7 && fo == 7);
  nnrt_fans(NULL, 0, &fi, &fo);
  assert_true(fi == 1 && fo == 1);
}

static void test_uniform_normal_args(void **state) {
  int64_t d[1] = {200000};
  float *x = malloc(200000 * sizeof *x);
  NnrtInitArg u[2] = {{"low", -2}, {"high", 6}};
  assert_int_equal(nnrt_init_tensor(x, d, 1, "uniform", u, 2, 5, 1, NULL), 0);
  double m, s = sd(x, d[0], &m);
  for (int i = 0; i < d[0]; i++) assert_true(x[i] >= -2 && x[i] < 6);
  assert_true(fabs(m - 2) < 0.03 && fabs(s - 8 / sqrt(12)) < 0.02);
  NnrtInitArg n[2] = {{"mean", 1}, {"std", 0.02}};
  assert_int_equal(nnrt_init_tensor(x, d, 1, "normal", n, 2, 5, 1, NULL), 0);
  s = sd(x, d[0], &m);
  assert_true(fabs(m - 1) < 0.001 && fabs(s - 0.02) < 0.0005);
  free(x);
}

static void test_glorot_he(void **state) {
  int64_t d[2] = {600, 400}, n = 600 * 400;
  float *x = malloc((size_t)n * sizeof *x);
  double m, s;
  /* glorot_uniform: |x| < sqrt(6/(fi+fo)), std = bound/sqrt(3) */
  double b = sqrt(6.0 / 1000);
  assert_int_equal(nnrt_init_tensor(x, d, 2, "glorot_uniform", NULL, 0, 1, 0,
                                    NULL), 0);
  float mx = 0;
  for (int64_t i = 0; i < n; i++) mx = fmaxf(mx, fabsf(x[i]));
  assert_true(mx < b && mx > 0.99 * b);
  s = sd(x, n, &m);
  assert_true(fabs(s / (b / sqrt(3)) - 1) < 0.05);
  /* glorot_normal with gain 2 */
  NnrtInitArg g = {"gain", 2};
  assert_int_equal(nnrt_init_tensor(x, d, 2, "glorot_normal", &g, 1, 1, 0, NULL),
                   0);
  s = sd(x, n, &m);
  assert_true(fabs(s / (2 * sqrt(2.0 / 1000)) - 1) < 0.05);
  /* he_normal: std sqrt(2/fan_in) within 5% */
  assert_int_equal(nnrt_init_tensor(x, d, 2, "he_normal", NULL, 0, 1, 0, NULL),
                   0);
  s = sd(x, n, &m);
  assert_true(fabs(s / sqrt(2.0 / 600) - 1) < 0.05);
  assert_true(fabs(m) < 0.001);
  /* he_uniform on a conv weight [O, I, k, k]: fan_in = I*k*k */
  int64_t cd[4] = {64, 16, 5, 5};
  int64_t cn = 64 * 16 * 25;
  assert_int_equal(nnrt_init_tensor(x, cd, 4, "he_uniform", NULL, 0, 1, 0, NULL),
                   0);
  b = sqrt(6.0 / (16 * 25));
  mx = 0;
  for (int64_t i = 0; i < cn; i++) mx = fmaxf(mx, fabsf(x[i]));
  assert_true(mx < b && mx > 0.99 * b);
  free(x);
}

/* max |A^T A - I| over the k x k Gram of the columns of a (m x k). */
static double gram_err(const float *a, int64_t m, int64_t k, int64_t stride,
                       int cols, double gain) {
  double err = 0;
  for (int64_t i = 0; i < k; i++)
    for (int64_t j = 0; j < k; j++) {
      double s = 0;
      for (int64_t r = 0; r < m; r++)
        s += cols ? (double)a[r * stride + i] * a[r * stride + j]
                  : (double)a[i * stride + r] * a[j * stride + r];
      err = fmax(err, fabs(s / (gain * gain) - (i == j)));
    }
  return err;
}

static void test_orthogonal(void **state) {
  float *x = malloc(256 * 128 * sizeof *x);
  int64_t tall[2] = {256, 128}, wide[2] = {64, 200}, sq[2] = {100, 100};
  assert_int_equal(nnrt_init_tensor(x, tall, 2, "orthogonal", NULL, 0, 3, 1,
                                    NULL), 0);
  assert_true(gram_err(x, 256, 128, 128, 1, 1) < 1e-5); /* W^T W = I */
  NnrtInitArg g = {"gain", 1.5};
  assert_int_equal(nnrt_init_tensor(x, wide, 2, "orthogonal", &g, 1, 3, 1, NULL),
                   0);
  assert_true(gram_err(x, 200, 64, 200, 0, 1.5) < 1e-5); /* W W^T = g^2 I */
  assert_int_equal(nnrt_init_tensor(x, sq, 2, "orthogonal", NULL, 0, 3, 2, NULL),
                   0);
  assert_true(gram_err(x, 100, 100, 100, 1, 1) < 1e-5);
  assert_true(gram_err(x, 100, 100, 100, 0, 1) < 1e-5);
  /* Sign correction: the first column is the normalised first column of
  ** the normal draw (R's diagonal positive). */
  double n0 = 0, dot = 0;
  for (int r = 0; r < 100; r++) {
    double z = nnrt_normal(nnrt_rng_key(3, 2), NNRT_INIT_COUNTER, (uint64_t)r * 100);
    n0 += z * z;
    dot += z * x[r * 100];
  }
  assert_true(fabs(dot / sqrt(n0) - 1) < 1e-5);
  /* Rank 3: rows = 4*5 over the last axis 6. */
  int64_t r3[3] = {4, 5, 6};
  assert_int_equal(nnrt_init_tensor(x, r3, 3, "orthogonal", NULL, 0, 3, 3, NULL),
                   0);
  assert_true(gram_err(x, 20, 6, 6, 1, 1) < 1e-5);
  free(x);
}

static void test_hippo_legs(void **state) {
  /* oracles.py section 3, N = 4 */
  static const double want[4][4] = {{-1, 0, 0, 0},
                                    {-1.732051, -2, 0, 0},
                                    {-2.236068, -3.872983, -3, 0},
                                    {-2.645751, -4.582576, -5.916080, -4}};
  float a[2 * 16];
  int64_t d[3] = {2, 4, 4};
  assert_int_equal(nnrt_init_tensor(a, d, 3, "hippo_legs", NULL, 0, 0, 0, NULL),
                   0);
  for (int c = 0; c < 2; c++)
    for (int n = 0; n < 4; n++)
      for (int k = 0; k < 4; k++)
        assert_true(fabs(a[c * 16 + n * 4 + k] - want[n][k]) < 1e-6);
  /* NPLR check: A + P P^T with P_n = sqrt(n + 1/2) is -I/2 + skew. */
  for (int n = 0; n < 4; n++)
    for (int k = 0; k < 4; k++) {
      double s = a[n * 4 + k] + sqrt(n + 0.5) * sqrt(k + 0.5);
      double t = a[k * 4 + n] + sqrt(n + 0.5) * sqrt(k + 0.5);
      assert_true(fabs(s + t - (n == k ? -1.0 : 0.0)) < 1e-5);
    }
}

static void test_s4d(void **state) {
  float a[3 * 5];
  int64_t d[2] = {3, 5};
  assert_int_equal(nnrt_init_tensor(a, d, 2, "s4d_real", NULL, 0, 0, 0, NULL),
                   0);
  for (int h = 0; h < 3; h++)
    for (int n = 0; n < 5; n++) /* A = -exp(a_log) = -(n+1) */
      assert_true(fabs(-exp(a[h * 5 + n]) + (n + 1)) < 1e-5);
  assert_int_equal(nnrt_init_tensor(a, d, 2, "s4d_lin", NULL, 0, 0, 0, NULL), 0);
  for (int h = 0; h < 3; h++)
    for (int n = 0; n < 5; n++)
      assert_true(fabs(a[h * 5 + n] - M_PI * n) < 1e-5);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_constants_and_args),
      cmocka_unit_test(test_fans),
      cmocka_unit_test(test_uniform_normal_args),
      cmocka_unit_test(test_glorot_he),
      cmocka_unit_test(test_orthogonal),
      cmocka_unit_test(test_hippo_legs),
      cmocka_unit_test(test_s4d),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
