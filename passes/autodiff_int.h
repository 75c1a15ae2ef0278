/*
** This file contains the private interface between the two files of the
** autodiff pass: passes/autodiff.c (the pass: cloning @loss, activity,
** the reverse walk, scan) and passes/autodiff_rules.c (the gradient rule of
** every op, in one table indexed by op).  Only those two files and the
** unit test include it.
*/
#ifndef NNC_AUTODIFF_INT_H
#define NNC_AUTODIFF_INT_H

#include "pass.h"

/* A map from IrValue* to IrValue* in the pass's scratch arena. */
typedef struct AdMap {
  const IrValue **keys;
  IrValue **vals;
  int64_t cap, len;
} AdMap;

/* The state of one run of the pass.  New nodes are appended to blk with
** location loc (the node being differentiated). */
typedef struct Ad {
  IrModule *m;
  IrFunc *f;        /* the function being built (@loss_grad) */
  PassCtx *cx;
  Arena *a;         /* cx->scratch */
  IrBlock *blk;
  SrcLoc loc;
  AdMap *active;    /* values that depend on a parameter (float only) */
  bool failed;
} Ad;

/* A gradient rule: given node n and the gradients dy[r] of its results
** (NULL: no gradient reaches result r), set dx[i] for each operand i with
** ad_active(ad, n->args[i]) (others may stay NULL).  Every dx[i] has the
** type of operand i.  Returns false after reporting an unsupported case. */
typedef bool GradFn(Ad *ad, const IrNode *n, IrValue *const *dy, IrValue **dx);

/* The rule of op, or NULL (OPF_NOGRAD ops and scan, which autodiff.c
** handles itself). */
GradFn *autodiff_rule(IrOp op);

/* ---- helpers (autodiff.c) ---- */
void ad_map_init(Arena *a, AdMap *mp, int64_t cap);
void ad_map_put(Arena *a, AdMap *mp, const IrValue *k, IrValue *v);
IrValue *ad_map_get(const AdMap *mp, const IrValue *k);
bool ad_active(const Ad *ad, const IrValue *v);
bool ad_fail(Ad *ad, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Build op over args with attrs (NULL: none) into ad->blk; want is the
** result type of OPF_TYPED ops.  A shape error is a compiler bug. */
IrValue *ad_op(Ad *ad, IrOp op, int nargs, IrValue **args, const IrAttrs *at,
               const IrType *want);
IrValue *ad_un(Ad *ad, IrOp op, IrValue *x);
IrValue *ad_bin(Ad *ad, IrOp op, IrValue *x, IrValue *y);
IrValue *ad_where(Ad *ad, IrValue *c, IrValue *x, IrValue *y);
/* A scalar constant v of dtype t, and a constant of the full type t. */
IrValue *ad_scalar(Ad *ad, double v, DType t);
IrValue *ad_const(Ad *ad, double v, const IrType *t);
IrValue *ad_reshape(Ad *ad, IrValue *x, const IrType *t);
IrValue *ad_broadcast(Ad *ad, IrValue *x, const IrType *t);
IrValue *ad_cast(Ad *ad, IrValue *x, DType t);
IrValue *ad_transpose(Ad *ad, IrValue *x, int rank, const int64_t *perm);
/* Swap the last two axes (rank >= 2). */
IrValue *ad_mT(Ad *ad, IrValue *x);
/* sum over axes (count n) keeping dims or not. */
IrValue *ad_sum(Ad *ad, IrValue *x, int n, const int64_t *axes, bool keep);
IrValue *ad_slice(Ad *ad, IrValue *x, int axis, int64_t start, int64_t end,
                  int64_t step);
IrValue *ad_pad(Ad *ad, IrValue *x, int n, const int64_t *pads);
/* g (the gradient of a broadcast result) summed back to type t. */
IrValue *ad_unbroadcast(Ad *ad, IrValue *g, const IrType *t);

#endif
