/*
** This file contains the tensor IR of nnc: dtypes, tensor types with static
** (or bounded symbolic) shapes, SSA values, nodes, blocks, functions and the
** module, plus the builder API and the entry points of the printer, parser,
** verifier, shape rules and reference interpreter.
**
** Ownership: every object of a module lives in IrModule.arena.  Nothing is
** freed one by one; passes unlink nodes (ir_node_remove) and the verifier
** checks that nothing still refers to them.
**
** The IR knows nothing about the AST or LLVM.
*/
#ifndef NNC_IR_H
#define NNC_IR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "srcloc.h"

/* ---------------------------------------------------------------- dtypes */

typedef enum DType {
  DT_F32, DT_F16, DT_BF16, DT_F64, DT_I32, DT_I64, DT_U8, DT_BOOL,
  DT_COUNT
} DType;

const char *ir_dtype_name(DType t);          /* "f32" ... */
bool ir_dtype_parse(const char *s, DType *out); /* false when not a dtype */
int ir_dtype_size(DType t);                  /* bytes per element */
bool ir_dtype_is_float(DType t);
bool ir_dtype_is_int(DType t);               /* i32 i64 u8 (not bool) */

/* ----------------------------------------------------------------- types */

#define IR_MAX_RANK 8
#define IR_NO_SYM (-1)

/* A tensor type dtype[d0, ..., dn-1].  Every dimension has a size; a
** dimension may also carry a symbol (an index into IrModule.syms, e.g. the
** batch B), in which case size is the symbol's value or upper bound and the
** printer shows the symbol's name.  rank 0 is a scalar. */
typedef struct IrType {
  DType dtype;
  int rank;
  int64_t dim[IR_MAX_RANK];
  int16_t sym[IR_MAX_RANK]; /* IR_NO_SYM or index into IrModule.syms */
} IrType;

IrType ir_type_scalar(DType t);
IrType ir_type_make(DType t, int rank, const int64_t *dims); /* no symbols */
int64_t ir_type_numel(const IrType *t);
bool ir_type_eq(const IrType *a, const IrType *b); /* dtype and sizes */
bool ir_shape_eq(const IrType *a, const IrType *b); /* sizes only */

/* A dimension symbol: a named dimension variable kept symbolic in the IR,
** with its value (static builds) or upper bound (dynamic batch). */
typedef struct IrSym {
  const char *name;
  int64_t value;
  bool bounded; /* true: value is an upper bound, the run-time size may be less */
} IrSym;

/* ------------------------------------------------------------ attributes */

typedef enum IrAttrKind {
  ATTR_INT, ATTR_FLOAT, ATTR_BOOL, ATTR_STR, ATTR_INTS, ATTR_FLOATS,
  ATTR_STRS,
  ATTR_DTYPE, ATTR_SYM, /* a bare identifier, e.g. average = polyak */
  ATTR_CALL,            /* name {attrs}, e.g. optimizer = adamw {lr = 0.001} */
  ATTR_FUNC             /* @name of a function of the module */
} IrAttrKind;

typedef struct IrAttr IrAttr;

/* A named attribute.  Lists of attributes are kept sorted by name (the
** printer relies on it; ir_attr_set keeps the order). */
struct IrAttr {
  const char *name; /* interned */
  IrAttrKind kind;
  int64_t i;        /* INT, BOOL, DTYPE */
  double f;         /* FLOAT */
  const char *s;    /* STR, SYM, CALL (callee), FUNC */
  int n;            /* INTS/FLOATS/STRS length, CALL: number of args */
  int64_t *ints;
  double *floats;
  const char **strs;
  IrAttr *args;     /* CALL: sorted attributes */
};

typedef struct IrAttrs {
  IrAttr *v;
  int n;
} IrAttrs;

/* ------------------------------------------------------------------- ops */

/* Op flags (the fourth column of ops.def). */
enum {
  OPF_DIFF = 1 << 0,     /* differentiable: has a gradient rule */
  OPF_FUSABLE = 1 << 1,  /* elementwise: may join a fused loop nest */
  OPF_REDUCE = 1 << 2,   /* reduction over `axes` */
  OPF_BCAST = 1 << 3,    /* n-ary elementwise with NumPy broadcasting */
  OPF_REGION = 1 << 4,   /* owns a body block (scan) */
  OPF_RANDOM = 1 << 5,   /* draws random numbers: never CSE'd or folded */
  OPF_NOGRAD = 1 << 6,   /* output is piecewise constant: zero gradient */
  OPF_TYPED = 1 << 7,    /* result type given by the builder, checked by ir_infer */
};

typedef enum IrOp {
#define OP(id, name, minargs, maxargs, flags) IR_OP_##id,
#include "ops.def"
#undef OP
  IR_OP_COUNT
} IrOp;

typedef struct IrOpInfo {
  const char *name;
  int min_args, max_args; /* max_args -1: variadic */
  unsigned flags;
} IrOpInfo;

extern const IrOpInfo ir_op_info[IR_OP_COUNT];
bool ir_op_lookup(const char *name, IrOp *out);

/* ------------------------------------------------------- values and nodes */

typedef struct IrValue IrValue;
typedef struct IrNode IrNode;
typedef struct IrBlock IrBlock;
typedef struct IrFunc IrFunc;
typedef struct IrModule IrModule;

typedef enum IrValueKind {
  IRV_RESULT, /* result `idx` of node `def` */
  IRV_ARG,    /* argument `idx` of block `block` */
  IRV_GLOBAL  /* a parameter or state of the module: `@name` */
} IrValueKind;

/* An SSA value.  Its type never changes after creation except by a pass
** that rewrites it on purpose (precision assignment). */
struct IrValue {
  IrValueKind kind;
  IrType type;
  int idx;
  IrNode *def;         /* RESULT */
  IrBlock *block;      /* ARG */
  struct IrGlobal *global; /* GLOBAL */
  const char *name;    /* ARG: the source name (printed as %name); else NULL */
  int id;              /* scratch numbering (printer, passes) */
};

/* An operation.  Nodes of a block form a doubly linked list in a valid
** topological order.  A node may have several results (scan, split). */
struct IrNode {
  IrOp op;
  int nargs;
  IrValue **args;
  int nres;
  IrValue **res;
  IrAttrs attrs;
  IrBlock *body;       /* OPF_REGION ops only */
  SrcLoc loc;          /* source expression that made the node; may be 0 */
  IrBlock *parent;
  IrNode *prev, *next;
  int id;              /* scratch numbering */
};

/* A straight-line block: arguments, nodes, returned values.  A block's nodes
** may use values of enclosing blocks (scan bodies capture freely). */
struct IrBlock {
  int nargs;
  IrValue **args;
  IrNode *first, *last;
  int nrets;
  IrValue **rets;
  IrNode *owner;       /* the region node, or NULL for a function body */
  IrFunc *func;
};

/* A function: a named block whose results carry names (output names,
** "loss", "metric.accuracy", or "@state.name" for a state update). */
struct IrFunc {
  const char *name;    /* without '@' */
  IrBlock *body;
  const char **ret_names; /* body->nrets entries */
  IrFunc *next;
};

typedef enum IrGlobalKind { IRG_PARAM, IRG_STATE } IrGlobalKind;

/* A parameter (trained) or state (updated by training, not trained). */
typedef struct IrGlobal {
  IrGlobalKind kind;
  const char *name;    /* hierarchical: "block.3.attn.qkv.w" */
  IrType type;
  const char *init;    /* initialiser name: "zeros", "glorot_uniform", ... */
  IrAttrs init_attrs;  /* e.g. {std = 0.02} */
  IrValue *value;      /* the IRV_GLOBAL value */
  SrcLoc loc;
  struct IrGlobal *next;
} IrGlobal;

/* The training configuration from a `train` block: an ordered list of
** settings; see docs/internals.md for the keys. */
typedef struct IrTrain {
  const char *model;
  IrAttrs settings;    /* sorted by key */
} IrTrain;

struct IrModule {
  Arena *arena;
  StrTab *strs;
  const char *name;    /* model name */
  int nsyms;
  IrSym *syms;         /* grows by ir_sym_add */
  IrGlobal *globals, *globals_last;
  IrFunc *funcs, *funcs_last;
  IrTrain *train;      /* NULL when there is no train block */
};

/* --------------------------------------------------------------- builder */

IrModule *ir_module_new(const char *name);
void ir_module_free(IrModule *m);
int ir_sym_add(IrModule *m, const char *name, int64_t value, bool bounded);
int ir_sym_find(const IrModule *m, const char *name); /* -1 when absent */
IrGlobal *ir_global_add(IrModule *m, IrGlobalKind k, const char *name,
                        IrType t, const char *init, SrcLoc loc);
IrGlobal *ir_global_find(const IrModule *m, const char *name);
IrFunc *ir_func_new(IrModule *m, const char *name);
IrFunc *ir_func_find(const IrModule *m, const char *name);
void ir_func_remove(IrModule *m, IrFunc *f);
/* Set the returned values of f's body and their names (interned copies). */
void ir_func_set_rets(IrModule *m, IrFunc *f, int n, IrValue **rets,
                      const char *const *names);

IrBlock *ir_block_new(IrModule *m, IrFunc *f);
IrValue *ir_block_add_arg(IrModule *m, IrBlock *b, IrType t, const char *name);
void ir_block_set_rets(IrModule *m, IrBlock *b, int n, IrValue **rets);

/* Create a node of op with the given operands and result types and append
** it at the end of block b (b may be NULL: the node is detached).  Result
** types are taken as given: callers use ir_infer() first. */
IrNode *ir_node_new(IrModule *m, IrBlock *b, IrOp op, int nargs,
                    IrValue **args, int nres, const IrType *res, SrcLoc loc);
/* Convenience: infer the single result type (for OPF_TYPED ops, check
** *want, which must be non-NULL), build the node with a copy of attrs,
** append it to b and return its result.  On a shape error returns NULL and
** sets *err (a string in m->arena) and *bad_arg (may be NULL). */
IrValue *ir_build(IrModule *m, IrBlock *b, IrOp op, int nargs, IrValue **args,
                  const IrAttrs *attrs, const IrType *want, SrcLoc loc,
                  const char **err, int *bad_arg);
void ir_node_insert_before(IrNode *pos, IrNode *n);
void ir_node_append(IrBlock *b, IrNode *n);
void ir_node_remove(IrNode *n); /* unlink; the node must have no uses */
/* Replace every use of `from` (operands and block returns, in all blocks of
** the function) by `to`. */
void ir_replace_uses(IrFunc *f, IrValue *from, IrValue *to);

/* Attributes.  Setting keeps the list sorted by name. */
void ir_attr_set_int(IrModule *m, IrAttrs *a, const char *name, int64_t v);
void ir_attr_set_float(IrModule *m, IrAttrs *a, const char *name, double v);
void ir_attr_set_bool(IrModule *m, IrAttrs *a, const char *name, bool v);
void ir_attr_set_str(IrModule *m, IrAttrs *a, const char *name, const char *s);
void ir_attr_set_sym(IrModule *m, IrAttrs *a, const char *name, const char *s);
void ir_attr_set_ints(IrModule *m, IrAttrs *a, const char *name, int n,
                      const int64_t *v);
void ir_attr_set_floats(IrModule *m, IrAttrs *a, const char *name, int n,
                        const double *v);
void ir_attr_set_strs(IrModule *m, IrAttrs *a, const char *name, int n,
                      const char *const *v);
void ir_attr_set(IrModule *m, IrAttrs *a, const IrAttr *attr); /* copies */
const IrAttr *ir_attr_get(const IrAttrs *a, const char *name);
int64_t ir_attr_int(const IrAttrs *a, const char *name, int64_t dflt);
double ir_attr_float(const IrAttrs *a, const char *name, double dflt);
bool ir_attr_bool(const IrAttrs *a, const char *name, bool dflt);

/* ------------------------------------------------------------ shape rules */

/* The type rule of every op (ir/shape.c): given operand types and
** attributes, compute the result types.  Returns the number of results
** (>= 1) and fills res[], or returns 0 and sets *err to a message naming
** the disagreement (e.g. "inner dimensions differ (784 vs 512)"); *bad_arg
** is set to the index of the operand at fault, or -1.  For OPF_TYPED ops
** res[0] holds the requested type on entry.  Shapes are printed
** with symbol names when m is non-NULL.  REGION ops (scan) are typed by
** their builder, not here. */
int ir_infer(const IrModule *m, IrOp op, int nargs, const IrType *args,
             const IrAttrs *attrs, IrType *res, int maxres, const char **err,
             int *bad_arg, Arena *scratch);

/* Check a scan node against its body (the rule in ops.def: body arguments
** are the carries then the sequence slices, yields the new carries then
** the emitted values; results the final carries then the emitted values
** stacked along axes[0]).  NULL when well typed, else a message in a. */
const char *ir_scan_check(const IrModule *m, const IrNode *n, Arena *a);

/* NumPy broadcasting of two shapes; false when incompatible. */
bool ir_broadcast(const IrType *a, const IrType *b, IrType *out);
/* Normalise a possibly negative axis against rank; false if out of range. */
bool ir_axis(int64_t axis, int rank, int *out);

/* ---------------------------------------------------- text, verify, interp */

typedef struct IrPrintOpts {
  bool locs; /* print loc("file":line:col) */
} IrPrintOpts;

/* Type text: "f32[B,784]" (with symbol names when m is non-NULL). */
char *ir_type_str(Arena *a, const IrModule *m, const IrType *t);
void ir_print_module(FILE *out, const IrModule *m, const IrPrintOpts *o);
void ir_print_func(FILE *out, const IrModule *m, const IrFunc *f,
                   const IrPrintOpts *o);

/* Parse .nnir text.  On error returns NULL and writes
** "file:line:col: error: ..." to *err (malloc'd by the caller's arena). */
IrModule *ir_parse(const char *filename, const char *text, size_t len,
                   Arena *errarena, const char **err);

/* Check the invariants of docs/internals.md (types agree with ir_infer,
** SSA dominance, use of values only from the same or enclosing blocks,
** unique names, no reference to removed nodes).  Returns true when valid;
** otherwise writes one line per problem to errs (may be NULL). */
bool ir_verify(const IrModule *m, FILE *errs);

/* A host tensor for the interpreter: data in the given dtype, contiguous,
** row-major.  f32/f64/i32/i64/u8/bool buffers; f16/bf16 stored as f32
** (holding a value of that format); bool and u8 one byte each.  When
** IrInterpOpts.f64 is true every float dtype is stored as double, inputs
** and globals included.  ir_interp_elem_size() gives the element size. */
typedef struct IrTensor {
  IrType type;
  void *data;
} IrTensor;

typedef struct IrInterpOpts {
  bool f64;           /* compute floats in f64 (gradient checks) */
  bool training;
  uint64_t seed;      /* for random ops */
  uint64_t step;
} IrInterpOpts;

/* The scalar function of an elementwise (OPF_FUSABLE) op on doubles, as the
** interpreter computes it; false for other ops.  Used by constant folding.
** cast is not covered (false): apply ir_interp_round() for the target. */
bool ir_interp_scalar(IrOp op, const IrAttrs *attrs, int nargs,
                      const double *x, double *out);
/* x converted to the values of dtype t as the f32-mode interpreter does
** after every op: f32/f16/bf16 round to nearest even (overflow to inf),
** f64 unchanged, ints truncate toward 0 and saturate (NaN -> 0), bool is
** x != 0. */
double ir_interp_round(DType t, double x);
/* Bytes per element of an interpreter host tensor of dtype t (see
** IrTensor). */
int ir_interp_elem_size(DType t, bool f64);
/* True when the interpreter has a kernel for op (tests walk IR_OP_COUNT). */
bool ir_interp_has_kernel(IrOp op);
/* Philox4x32-10 (Random123's philox4x32_R(10, ctr, key)), and the uniform
** [0,1) value the rand op draws for element i of a node with attribute
** seed `stream`, run with opts seed and step (see ir/interp.c). */
void ir_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                      uint32_t out[4]);
double ir_interp_uniform(uint64_t seed, uint64_t stream, uint64_t step,
                         uint64_t i);

/* Run function f on inputs (one per argument of f, in order) with the
** module's globals bound to globals[] (in module order; NULL entries are an
** error).  Allocates outputs in arena a; outs[] receives one per return.
** Returns false with *err set on a run-time error (e.g. label out of
** range). */
bool ir_interp(const IrModule *m, const IrFunc *f, const IrTensor *inputs,
               const IrTensor *globals, IrTensor *outs, const IrInterpOpts *o,
               Arena *a, const char **err);

#endif
