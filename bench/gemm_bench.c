/*
** This file contains the SGEMM benchmark: nnc's generated sgemm (backend/
** gemm.c, host target, default<O3>, linked with libnnrt into a shared
** object and dlopen'ed) against OpenBLAS cblas_sgemm on the
** same row-major matrices and the same thread count.  Each time is the
** median of several runs after a warm-up; the table gives GFLOP/s
** (2·M·N·K / s) and the ratio nnc / OpenBLAS, and the results of the two
** are compared.  The two libraries' thread pools spin for a while after a
** call, so the runs of one are separated from the other's by a pause;
** the runs alternate between the two so that load changes touch both.
**
**   gemm_bench [-s 256,512,1024,2048] [-t 1,2] [-r REPS]
**              (-s takes sizes n for n×n×n, or shapes MxNxK: 128x1024x784)
**              [--mr N --nr N --kc N --mc N --nc N]   (blocking overrides)
*/
#include <dlfcn.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "gemm.h"
#include "llvm_util.h"
#include "target.h"

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Generates, compiles and loads the kernel; NULL on failure. */
static CgGemmFn *build_kernel(GemmSpec *s, CgTarget *t, double *secs,
                              void (**set_threads)(int))
{
  double t0 = now();
  char *err = NULL;
  if (!cg_target_init(t, NULL, NULL, NULL, &err)) {
    fprintf(stderr, "gemm_bench: target: %s\n", err);
    return NULL;
  }
  LLVMContextRef c = LLVMContextCreate();
  LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("gemm_bench", c);
  int mr = s->mr, nr = s->nr, kc = s->kc, mc = s->mc, nc = s->nc;
  cg_gemm_spec_init(s, t, "nnc_sgemm");
  s->mr = mr, s->nr = nr, s->kc = kc, s->mc = mc, s->nc = nc;
  cg_gemm_define(mod, t->tm, s);
  if (!ll_run_passes(mod, t->tm, "default<O3>", &err)) {
    fprintf(stderr, "gemm_bench: passes: %s\n", err);
    return NULL;
  }
  char dir[] = "/tmp/nnc_bench_XXXXXX", obj[64], so[64], cmd[256];
  if (!mkdtemp(dir))
    return NULL;
  snprintf(obj, sizeof obj, "%s/gemm.o", dir);
  snprintf(so, sizeof so, "%s/gemm.so", dir);
  if (!ll_emit_file(mod, t->tm, obj, LLVMObjectFile, &err)) {
    fprintf(stderr, "gemm_bench: emit: %s\n", err);
    return NULL;
  }
  snprintf(cmd, sizeof cmd, "%s -shared -o %s %s %s %s", NNC_CC, so, obj, NNRT_LIB,
           NNC_OMP_FLAGS);
  if (system(cmd) != 0)
    return NULL;
  void *h = dlopen(so, RTLD_NOW);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (!h || system(cmd) != 0)
    return NULL;
  LLVMDisposeModule(mod);
  LLVMContextDispose(c);
  *secs = now() - t0;
  *(void **)set_threads = dlsym(h, "nnrt_set_threads");
  return (CgGemmFn *)dlsym(h, "nnc_sgemm");
}

typedef struct Bench {
  CgGemmFn *fn;
  void (*set_threads)(int);  /* nnrt_set_threads */
  GemmSpec spec;
  int reps;
  float *a, *b, *c1, *c2, *work;
} Bench;

/* C (M×N) = A (M×K) · B (K×N), row-major. */
typedef struct Shape {
  int m, n, k;
} Shape;

static void run_lib(Bench *bb, int lib, Shape s)
{
  if (lib == 0)
    bb->fn(s.m, s.n, s.k, bb->a, s.k, bb->b, s.n, bb->c1, s.n, 0.0f, NULL, bb->work);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.m, s.n, s.k, 1.0f, bb->a, s.k,
                bb->b, s.n, 0.0f, bb->c2, s.n);
}

/* Median seconds of reps runs of each library (t[0] nnc, t[1] OpenBLAS).
** The runs alternate, so that a change of load on the machine touches
** both; each timed run follows an untimed one (warm caches) and a pause
** (the other library's idle threads stop spinning: 250 ms after OpenBLAS,
** whose threads spin for 2^28 cycles, 30 ms after libgomp). */
static void time_runs(Bench *bb, Shape n, int reps, double med[2])
{
  double t[2][64];
  for (int r = 0; r < reps; r++) {
    for (int lib = 0; lib < 2; lib++) {
      /* OpenBLAS's idle threads spin (sched_yield) for 2^28 cycles after a
      ** call, libgomp's for well under 30 ms */
      usleep(lib == 0 ? 250000 : 30000);
      run_lib(bb, lib, n);
      double t0 = now();
      run_lib(bb, lib, n);
      t[lib][r] = now() - t0;
    }
  }
  for (int lib = 0; lib < 2; lib++) {
    qsort(t[lib], (size_t)reps, sizeof t[lib][0], cmp_double);
    med[lib] = t[lib][reps / 2];
  }
}

/* One row of the table; returns 0, or 1 if the results disagree. */
static int bench_one(Bench *bb, Shape sh, int threads)
{
  bb->set_threads(threads);
  openblas_set_num_threads(threads);
  size_t nn = (size_t)sh.m * (size_t)sh.n;
  double flop = 2.0 * sh.m * sh.n * (double)sh.k;
  int reps = bb->reps         ? bb->reps
             : flop <= 4e7    ? 21
             : flop <= 3e8    ? 15
             : flop <= 2.2e9  ? 11
                              : 7;
  if (reps > 64)
    reps = 64;
  double med[2];
  time_runs(bb, sh, reps, med);
  double tn = med[0], tb = med[1];
  double maxd = 0, maxr = 0;
  for (size_t i = 0; i < nn; i++) {
    maxd = fmax(maxd, fabs((double)bb->c1[i] - bb->c2[i]));
    maxr = fmax(maxr, fabs((double)bb->c2[i]));
  }
  char name[48];
  if (sh.m == sh.n && sh.n == sh.k)
    snprintf(name, sizeof name, "%d", sh.m);
  else
    snprintf(name, sizeof name, "%dx%dx%d", sh.m, sh.n, sh.k);
  printf("%14s %7d %10.1f %12.1f %7.2f %5d   %.1e\n", name, threads, flop / tn * 1e-9,
         flop / tb * 1e-9, tb / tn, reps, maxd / maxr);
  fflush(stdout);
  return !(maxd <= 1e-4 * maxr);
}

/* n floats, 64-byte aligned. */
static float *falloc(size_t n)
{
  return aligned_alloc(64, (n * 4 + 127) / 64 * 64);
}

/* "256,128x1024x784": n for n×n×n, or MxNxK. */
static int parse_shapes(const char *s, Shape *out, int max)
{
  int n = 0;
  for (char *end; *s && n < max; s = *end ? end + 1 : end) {
    Shape sh;
    sh.m = sh.n = sh.k = (int)strtol(s, &end, 10);
    if (*end == 'x') {
      sh.n = (int)strtol(end + 1, &end, 10);
      if (*end == 'x')
        sh.k = (int)strtol(end + 1, &end, 10);
    }
    if (sh.m > 0 && sh.n > 0 && sh.k > 0)
      out[n++] = sh;
  }
  return n;
}

static int parse_list(const char *s, int *out, int max)
{
  int n = 0;
  for (char *end; *s && n < max; s = *end ? end + 1 : end)
    out[n++] = (int)strtol(s, &end, 10);
  return n;
}

int main(int argc, char **argv)
{
  Shape sizes[16] = {{256, 256, 256}, {512, 512, 512}, {1024, 1024, 1024},
                     {2048, 2048, 2048}};
  int nsizes = 4, threads[8] = {1, 2}, nthreads = 2;
  Bench bb = {0};
  for (int i = 1; i + 1 < argc; i += 2) {
    int v = atoi(argv[i + 1]);
    if (!strcmp(argv[i], "-s"))
      nsizes = parse_shapes(argv[i + 1], sizes, 16);
    else if (!strcmp(argv[i], "-t"))
      nthreads = parse_list(argv[i + 1], threads, 8);
    else if (!strcmp(argv[i], "-r"))
      bb.reps = v;
    else if (!strcmp(argv[i], "--mr"))
      bb.spec.mr = v;
    else if (!strcmp(argv[i], "--nr"))
      bb.spec.nr = v;
    else if (!strcmp(argv[i], "--kc"))
      bb.spec.kc = v;
    else if (!strcmp(argv[i], "--mc"))
      bb.spec.mc = v;
    else if (!strcmp(argv[i], "--nc"))
      bb.spec.nc = v;
    else {
      fprintf(stderr, "gemm_bench: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  CgTarget t;
  double gen_secs = 0;
  bb.fn = build_kernel(&bb.spec, &t, &gen_secs, &bb.set_threads);
  if (!bb.fn || !bb.set_threads)
    return 1;
  GemmBlocking bk;
  cg_gemm_blocking(&bb.spec, &bk);
  printf("nnc: cpu %s, %d floats x %d regs, MR %d NR %d KC %d MC %d NC %d "
         "(generated in %.2f s)\n", t.cpu, t.vec_floats, t.vec_regs, bk.mr, bk.nr, bk.kc,
         bk.mc, bk.nc, gen_secs);
  printf("OpenBLAS: %s, core %s\n", openblas_get_config(), openblas_get_corename());
  printf("%14s %7s %10s %12s %7s %5s   %s\n", "size", "threads", "nnc GF/s", "OpenBLAS GF/s",
         "ratio", "runs", "max|diff|/max|C|");
  int bad = 0;
  for (int i = 0; i < nsizes; i++) {
    Shape sh = sizes[i];
    size_t na = (size_t)sh.m * (size_t)sh.k, nb = (size_t)sh.k * (size_t)sh.n;
    size_t nc = (size_t)sh.m * (size_t)sh.n;
    bb.a = falloc(na), bb.b = falloc(nb), bb.c1 = falloc(nc), bb.c2 = falloc(nc);
    bb.work = falloc((size_t)cg_gemm_work_floats(&bb.spec, sh.m, sh.n, sh.k, 2));
    unsigned seed = 12345;
    for (size_t j = 0; j < na; j++)
      bb.a[j] = (float)rand_r(&seed) / RAND_MAX - 0.5f;
    for (size_t j = 0; j < nb; j++)
      bb.b[j] = (float)rand_r(&seed) / RAND_MAX - 0.5f;
    for (int j = 0; j < nthreads; j++)
      bad |= bench_one(&bb, sh, threads[j]);
    free(bb.a), free(bb.b), free(bb.c1), free(bb.c2), free(bb.work);
  }
  cg_target_free(&t);
  if (bad)
    fprintf(stderr, "gemm_bench: nnc and OpenBLAS results differ\n");
  return bad;
}
