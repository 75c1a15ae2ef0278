/*
** init.c: the initialisers of docs/language.md, filling an f32 tensor from
** the Philox streams of (seed, stream).  Fans follow the storage layout
** ([in, out] dense weights, [O, I, k...] convolutions); orthogonal is the
** sign-corrected QR of torch.nn.init.orthogonal_ computed with modified
** Gram-Schmidt (applied twice) in double; hippo_legs, s4d_real and s4d_lin
** are the deterministic SSM initialisations.
*/
#include "internal.h"

#include <math.h>
#include <stdlib.h>

void nnrt_fans(const int64_t *dims, int rank, double *fan_in,
               double *fan_out) {
  if (rank == 0) {
    *fan_in = *fan_out = 1;
  } else if (rank == 1) {
    *fan_in = *fan_out = (double)dims[0];
  } else if (rank == 2) {
    *fan_in = (double)dims[0];
    *fan_out = (double)dims[1];
  } else {
    double k = 1;
    for (int i = 2; i < rank; i++) k *= (double)dims[i];
    *fan_in = (double)dims[1] * k;
    *fan_out = (double)dims[0] * k;
  }
}

/* One initialiser: its name and the arguments it takes, with defaults. */
typedef struct InitDef {
  const char *name;
  const char *argn[2];
  double def[2];
} InitDef;

static const InitDef inits[] = {
    {"zeros", {0}, {0}},
    {"ones", {0}, {0}},
    {"constant", {"value"}, {0}},
    {"normal", {"mean", "std"}, {0, 1}},
    {"uniform", {"low", "high"}, {0, 1}},
    {"glorot_uniform", {"gain"}, {1}},
    {"glorot_normal", {"gain"}, {1}},
    {"he_normal", {"gain"}, {1}},
    {"he_uniform", {"gain"}, {1}},
    {"orthogonal", {"gain"}, {1}},
    {"hippo_legs", {0}, {0}},
    {"s4d_real", {0}, {0}},
    {"s4d_lin", {0}, {0}},
};

/* Looks up init and reads args into v[2]; NNRT_E_ARG on a problem. */
static int parse_args(const char *init, const NnrtInitArg *args, int nargs,
                      const InitDef **def, double v[2], NnrtErr *e) {
  const InitDef *d = NULL;
  for (size_t i = 0; i < sizeof inits / sizeof *inits; i++)
    if (!strcmp(inits[i].name, init)) d = &inits[i];
  if (!d) return nnrt_err_set(e, NNRT_E_ARG, "unknown initialiser '%s'", init);
  v[0] = d->def[0];
  v[1] = d->def[1];
  for (int a = 0; a < nargs; a++) {
    int k = -1;
    for (int j = 0; j < 2; j++)
      if (d->argn[j] && !strcmp(d->argn[j], args[a].name)) k = j;
    if (k < 0)
      return nnrt_err_set(e, NNRT_E_ARG,
                          "initialiser '%s' takes no argument '%s'", init,
                          args[a].name);
    if (!isfinite(args[a].value))
      return nnrt_err_set(e, NNRT_E_ARG, "initialiser '%s': %s is not finite",
                          init, args[a].name);
    v[k] = args[a].value;
  }
  *def = d;
  if (!strcmp(init, "normal") && v[1] < 0)
    return nnrt_err_set(e, NNRT_E_ARG, "normal: std %g is negative", v[1]);
  if (!strcmp(init, "uniform") && !(v[0] <= v[1]))
    return nnrt_err_set(e, NNRT_E_ARG, "uniform: low %g is above high %g",
                        v[0], v[1]);
  return 0;
}

static void fill_const(float *dst, int64_t n, float c) {
  for (int64_t i = 0; i < n; i++) dst[i] = c;
}

/* Modified Gram-Schmidt on the columns of a (m x n, m >= n, row-major),
** twice, leaving Q in a: the QR with diag(R) > 0, i.e. the Householder Q
** sign-corrected as torch.nn.init.orthogonal_ does.  Returns -1 if a
** column is (numerically) dependent. */
static int mgs(double *a, int64_t m, int64_t n) {
  for (int64_t j = 0; j < n; j++) {
    for (int pass = 0; pass < 2; pass++)
      for (int64_t i = 0; i < j; i++) {
        double r = 0;
        for (int64_t k = 0; k < m; k++) r += a[k * n + i] * a[k * n + j];
        for (int64_t k = 0; k < m; k++) a[k * n + j] -= r * a[k * n + i];
      }
    double nrm = 0;
    for (int64_t k = 0; k < m; k++) nrm += a[k * n + j] * a[k * n + j];
    nrm = sqrt(nrm);
    if (!(nrm > 1e-300)) return -1;
    for (int64_t k = 0; k < m; k++) a[k * n + j] /= nrm;
  }
  return 0;
}

/* orthogonal: rows = numel / last, cols = last. */
static int init_orthogonal(float *dst, const int64_t *dims, int rank,
                           double gain, uint64_t key, NnrtErr *e) {
  int64_t cols = rank ? dims[rank - 1] : 1;
  int64_t n = nnrt_numel(dims, rank);
  if (n == 0) return 0;
  int64_t rows = n / cols;
  int tr = rows < cols;
  int64_t m = tr ? cols : rows, k = tr ? rows : cols; /* a is m x k */
  double *a = malloc((size_t)n * sizeof *a);
  if (!a) return nnrt_err_set(e, NNRT_E_NOMEM, "orthogonal: out of memory");
  for (int64_t r = 0; r < rows; r++) /* flat[r][c], transposed if tr */
    for (int64_t c = 0; c < cols; c++) {
      double z = nnrt_normal(key, NNRT_INIT_COUNTER, (uint64_t)(r * cols + c));
      a[tr ? c * k + r : r * k + c] = z;
    }
  if (mgs(a, m, k)) {
    free(a);
    return nnrt_err_set(e, NNRT_E_ARG, "orthogonal: singular draw");
  }
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++)
      dst[r * cols + c] = (float)(gain * (tr ? a[c * k + r] : a[r * k + c]));
  free(a);
  return 0;
}

static int init_ssm(float *dst, const int64_t *dims, int rank, const char *w,
                    NnrtErr *e) {
  int64_t n = nnrt_numel(dims, rank);
  if (!strcmp(w, "hippo_legs")) {
    if (rank < 2 || dims[rank - 1] != dims[rank - 2]) {
      char s[128];
      return nnrt_err_set(e, NNRT_E_ARG,
                          "hippo_legs: needs a square [N, N] tensor, got %s",
                          nnrt_shape_str(s, sizeof s, dims, rank));
    }
    int64_t N = dims[rank - 1];
    for (int64_t i = 0; i < n; i++) {
      int64_t r = i / N % N, c = i % N;
      dst[i] = r > c    ? (float)(-sqrt(2.0 * r + 1) * sqrt(2.0 * c + 1))
               : r == c ? (float)-(r + 1)
                        : 0.0f;
    }
    return 0;
  }
  if (rank < 1)
    return nnrt_err_set(e, NNRT_E_ARG, "%s: needs a tensor of rank >= 1", w);
  int64_t N = dims[rank - 1];
  int lin = !strcmp(w, "s4d_lin");
  for (int64_t i = 0; i < n; i++) {
    double k = (double)(i % N);
    dst[i] = (float)(lin ? M_PI * k : log(k + 1));
  }
  return 0;
}

int nnrt_init_tensor(float *dst, const int64_t *dims, int rank,
                     const char *init, const NnrtInitArg *args, int nargs,
                     uint64_t seed, uint64_t stream, NnrtErr *e) {
  const InitDef *d = NULL;
  double v[2];
  if (!init) init = "zeros";
  int rc = parse_args(init, args, nargs, &d, v, e);
  if (rc) return rc;
  int64_t n = nnrt_numel(dims, rank);
  if (n < 0)
    return nnrt_err_set(e, NNRT_E_ARG, "%s: bad shape (rank %d)", init, rank);
  uint64_t key = nnrt_rng_key(seed, stream);
  double fi, fo;
  nnrt_fans(dims, rank, &fi, &fo);
  if (fi <= 0) fi = 1;
  if (fo <= 0) fo = 1;
  const char *w = d->name;
  if (!strcmp(w, "zeros")) fill_const(dst, n, 0);
  else if (!strcmp(w, "ones")) fill_const(dst, n, 1);
  else if (!strcmp(w, "constant")) fill_const(dst, n, (float)v[0]);
  else if (!strcmp(w, "normal"))
    nnrt_fill_normal(dst, n, key, NNRT_INIT_COUNTER, v[0], v[1]);
  else if (!strcmp(w, "uniform"))
    nnrt_fill_uniform(dst, n, key, NNRT_INIT_COUNTER, v[0], v[1]);
  else if (!strcmp(w, "glorot_uniform") || !strcmp(w, "he_uniform")) {
    double b = v[0] * sqrt(6.0 / (w[0] == 'g' ? fi + fo : fi));
    nnrt_fill_uniform(dst, n, key, NNRT_INIT_COUNTER, -b, b);
  } else if (!strcmp(w, "glorot_normal") || !strcmp(w, "he_normal")) {
    double s = v[0] * sqrt(2.0 / (w[0] == 'g' ? fi + fo : fi));
    nnrt_fill_normal(dst, n, key, NNRT_INIT_COUNTER, 0, s);
  } else if (!strcmp(w, "orthogonal"))
    return init_orthogonal(dst, dims, rank, v[0], key, e);
  else
    return init_ssm(dst, dims, rank, w, e);
  return 0;
}
