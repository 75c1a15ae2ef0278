/*
** This file contains the private interfaces between the files of the
** frontend's checker and lowerer: compile-time values, scopes, the global
** definition table and the lowering context.
**
**   frontend.c  loads files and imports, -D, picks the model, drives lowering
**   sema.c      values, scopes, compile-time evaluation helpers, types and
**               unification, diagnostics helpers
**   lower.c     statements and expressions to IR, layers, scan, models, train
**   builtins.c  the table of built-in operations and their lowering
**
** Everything here lives in Sema.arena (freed at the end of frontend_compile);
** the IR lives in the module's arena.
*/
#ifndef NNC_SEMA_H
#define NNC_SEMA_H

#include "../ir/ir.h"
#include "ast.h"
#include "frontend.h"

/* A value during lowering: compile-time scalar/string/list, or a tensor. */
typedef enum VKind {
  V_NONE,   /* no value (a function without return) */
  V_POISON, /* the result of a failed expression: errors were reported */
  V_INT,
  V_FLOAT,
  V_BOOL,
  V_STR,
  V_LIST,   /* list or tuple of values */
  V_TENSOR
} VKind;

typedef struct Value Value;
struct Value {
  VKind k;
  bool is_tuple;
  int sym;               /* V_INT: dimension symbol (IrModule.syms) or IR_NO_SYM */
  int64_t i;             /* V_INT, V_BOOL */
  double f;              /* V_FLOAT */
  const char *s;         /* V_STR */
  int n;                 /* V_LIST */
  Value **elems;
  IrValue *t;            /* V_TENSOR */
  IrGlobal *global;      /* V_TENSOR of a param/state */
  const char *decl_name; /* V_TENSOR: named param/state/input; V_INT: the
                            dimension variable's name */
  const char *decl_what; /* "param", "state", "input", "argument" */
  SrcLoc decl_loc;
  const char *bound_from;/* V_INT dimension variable: argument that bound it */
  SrcLoc bound_loc;
};

/* A name binding in a scope. */
typedef struct Binding {
  const char *name;
  Value *v;
  SrcLoc loc;
  struct Binding *next;
} Binding;

typedef struct Scope {
  struct Scope *parent;
  Binding *b;
  bool func_top; /* lookups of locals stop here */
  bool scan_top; /* the body of a scan */
} Scope;

/* A global definition: fn, layer, model or const. */
typedef struct Def {
  const char *name;
  AstNode *node;
  Value *cval;  /* const: the evaluated value */
  int state;    /* const: 0 not evaluated, 1 evaluating, 2 done */
} Def;

/* A -D NAME=VALUE definition. */
typedef struct Define {
  const char *name;
  Value *v;
  bool used;
} Define;

typedef struct Sema {
  Diag *d;
  const FrontendOpts *o;
  Arena *a;
  Vec progs;    /* AstProgram* */
  Vec defs;     /* Def* */
  Vec trains;   /* AstNode* (AST_TRAIN) */
  Define *defines;
  int ndefines;
  IrModule *m;
} Sema;

/* A layer/fn instantiation frame. */
typedef struct Frame {
  struct Frame *parent;
  AstNode *decl;        /* AST_FN / AST_LAYER, NULL for a model */
  Value *ret;
  SrcLoc ret_loc;       /* the returned expression */
  SrcLoc call_loc;      /* the call that instantiated the body */
  bool returned;
  bool err_at_call;     /* an error was reported at call_loc itself */
  const char *path;     /* parameter scope prefix ("" at the model root) */
  Vec counts;           /* call counters of layers in this scope: pairs
                           (name, (intptr_t)count) */
  int depth;
} Frame;

/* A scan being lowered. */
typedef struct ScanCtx {
  struct ScanCtx *parent;
  Value **emitted;
  AstNode **emit_nodes;
  int nemit;
  bool has_emit;
} ScanCtx;

typedef enum LowerMode { LM_FORWARD, LM_LOSS, LM_EVAL, LM_LR, LM_CONST } LowerMode;

typedef struct Lower {
  Sema *S;
  IrModule *m;
  IrFunc *fn;
  IrBlock *blk;
  LowerMode mode;
  bool training;
  Scope *scope;
  Frame *frame;
  ScanCtx *scan;
  int rand_count;
  Vec made_globals;   /* pairs (IrGlobal*, SrcLoc* of the making call) */
  Vec updates;        /* pairs (IrGlobal*, Value*) */
  int chain_errs;     /* nerrors when the last "in this call" note was made */
  int chain_n;        /* such notes for that error */
  SrcLoc chain_last;
} Lower;

/* ---- sema.c: values ---- */
Value *sema_poison(Sema *S);
Value *sema_none(Sema *S);
Value *sema_int(Sema *S, int64_t i);
Value *sema_float(Sema *S, double f);
Value *sema_bool(Sema *S, bool b);
Value *sema_str(Sema *S, const char *s);
Value *sema_list(Sema *S, int n, bool tuple);
Value *sema_tensor(Sema *S, IrValue *t);
bool sema_is_num(const Value *v); /* int or float */
double sema_num(const Value *v);
const char *sema_kind_name(const Value *v);
const char *sema_value_str(Sema *S, const Value *v);

/* ---- sema.c: scopes ---- */
Scope *sema_scope_push(Lower *L, bool func_top);
void sema_scope_pop(Lower *L, Scope *saved);
void sema_bind(Lower *L, const char *name, Value *v, SrcLoc loc);
/* Local lookup up to the function boundary; NULL when absent. */
Binding *sema_lookup_local(Lower *L, const char *name, bool *crossed_scan);
/* Full lookup: locals, `training`, consts; NULL when absent. */
Value *sema_lookup(Lower *L, const char *name, SrcLoc loc);
Def *sema_def_find(Sema *S, const char *name);
Value *sema_const_value(Sema *S, Def *def);

/* ---- sema.c: types ---- */
/* Type text with bound dimension variables: f32[B=128,784]. */
const char *sema_type_str(Lower *L, const IrType *t);
/* Plain type text as the IR prints it: f32[B,784]. */
const char *sema_type_plain(Lower *L, const IrType *t);
bool sema_types_same(const IrType *a, const IrType *b);
/* Evaluate a tensor type written in the source (no `...`).  False after
** reporting an error. */
bool sema_eval_type(Lower *L, AstNode *type, IrType *out);
/* Unify the declared type of argument arg (in the callee's scope, which is
** L->scope) with the actual value; binds dimension variables.  False after
** an error. */
bool sema_unify_arg(Lower *L, AstNode *arg, Value *actual, AstNode *actual_node,
                    SrcLoc call_loc);
/* Check a returned value against the declared return type. */
bool sema_check_return(Lower *L, AstNode *type, Value *v, SrcLoc loc);
bool sema_is_dimvar_name(const char *name);

/* ---- sema.c: diagnostics ---- */
/* Report a failed ir_build: "OP: MSG: x is T, operand 2 is T" + notes. */
void sema_shape_error(Lower *L, IrOp op, const char *err, int bad, int n,
                      Value **vals, AstNode **nodes, SrcLoc loc);
void sema_note_decl(Lower *L, const Value *v);

/* ---- lower.c ---- */
Value *sema_expr(Lower *L, AstNode *e);
Value *sema_const_expr(Sema *S, AstNode *e); /* evaluate with no function */
/* Build one IR op; reports errors; returns poison on failure. */
Value *sema_build(Lower *L, IrOp op, int n, Value **vals, AstNode **nodes,
                  const IrAttrs *attrs, const IrType *want, SrcLoc loc);
/* A scalar constant tensor. */
Value *sema_const_tensor(Lower *L, double v, DType dt, SrcLoc loc);
/* Turn a number into a tensor of dtype dt (tensors pass through). */
Value *sema_as_tensor(Lower *L, Value *v, DType dt, SrcLoc loc);
Value *sema_cast(Lower *L, Value *v, DType dt, SrcLoc loc);
/* Binary arithmetic on values (compile-time or tensors). */
Value *sema_binop(Lower *L, AstOp op, Value *a, Value *b, AstNode *na,
                  AstNode *nb, SrcLoc loc);
Value *sema_unop_ir(Lower *L, IrOp op, Value *a, AstNode *na, SrcLoc loc);

/* ---- builtins.c ---- */
bool sema_builtin_exists(const char *name);
/* Lower a call of built-in `name`; args already evaluated (positional
** then named as given in call->list). */
Value *sema_builtin_call(Lower *L, const char *name, AstNode *call,
                         Value **args, int nargs);

/* ---- lower.c: entry points used by frontend.c ---- */
void sema_lower_model(Sema *S, AstNode *model, AstNode *train);

#endif
