/*
** This file contains the private interface between the files of the
** reference interpreter (ir/interp*.c): the tensor record the kernels work
** on, the interpreter state, the kernel signature and the helpers (index
** math, broadcasting, attributes, rounding) that every family shares.
** Nothing outside ir/interp*.c includes it.
*/
#ifndef NNC_INTERP_INT_H
#define NNC_INTERP_INT_H

#include "ir.h"

/* A tensor inside the interpreter: every element held as a double, whatever
** the dtype.  Values of a float dtype are already rounded to that dtype
** (unless the run is in f64 mode); integer and bool values are exact
** integers (i64 exactly only within +-2^53). */
typedef struct Ten {
  IrType type; /* sizes with the symbols of the run bound */
  int64_t n;   /* number of elements */
  double *d;   /* n values, contiguous, row-major */
} Ten;

typedef struct ValMap ValMap;

typedef struct Interp {
  const IrModule *m;
  const IrInterpOpts *o;
  Arena *out;     /* the caller's arena: outputs and the error text */
  Arena *scratch; /* lives as long as the call */
  Arena *tmp;     /* where the tensors of the block being run go */
  int64_t *symval; /* run-time value of each dimension symbol */
  ValMap *map;    /* IrValue -> Ten, outer blocks included */
  const char *err;
} Interp;

/* A kernel: compute the results y[0..n->nres) (types set, data zeroed) of
** node n from its operands x[0..n->nargs).  Returns false with in->err set
** on a run-time error.  The caller rounds the results to their dtypes. */
typedef bool KernelFn(Interp *in, const IrNode *n, Ten *const *x, Ten *y);

/* ---- helpers (interp.c) ---- */
bool interp_fail(Interp *in, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Normalise axis against rank; false (and an error naming op) if outside. */
bool interp_axis(Interp *in, const IrNode *n, int64_t axis, int rank, int *out);
/* Row-major strides of t. */
void interp_strides(const IrType *t, int64_t *st);
/* Strides of `in` seen through NumPy broadcasting to `out` (out->rank
** entries, 0 on broadcast dimensions). */
void interp_bcast_strides(const IrType *in, const IrType *out, int64_t *st);
/* True when `in` broadcasts to exactly `out` (NumPy rules). */
bool interp_bcast_ok(const IrType *in, const IrType *out);
/* NumPy broadcast of two shapes (symbols dropped); false if incompatible. */
bool interp_bcast_shape(const IrType *a, const IrType *b, IrType *out);
/* Offset, under strides st, of the element with row-major index i of out. */
int64_t interp_bcast_off(int64_t i, const IrType *out, const int64_t *st);
/* An int or ints attribute read as rank values (an int repeats); false
** when the list has another length. */
bool interp_attr_ivec(Interp *in, const IrNode *n, const char *name, int rank,
                      int64_t dflt, int64_t *out);
/* Allocate n doubles (zeroed) in the current tensor arena. */
double *interp_alloc(Interp *in, int64_t n);
/* Product of dims [lo, hi) of t. */
int64_t interp_dims(const IrType *t, int lo, int hi);

/* ---- numerics (interp_ew.c) ---- */
double interp_round(DType t, bool f64, double x);
double interp_sigmoid(double x);
double interp_softplus(double x, double beta, double threshold);
double interp_gelu(double x);
double interp_silu(double x);

/* ---- kernels, by family ---- */
/* interp_ew.c: elementwise and reductions */
KernelFn interp_run_unary, interp_run_binary, interp_run_where,
    interp_run_cast, interp_run_reduce, interp_run_argmax, interp_run_glu;
/* interp_shape.c */
KernelFn interp_run_constant, interp_run_causal_mask, interp_run_rand,
    interp_run_iota, interp_run_reshape, interp_run_transpose,
    interp_run_broadcast, interp_run_concat, interp_run_slice, interp_run_pad,
    interp_run_stack, interp_run_one_hot, interp_run_gather;
/* interp_nn.c */
KernelFn interp_run_matmul, interp_run_softmax, interp_run_attention,
    interp_run_conv, interp_run_conv_transpose2d, interp_run_pool2d,
    interp_run_upsample_nearest, interp_run_upsample_bilinear,
    interp_run_pixel_shuffle, interp_run_max_pool2d_grad;
/* interp_loss.c */
KernelFn interp_run_cross_entropy, interp_run_nll, interp_run_pointwise_loss,
    interp_run_soft_accuracy, interp_run_soft_f1, interp_run_accuracy,
    interp_run_f1, interp_run_top_k;

#endif
