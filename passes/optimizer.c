/*
** This file contains the optimizer pass: it turns @loss_grad (from autodiff)
** and the train block's settings into @train_step, one function in which
** the learning-rate schedule, global-norm clipping, the update rule of the
** optimizer (sgd, adam, adamw, adamw_paper, rmsprop, adagrad, lion) and the
** weight averaging (ema, polyak) are ordinary IR, so they fuse and lower
** like the rest.  The optimizer's moments, its step counter and the
** averaged weights become module states, saved with the model.
**
** Position: after autodiff, before the second canonicalize.
** Requires: a verified module; @loss_grad with the arguments of @loss and
**   the results loss, @loss's state updates, then grad.<param> for each
**   param in module order (autodiff's contract).  Does nothing when the
**   module has no train block or no @loss_grad.  When @train_step exists
**   already, the module was expanded before: a @loss_grad beside it (which
**   autodiff re-derives from @loss when the pipeline runs again on a
**   printed module) is removed, so the pipeline is idempotent.
** Preserves: @forward, @loss, @eval_step, @lr; existing globals.
** Invalidates: @loss_grad, which becomes @train_step (renamed in place and
**   extended: no node is copied, so scans of the backward pass stay put).
**
** The function built (docs/internals.md, "optimizer", is the contract):
**
**   func @train_step(<args of @loss_grad>, %epoch: f32[], %total_steps: f32[])
**       -> (loss: f32[], lr: f32[], @<state of @loss>..., @<param>...,
**           @opt.step: i64[], @opt.<kind>.<param>..., @avg.<param>...) {
**     <body of @loss_grad>
**     %s = cast @opt.step : f32[]                ; 0-based step
**     %lr = <body of @lr inlined on (%s, %epoch, %total_steps)>
**     ...clip, update, average...
**   }
**   func @average() -> (@<param>: ...)           ; only with `average`
**
** Example (sgd, lr 0.1, no schedule), the update of one param @w:
**   %n = mul %lr, %grad.w : f32[4,4]
**   %w1 = sub @w, %n : f32[4,4]
**   return %loss, %lr, %w1, %step1
*/
#include <math.h>
#include <string.h>

#include "pass.h"

/* --------------------------------------------------------- optimizers */

typedef enum OptKind {
  OK_SGD, OK_ADAM, OK_ADAMW, OK_ADAMW_PAPER, OK_RMSPROP, OK_ADAGRAD, OK_LION
} OptKind;

/* ORDER OptKind.  Defaults are PyTorch's (lion: the paper's; adamw_paper:
** MosaicML DecoupledAdamW's weight decay 1e-5). */
static const struct OptDef {
  const char *name;
  const char *args; /* accepted arguments, blank separated */
  double lr, wd, beta1, beta2, eps;
} opt_defs[] = {
    {"sgd", "lr momentum nesterov weight_decay dampening", 1e-3, 0, 0, 0, 0},
    {"adam", "lr betas eps weight_decay amsgrad", 1e-3, 0, 0.9, 0.999, 1e-8},
    {"adamw", "lr betas eps weight_decay amsgrad", 1e-3, 1e-2, 0.9, 0.999, 1e-8},
    {"adamw_paper", "lr betas eps weight_decay amsgrad", 1e-3, 1e-5, 0.9, 0.999,
     1e-8},
    {"rmsprop", "lr alpha eps momentum weight_decay centered", 1e-2, 0, 0, 0,
     1e-8},
    {"adagrad", "lr eps weight_decay lr_decay", 1e-2, 0, 0, 0, 1e-10},
    {"lion", "lr betas weight_decay", 1e-4, 0, 0.9, 0.99, 0},
};

/* The hyper-parameters of the train block's optimizer. */
typedef struct Hyper {
  OptKind kind;
  double lr, wd, beta1, beta2, eps;
  double momentum, dampening, alpha, lr_decay;
  bool nesterov, amsgrad, centered;
} Hyper;

/* A global whose new value the step returns. */
typedef struct Update {
  IrGlobal *g;
  IrValue *v;
} Update;

typedef struct Opt {
  IrModule *m;
  PassCtx *cx;
  IrFunc *f;
  IrBlock *b;
  Hyper h;
  IrValue *step;   /* @opt.step: i64[] */
  IrValue *stepf;  /* cast of it: f32[], 0-based */
  IrValue *t;      /* stepf + 1: f32[], built on first use (tval) */
  IrValue *lr;     /* f32[] */
  IrValue *epoch, *total;
  IrValue *bc1, *bc2s; /* adam: 1 - b1^t, sqrt(1 - b2^t) */
  Update *states;  /* optimizer states, in creation order */
  int nstates, capstates;
  bool ok;
} Opt;

/* ------------------------------------------------------------ builders */

/* Append op(args) {attrs} to the body; type errors here are compiler bugs. */
static IrValue *emit(Opt *o, IrOp op, int n, IrValue **args,
                     const IrAttrs *attrs, const IrType *want) {
  const char *err = NULL;
  int bad = -1;
  IrValue *v = ir_build(o->m, o->b, op, n, args, attrs, want, (SrcLoc){0},
                        &err, &bad);
  if (!v) {
    fprintf(stderr, "optimizer: %s: %s\n", ir_op_info[op].name, err);
    NNC_ASSERT(v);
  }
  return v;
}

static IrValue *bin(Opt *o, IrOp op, IrValue *a, IrValue *b) {
  IrValue *args[2] = {a, b};
  return emit(o, op, 2, args, NULL, NULL);
}

static IrValue *un(Opt *o, IrOp op, IrValue *a) {
  return emit(o, op, 1, &a, NULL, NULL);
}

/* constant {value = x} : dt[] */
static IrValue *num(Opt *o, double x, DType dt) {
  IrAttrs at = {0};
  ir_attr_set_float(o->m, &at, "value", x);
  IrType t = ir_type_scalar(dt);
  return emit(o, IR_OP_CONSTANT, 0, NULL, &at, &t);
}

/* v as dtype dt (a cast only when needed). */
static IrValue *as_dt(Opt *o, IrValue *v, DType dt) {
  if (v->type.dtype == dt) return v;
  IrType t = v->type;
  t.dtype = dt;
  return emit(o, IR_OP_CAST, 1, &v, NULL, &t);
}

/* a * x + b * y with scalar floats a, b in y's dtype (an EMA step). */
static IrValue *lerp(Opt *o, double a, IrValue *x, double b, IrValue *y) {
  DType dt = y->type.dtype;
  return bin(o, IR_OP_ADD, bin(o, IR_OP_MUL, num(o, a, dt), x),
             bin(o, IR_OP_MUL, num(o, b, dt), y));
}

/* t = step + 1, the 1-based step of the update (built once). */
static IrValue *tval(Opt *o) {
  if (!o->t) o->t = bin(o, IR_OP_ADD, o->stepf, num(o, 1, DT_F32));
  return o->t;
}

/* ------------------------------------------------------------ settings */

static bool word_in(const char *list, const char *w) {
  size_t n = strlen(w);
  for (const char *p = list; (p = strstr(p, w)); p += n)
    if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) return true;
  return false;
}

static bool num_of(const IrAttr *a, double *out) {
  if (a->kind == ATTR_FLOAT) *out = a->f;
  else if (a->kind == ATTR_INT) *out = (double)a->i;
  else return false;
  return true;
}

/* One optimizer argument into h; false (with a diagnostic) when its kind
** is wrong. */
static bool read_arg(Opt *o, const char *opt, const IrAttr *a, Hyper *h) {
  Diag *d = o->cx->diag;
  const char *n = a->name;
  double x = 0;
  if (!strcmp(n, "nesterov") || !strcmp(n, "amsgrad") || !strcmp(n, "centered")) {
    if (a->kind != ATTR_BOOL) goto bad;
    bool *dst = n[0] == 'n' ? &h->nesterov : n[0] == 'a' ? &h->amsgrad
                                                         : &h->centered;
    *dst = a->i != 0;
    return true;
  }
  if (!strcmp(n, "betas")) {
    if ((a->kind != ATTR_FLOATS && a->kind != ATTR_INTS) || a->n != 2) goto bad;
    h->beta1 = a->kind == ATTR_FLOATS ? a->floats[0] : (double)a->ints[0];
    h->beta2 = a->kind == ATTR_FLOATS ? a->floats[1] : (double)a->ints[1];
    return true;
  }
  if (!num_of(a, &x)) goto bad;
  if (!strcmp(n, "lr")) h->lr = x;
  else if (!strcmp(n, "weight_decay")) h->wd = x;
  else if (!strcmp(n, "eps")) h->eps = x;
  else if (!strcmp(n, "momentum")) h->momentum = x;
  else if (!strcmp(n, "dampening")) h->dampening = x;
  else if (!strcmp(n, "alpha")) h->alpha = x;
  else h->lr_decay = x; /* lr_decay: the only one left in the lists */
  return true;
bad:
  diag_error(d, (SrcLoc){0}, "invalid argument '%s' of optimizer '%s'", n, opt);
  return false;
}

/* Range checks PyTorch makes in its constructors. */
static bool check_hyper(Opt *o, const char *name, const Hyper *h) {
  Diag *d = o->cx->diag;
  const char *bad = NULL;
  if (!(h->lr >= 0)) bad = "lr must be >= 0";
  else if (!(h->wd >= 0)) bad = "weight_decay must be >= 0";
  else if (!(h->eps >= 0)) bad = "eps must be >= 0";
  else if (!(h->momentum >= 0)) bad = "momentum must be >= 0";
  else if (!(h->beta1 >= 0 && h->beta1 < 1 && h->beta2 >= 0 && h->beta2 < 1))
    bad = "betas must be in [0, 1)";
  else if (!(h->alpha >= 0 && h->alpha <= 1)) bad = "alpha must be in [0, 1]";
  else if (h->kind == OK_SGD && h->nesterov &&
           (h->momentum <= 0 || h->dampening != 0))
    bad = "nesterov needs momentum > 0 and dampening = 0";
  else if (h->kind == OK_ADAMW_PAPER && h->wd > 0 && !(h->lr > 0))
    bad = "adamw_paper needs lr > 0 (the schedule multiplier is lr_t / lr)";
  if (bad) diag_error(d, (SrcLoc){0}, "optimizer '%s': %s", name, bad);
  return !bad;
}

/* The optimizer setting (a call attribute) into o->h. */
static bool read_optimizer(Opt *o) {
  Diag *d = o->cx->diag;
  const IrAttr *a = ir_attr_get(&o->m->train->settings, "optimizer");
  if (!a) {
    diag_error(d, (SrcLoc){0}, "the train block has no 'optimizer' setting");
    return false;
  }
  const char *name = a->kind == ATTR_CALL || a->kind == ATTR_SYM ? a->s : "";
  int k = 0, nk = (int)(sizeof opt_defs / sizeof opt_defs[0]);
  while (k < nk && strcmp(opt_defs[k].name, name)) k++;
  if (k == nk) {
    diag_error(d, (SrcLoc){0}, "unknown optimizer '%s'", name);
    diag_note(d, (SrcLoc){0}, "valid optimizers: sgd adam adamw adamw_paper "
              "rmsprop adagrad lion");
    return false;
  }
  const struct OptDef *od = &opt_defs[k];
  Hyper h = {.kind = (OptKind)k, .lr = od->lr, .wd = od->wd,
             .beta1 = od->beta1, .beta2 = od->beta2, .eps = od->eps,
             .alpha = 0.99};
  for (int i = 0; a->kind == ATTR_CALL && i < a->n; i++) {
    if (!word_in(od->args, a->args[i].name)) {
      diag_error(d, (SrcLoc){0}, "unknown argument '%s' of optimizer '%s'",
                 a->args[i].name, name);
      diag_note(d, (SrcLoc){0}, "valid arguments: %s", od->args);
      return false;
    }
    if (!read_arg(o, name, &a->args[i], &h)) return false;
  }
  if (!check_hyper(o, name, &h)) return false;
  o->h = h;
  return true;
}

/* ------------------------------------------------------------- states */

/* A new zero-initialised state global `prefix.name` of type t. */
static IrGlobal *new_state(Opt *o, const char *prefix, const char *name,
                           IrType t) {
  const char *full = name ? arena_printf(o->cx->scratch, "%s.%s", prefix, name)
                          : prefix;
  if (ir_global_find(o->m, full)) {
    diag_error(o->cx->diag, (SrcLoc){0}, "the optimizer's state '%s' clashes "
               "with a global of the same name", full);
    o->ok = false;
  }
  IrGlobal *g = ir_global_add(o->m, IRG_STATE, full, t, "zeros", (SrcLoc){0});
  if (o->nstates == o->capstates) {
    int cap = o->capstates ? 2 * o->capstates : 16;
    Update *v = ARENA_ARRAY(o->cx->scratch, Update, cap);
    if (o->nstates) memcpy(v, o->states, sizeof *v * (size_t)o->nstates);
    o->states = v;
    o->capstates = cap;
  }
  o->states[o->nstates++] = (Update){g, NULL};
  return g;
}

/* Record the new value of state g. */
static void set_state(Opt *o, IrGlobal *g, IrValue *v) {
  for (int i = 0; i < o->nstates; i++)
    if (o->states[i].g == g) {
      o->states[i].v = v;
      return;
    }
  nnc_unreachable();
}

/* The new value of state prefix.<p> for an EMA of x: b * s + (1 - b) * x. */
static IrValue *ema_state(Opt *o, const char *prefix, IrGlobal *p, double b,
                          IrValue *x) {
  IrGlobal *s = new_state(o, prefix, p->name, p->type);
  IrValue *v = lerp(o, b, s->value, 1 - b, x);
  set_state(o, s, v);
  return v;
}

/* ------------------------------------------------------ learning rate */

/* Copy the straight-line body of @lr into the step with its arguments
** bound to (step, epoch, total_steps); returns its result. */
static IrValue *inline_lr(Opt *o, IrFunc *lr) {
  IrBlock *lb = lr->body;
  int cap = 3;
  for (IrNode *n = lb->first; n; n = n->next) cap += n->nres;
  IrValue **from = ARENA_ARRAY(o->cx->scratch, IrValue *, cap);
  IrValue **to = ARENA_ARRAY(o->cx->scratch, IrValue *, cap);
  int nmap = 0;
  IrValue *argv[3] = {o->stepf, o->epoch, o->total};
  for (int i = 0; i < 3; i++) {
    from[nmap] = lb->args[i];
    to[nmap++] = argv[i];
  }
  for (IrNode *n = lb->first; n; n = n->next) {
    NNC_ASSERT(!n->body); /* lowering makes @lr straight-line */
    IrValue **args = ARENA_ARRAY(o->m->arena, IrValue *, n->nargs + 1);
    for (int i = 0; i < n->nargs; i++) {
      args[i] = n->args[i];
      for (int k = 0; k < nmap; k++)
        if (from[k] == n->args[i]) args[i] = to[k];
    }
    IrType *rt = ARENA_ARRAY(o->cx->scratch, IrType, n->nres);
    for (int i = 0; i < n->nres; i++) rt[i] = n->res[i]->type;
    IrNode *c = ir_node_new(o->m, o->b, n->op, n->nargs, args, n->nres, rt,
                            n->loc);
    for (int i = 0; i < n->attrs.n; i++)
      ir_attr_set(o->m, &c->attrs, &n->attrs.v[i]);
    for (int i = 0; i < n->nres; i++) {
      from[nmap] = n->res[i];
      to[nmap++] = c->res[i];
    }
  }
  IrValue *r = lb->rets[0];
  for (int k = 0; k < nmap; k++)
    if (from[k] == r) r = to[k];
  return r;
}

/* The learning rate of this step: @lr when the train block has `lr = @lr`,
** else the optimizer's lr as a constant. */
static IrValue *build_lr(Opt *o) {
  const IrAttr *a = ir_attr_get(&o->m->train->settings, "lr");
  if (!a) return num(o, o->h.lr, DT_F32);
  IrFunc *lf = a->kind == ATTR_FUNC ? ir_func_find(o->m, a->s) : NULL;
  IrType s = ir_type_scalar(DT_F32);
  bool ok = lf && lf->body->nargs == 3 && lf->body->nrets == 1 &&
            ir_type_eq(&lf->body->rets[0]->type, &s);
  for (int i = 0; ok && i < 3; i++)
    ok = ir_type_eq(&lf->body->args[i]->type, &s);
  if (!ok) {
    diag_error(o->cx->diag, (SrcLoc){0}, "the train setting 'lr' must name "
               "a function (step, epoch, total_steps: f32[]) -> f32[]");
    o->ok = false;
    return num(o, o->h.lr, DT_F32);
  }
  return inline_lr(o, lf);
}

/* ------------------------------------------------------------ clipping */

/* torch.nn.utils.clip_grad_norm_: every gradient times
** min(1, clip / (sqrt(sum of squares of all gradients) + 1e-6)). */
static void clip_grads(Opt *o, IrValue **grads, int n, double clip) {
  IrValue *total = NULL;
  for (int i = 0; i < n; i++) {
    IrValue *g = grads[i];
    IrValue *sq = as_dt(o, un(o, IR_OP_SUM, bin(o, IR_OP_MUL, g, g)), DT_F32);
    total = total ? bin(o, IR_OP_ADD, total, sq) : sq;
  }
  if (!total) return;
  IrValue *norm = un(o, IR_OP_SQRT, total);
  IrValue *coef = bin(o, IR_OP_DIV, num(o, clip, DT_F32),
                      bin(o, IR_OP_ADD, norm, num(o, 1e-6, DT_F32)));
  coef = bin(o, IR_OP_MINIMUM, num(o, 1, DT_F32), coef);
  for (int i = 0; i < n; i++)
    grads[i] = bin(o, IR_OP_MUL, grads[i], as_dt(o, coef, grads[i]->type.dtype));
}

/* ------------------------------------------------------- update rules */

/* sgd (torch.optim.SGD): g += wd w; buf = mu buf + (1 - d) g (buf = g at
** the first step); g = nesterov ? g + mu buf : buf; w -= lr g. */
static IrValue *step_sgd(Opt *o, IrGlobal *p, IrValue *g, bool decay) {
  const Hyper *h = &o->h;
  DType dt = p->type.dtype;
  IrValue *w = p->value;
  if (decay) g = bin(o, IR_OP_ADD, g, bin(o, IR_OP_MUL, num(o, h->wd, dt), w));
  if (h->momentum != 0) {
    IrGlobal *s = new_state(o, "opt.momentum", p->name, p->type);
    IrValue *dg = g;
    if (h->dampening != 0) {
      IrValue *args[3] = {bin(o, IR_OP_EQ, o->step, num(o, 0, DT_I64)),
                          num(o, 1, dt), num(o, 1 - h->dampening, dt)};
      dg = bin(o, IR_OP_MUL, emit(o, IR_OP_WHERE, 3, args, NULL, NULL), g);
    }
    IrValue *buf = bin(o, IR_OP_ADD,
                       bin(o, IR_OP_MUL, num(o, h->momentum, dt), s->value),
                       dg);
    set_state(o, s, buf);
    g = h->nesterov
            ? bin(o, IR_OP_ADD, g, bin(o, IR_OP_MUL, num(o, h->momentum, dt), buf))
            : buf;
  }
  return bin(o, IR_OP_SUB, w, bin(o, IR_OP_MUL, as_dt(o, o->lr, dt), g));
}

/* w * (1 - f * wd), f = lr (PyTorch) or lr / lr_base (the paper). */
static IrValue *decoupled_decay(Opt *o, IrValue *w, IrValue *f, double wd) {
  DType dt = w->type.dtype;
  IrValue *k = bin(o, IR_OP_SUB, num(o, 1, DT_F32),
                   bin(o, IR_OP_MUL, f, num(o, wd, DT_F32)));
  return bin(o, IR_OP_MUL, w, as_dt(o, k, dt));
}

/* adam, adamw, adamw_paper (torch.optim.Adam/AdamW; the paper's form scales
** the decay by the schedule multiplier lr_t / lr only):
**   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  [vmax = max(vmax, v)]
**   w -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps) */
static IrValue *step_adam(Opt *o, IrGlobal *p, IrValue *g, bool decay) {
  const Hyper *h = &o->h;
  DType dt = p->type.dtype;
  IrValue *w = p->value;
  if (decay && h->kind == OK_ADAM)
    g = bin(o, IR_OP_ADD, g, bin(o, IR_OP_MUL, num(o, h->wd, dt), w));
  if (decay && h->kind == OK_ADAMW) w = decoupled_decay(o, w, o->lr, h->wd);
  if (decay && h->kind == OK_ADAMW_PAPER)
    w = decoupled_decay(o, w, bin(o, IR_OP_DIV, o->lr, num(o, h->lr, DT_F32)),
                        h->wd);
  IrValue *m = ema_state(o, "opt.m", p, h->beta1, g);
  IrValue *v = ema_state(o, "opt.v", p, h->beta2, bin(o, IR_OP_MUL, g, g));
  if (h->amsgrad) {
    IrGlobal *s = new_state(o, "opt.vmax", p->name, p->type);
    v = bin(o, IR_OP_MAXIMUM, s->value, v);
    set_state(o, s, v);
  }
  IrValue *den = bin(o, IR_OP_ADD,
                     bin(o, IR_OP_DIV, un(o, IR_OP_SQRT, v), as_dt(o, o->bc2s, dt)),
                     num(o, h->eps, dt));
  IrValue *size = as_dt(o, bin(o, IR_OP_DIV, o->lr, o->bc1), dt);
  return bin(o, IR_OP_SUB, w,
             bin(o, IR_OP_MUL, size, bin(o, IR_OP_DIV, m, den)));
}

/* rmsprop (torch.optim.RMSprop): sq = a sq + (1-a) g^2; centered: ga = a ga
** + (1-a) g, avg = sqrt(sq - ga^2) + eps, else sqrt(sq) + eps; momentum:
** buf = mu buf + g / avg, w -= lr buf; else w -= lr g / avg. */
static IrValue *step_rmsprop(Opt *o, IrGlobal *p, IrValue *g, bool decay) {
  const Hyper *h = &o->h;
  DType dt = p->type.dtype;
  IrValue *w = p->value;
  if (decay) g = bin(o, IR_OP_ADD, g, bin(o, IR_OP_MUL, num(o, h->wd, dt), w));
  IrValue *sq = ema_state(o, "opt.square_avg", p, h->alpha,
                          bin(o, IR_OP_MUL, g, g));
  if (h->centered) {
    IrValue *ga = ema_state(o, "opt.grad_avg", p, h->alpha, g);
    sq = bin(o, IR_OP_SUB, sq, bin(o, IR_OP_MUL, ga, ga));
  }
  IrValue *avg = bin(o, IR_OP_ADD, un(o, IR_OP_SQRT, sq), num(o, h->eps, dt));
  IrValue *d = bin(o, IR_OP_DIV, g, avg);
  if (h->momentum > 0) {
    IrGlobal *s = new_state(o, "opt.momentum", p->name, p->type);
    d = bin(o, IR_OP_ADD, bin(o, IR_OP_MUL, num(o, h->momentum, dt), s->value), d);
    set_state(o, s, d);
  }
  return bin(o, IR_OP_SUB, w, bin(o, IR_OP_MUL, as_dt(o, o->lr, dt), d));
}

/* adagrad (torch.optim.Adagrad): clr = lr / (1 + (t-1) lr_decay);
** sum += g^2; w -= clr g / (sqrt(sum) + eps). */
static IrValue *step_adagrad(Opt *o, IrGlobal *p, IrValue *g, bool decay) {
  const Hyper *h = &o->h;
  DType dt = p->type.dtype;
  IrValue *w = p->value;
  if (decay) g = bin(o, IR_OP_ADD, g, bin(o, IR_OP_MUL, num(o, h->wd, dt), w));
  IrGlobal *s = new_state(o, "opt.sum", p->name, p->type);
  IrValue *sum = bin(o, IR_OP_ADD, s->value, bin(o, IR_OP_MUL, g, g));
  set_state(o, s, sum);
  IrValue *clr = o->lr;
  if (h->lr_decay != 0)
    clr = bin(o, IR_OP_DIV, clr,
              bin(o, IR_OP_ADD, num(o, 1, DT_F32),
                  bin(o, IR_OP_MUL, o->stepf, num(o, h->lr_decay, DT_F32))));
  IrValue *den = bin(o, IR_OP_ADD, un(o, IR_OP_SQRT, sum), num(o, h->eps, dt));
  return bin(o, IR_OP_SUB, w,
             bin(o, IR_OP_MUL, as_dt(o, clr, dt), bin(o, IR_OP_DIV, g, den)));
}

/* lion (Chen et al. 2023): w *= 1 - lr wd; c = b1 m + (1-b1) g;
** w -= lr sign(c); m = b2 m + (1-b2) g. */
static IrValue *step_lion(Opt *o, IrGlobal *p, IrValue *g, bool decay) {
  const Hyper *h = &o->h;
  DType dt = p->type.dtype;
  IrValue *w = p->value;
  if (decay) w = decoupled_decay(o, w, o->lr, h->wd);
  IrGlobal *s = new_state(o, "opt.m", p->name, p->type);
  IrValue *c = lerp(o, h->beta1, s->value, 1 - h->beta1, g);
  set_state(o, s, lerp(o, h->beta2, s->value, 1 - h->beta2, g));
  return bin(o, IR_OP_SUB, w,
             bin(o, IR_OP_MUL, as_dt(o, o->lr, dt), un(o, IR_OP_SIGN, c)));
}

/* The new value of param p given its (clipped) gradient.  Weight decay
** applies to params of rank >= 2 only (biases and norm scales opt out). */
static IrValue *update_param(Opt *o, IrGlobal *p, IrValue *g) {
  bool decay = o->h.wd != 0 && p->type.rank >= 2;
  switch (o->h.kind) {
  case OK_SGD: return step_sgd(o, p, g, decay);
  case OK_ADAM:
  case OK_ADAMW:
  case OK_ADAMW_PAPER: return step_adam(o, p, g, decay);
  case OK_RMSPROP: return step_rmsprop(o, p, g, decay);
  case OK_ADAGRAD: return step_adagrad(o, p, g, decay);
  case OK_LION: return step_lion(o, p, g, decay);
  }
  nnc_unreachable();
}

/* ----------------------------------------------------------- averaging */

/* The averaging setting: 0 none, 1 polyak, 2 ema (with *decay). */
static int read_average(Opt *o, double *decay) {
  const IrAttr *a = ir_attr_get(&o->m->train->settings, "average");
  *decay = 0.999;
  if (!a || (a->kind == ATTR_SYM && !strcmp(a->s, "none"))) return 0;
  if (a->kind == ATTR_SYM && !strcmp(a->s, "polyak")) return 1;
  if (a->kind == ATTR_CALL && !strcmp(a->s, "ema")) {
    IrAttrs args = {a->args, a->n};
    const IrAttr *d = ir_attr_get(&args, "decay");
    if ((!d || num_of(d, decay)) && *decay >= 0 && *decay < 1) return 2;
  }
  diag_error(o->cx->diag, (SrcLoc){0}, "invalid train setting 'average'; "
             "expected none, polyak or ema {decay = D} with 0 <= D < 1");
  o->ok = false;
  return 0;
}

/* avg.<p> after this step: ema: d avg + (1-d) w; polyak: avg + (w - avg)/t. */
static void average_param(Opt *o, IrGlobal *p, IrValue *w, int how,
                          double decay) {
  IrGlobal *s = new_state(o, "avg", p->name, p->type);
  IrValue *v;
  if (how == 2) {
    v = lerp(o, decay, s->value, 1 - decay, w);
  } else {
    IrValue *d = bin(o, IR_OP_SUB, w, s->value);
    v = bin(o, IR_OP_ADD, s->value,
            bin(o, IR_OP_DIV, d, as_dt(o, tval(o), p->type.dtype)));
  }
  set_state(o, s, v);
}

/* func @average() -> (@<param>: ...): the weights evaluation uses.  After
** T = @opt.step steps: polyak avg; ema avg / (1 - d^T) (bias-corrected,
** the state starts at zero); the param itself while T = 0. */
static void build_average(Opt *o, int how, double decay) {
  IrModule *m = o->m;
  IrFunc *f = ir_func_new(m, "average");
  IrBlock *saved = o->b;
  o->b = f->body;
  int n = 0;
  for (IrGlobal *g = m->globals; g; g = g->next) n += g->kind == IRG_PARAM;
  IrValue **rets = ARENA_ARRAY(o->cx->scratch, IrValue *, n + 1);
  const char **names = ARENA_ARRAY(o->cx->scratch, const char *, n + 1);
  IrValue *zero = bin(o, IR_OP_EQ, o->step, num(o, 0, DT_I64));
  IrValue *corr = NULL;
  if (how == 2) {
    IrType f32 = ir_type_scalar(DT_F32);
    IrValue *tf = emit(o, IR_OP_CAST, 1, &o->step, NULL, &f32);
    corr = bin(o, IR_OP_SUB, num(o, 1, DT_F32),
               bin(o, IR_OP_POW, num(o, decay, DT_F32), tf));
  }
  int k = 0;
  for (IrGlobal *g = m->globals; g; g = g->next) {
    if (g->kind != IRG_PARAM) continue;
    const char *an = arena_printf(o->cx->scratch, "avg.%s", g->name);
    IrValue *avg = ir_global_find(m, an)->value;
    if (corr) avg = bin(o, IR_OP_DIV, avg, as_dt(o, corr, g->type.dtype));
    IrValue *args[3] = {zero, g->value, avg};
    rets[k] = emit(o, IR_OP_WHERE, 3, args, NULL, NULL);
    names[k++] = arena_printf(o->cx->scratch, "@%s", g->name);
  }
  ir_func_set_rets(m, f, k, rets, names);
  o->b = saved;
}

/* ----------------------------------------------------------- the pass */

/* Find grad.<p> among the results of @loss_grad, checking its type. */
static IrValue *find_grad(Opt *o, IrFunc *lg, IrGlobal *p) {
  const char *want = arena_printf(o->cx->scratch, "grad.%s", p->name);
  for (int i = 0; i < lg->body->nrets; i++)
    if (!strcmp(lg->ret_names[i], want)) {
      IrValue *v = lg->body->rets[i];
      if (ir_type_eq(&v->type, &p->type)) return v;
      break;
    }
  diag_error(o->cx->diag, (SrcLoc){0}, "@loss_grad has no result '%s' of "
             "the type of param '%s'", want, p->name);
  o->ok = false;
  return NULL;
}

/* Scalars of the step shared by every param: step, t, lr, Adam's bias
** corrections. */
static void build_scalars(Opt *o) {
  IrType f32 = ir_type_scalar(DT_F32);
  o->stepf = emit(o, IR_OP_CAST, 1, &o->step, NULL, &f32);
  o->lr = build_lr(o);
  OptKind k = o->h.kind;
  if (k == OK_ADAM || k == OK_ADAMW || k == OK_ADAMW_PAPER) {
    IrValue *one = num(o, 1, DT_F32);
    o->bc1 = bin(o, IR_OP_SUB, one,
                 bin(o, IR_OP_POW, num(o, o->h.beta1, DT_F32), tval(o)));
    o->bc2s = un(o, IR_OP_SQRT,
                 bin(o, IR_OP_SUB, one,
                     bin(o, IR_OP_POW, num(o, o->h.beta2, DT_F32), tval(o))));
  }
}

/* The results of @train_step: loss, lr, @loss's state updates, params,
** then the states in o->states (creation order). */
static void set_results(Opt *o, IrFunc *lg, int nparams, IrGlobal **params,
                        IrValue **neww) {
  IrBlock *b = lg->body;
  int nkeep = 1;
  while (nkeep < b->nrets && lg->ret_names[nkeep][0] == '@') nkeep++;
  int n = nkeep + 1 + nparams + o->nstates;
  IrValue **rets = ARENA_ARRAY(o->cx->scratch, IrValue *, n);
  const char **names = ARENA_ARRAY(o->cx->scratch, const char *, n);
  int k = 0;
  rets[k] = b->rets[0];
  names[k++] = "loss";
  rets[k] = o->lr;
  names[k++] = "lr";
  for (int i = 1; i < nkeep; i++) {
    rets[k] = b->rets[i];
    names[k++] = lg->ret_names[i];
  }
  for (int i = 0; i < nparams; i++) {
    rets[k] = neww[i];
    names[k++] = arena_printf(o->cx->scratch, "@%s", params[i]->name);
  }
  for (int i = 0; i < o->nstates; i++) {
    NNC_ASSERT(o->states[i].v);
    rets[k] = o->states[i].v;
    names[k++] = arena_printf(o->cx->scratch, "@%s", o->states[i].g->name);
  }
  ir_func_set_rets(o->m, lg, k, rets, names);
}

/* The body of the pass once @loss_grad and the settings are known. */
static bool build_step(Opt *o, IrFunc *lg) {
  IrModule *m = o->m;
  int np = 0;
  for (IrGlobal *g = m->globals; g; g = g->next) np += g->kind == IRG_PARAM;
  IrGlobal **params = ARENA_ARRAY(o->cx->scratch, IrGlobal *, np + 1);
  IrValue **grads = ARENA_ARRAY(o->cx->scratch, IrValue *, np + 1);
  IrValue **neww = ARENA_ARRAY(o->cx->scratch, IrValue *, np + 1);
  int k = 0;
  for (IrGlobal *g = m->globals; g; g = g->next)
    if (g->kind == IRG_PARAM) {
      params[k] = g;
      grads[k++] = find_grad(o, lg, g);
    }
  double avg_decay;
  int avg = read_average(o, &avg_decay);
  if (avg && ir_func_find(m, "average")) {
    diag_error(o->cx->diag, (SrcLoc){0}, "a function @average exists "
               "already; weight averaging needs the name");
    o->ok = false;
  }
  if (!o->ok) return false;
  o->step = new_state(o, "opt.step", NULL, ir_type_scalar(DT_I64))->value;
  o->epoch = ir_block_add_arg(m, lg->body, ir_type_scalar(DT_F32), "epoch");
  o->total = ir_block_add_arg(m, lg->body, ir_type_scalar(DT_F32), "total_steps");
  build_scalars(o);
  const IrAttr *clip = ir_attr_get(&m->train->settings, "clip");
  double cv = 0;
  if (clip && (!num_of(clip, &cv) || !(cv > 0))) {
    diag_error(o->cx->diag, (SrcLoc){0}, "the train setting 'clip' must be "
               "a number > 0");
    return false;
  }
  if (clip) clip_grads(o, grads, np, cv);
  for (int i = 0; i < np; i++) neww[i] = update_param(o, params[i], grads[i]);
  for (int i = 0; avg && i < np; i++)
    average_param(o, params[i], neww[i], avg, avg_decay);
  set_state(o, o->step->global,
            bin(o, IR_OP_ADD, o->step, num(o, 1, DT_I64)));
  set_results(o, lg, np, params, neww);
  lg->name = strtab_cstr(m->strs, "train_step");
  if (avg) build_average(o, avg, avg_decay);
  return o->ok;
}

/* optimizer: @loss_grad + train settings -> @train_step (file header). */
bool pass_optimizer(IrModule *m, PassCtx *cx) {
  IrFunc *lg = ir_func_find(m, "loss_grad");
  if (lg && ir_func_find(m, "train_step")) {
    /* expanded before: autodiff re-derived @loss_grad from @loss (the
    ** default pipeline run again on a printed module); drop it */
    ir_func_remove(m, lg);
    return true;
  }
  if (!m->train || !lg) return true;
  Opt o = {.m = m, .cx = cx, .f = lg, .b = lg->body, .ok = true};
  if (!read_optimizer(&o)) return false;
  if (lg->body->nrets < 1 || strcmp(lg->ret_names[0], "loss")) {
    diag_error(cx->diag, (SrcLoc){0}, "@loss_grad must return 'loss' first");
    return false;
  }
  return build_step(&o, lg);
}
