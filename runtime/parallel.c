/*
** parallel.c: the parallel-for that generated kernels call with outlined
** loop bodies.  A static split of [0, n) into one contiguous chunk per
** OpenMP thread: chunk t of T is [t*n/T, (t+1)*n/T), so which iterations a
** thread runs depends only on n and T.
*/
#include "internal.h"

#include <omp.h>

void nnrt_parallel_for_grain(int64_t n, int64_t grain, NnrtBody *body,
                             void *ctx) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int64_t T = omp_get_max_threads();
  if (T > n / grain) T = n / grain;
  if (T < 2 || omp_in_parallel()) {
    body(0, n, ctx);
    return;
  }
#pragma omp parallel num_threads((int)T)
  {
    int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    /* t * n cannot overflow: n < 2^63 / T is not guaranteed, so split. */
    int64_t b = n / nt * t + n % nt * t / nt;
    int64_t e = n / nt * (t + 1) + n % nt * (t + 1) / nt;
    if (e > b) body(b, e, ctx);
  }
}

void nnrt_parallel_for(int64_t n, NnrtBody *body, void *ctx) {
  nnrt_parallel_for_grain(n, 1, body, ctx);
}

void nnrt_set_threads(int n) {
  omp_set_num_threads(n > 0 ? n : omp_get_num_procs());
}

int nnrt_get_threads(void) { return omp_get_max_threads(); }
