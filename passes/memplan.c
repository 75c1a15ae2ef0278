/*
** This file contains the memplan pass: a liveness-based placement of every
** intermediate buffer of a function in one arena (the ggml-alloc idea),
** recorded as the attribute mem_offset of each node (passes/memplan.h).
**
** Position: last in the pipeline, after every pass that adds, removes or
** retypes nodes; run it again after any such pass.
** Requires: a verified module.
** Preserves: everything but attributes: it only sets mem_offset.
** Invalidates: nothing; a later pass that changes nodes invalidates the
**   plan (memplan_func_bytes then returns -1 for a new node).
**
** Liveness.  The nodes of a function are numbered in program order,
** nested bodies included; a scan node takes two positions, one before its
** body (start) and one after it (end):
**
**   %0 = exp %x              pos 0
**   %1:2 = scan %0, %s {..}  start 1 ... end 4
**     %2 = tanh %h           pos 2
**     %3 = add %2, %0        pos 3   (%0 is used at 4: every iteration)
**   %4 = neg %1#0            pos 5   (%1#0, %1#1 live from 1)
**
** A result is live from its definition to its last use; a scan's results
** are live from its start (it writes them while it runs).  A use inside a scan body of a value defined
** outside that body counts at the end of the scan (the body runs many
** times), as does a scan's own operand.  The values a scan body yields
** count as used at the end of the scan.  Values the function returns
** are not placed (mem_offset -1): they live in the caller's output
** buffers.  Scan body arguments (carries, slices) belong to the code
** generator and are not placed.
**
** Placement.  Buffers are visited in order of definition; before placing
** the buffers defined at position p, every buffer whose last use is
** before p is released.  A buffer goes to the lowest offset where it fits
** between the live buffers (first fit), 64-byte aligned.  An operand and
** the result of the same node never share memory (no in-place update).
**
** Example (f32[16] buffers are 64 bytes):
**   %0 = exp %x    {mem_offset = [0]}
**   %1 = neg %0    {mem_offset = [64]}
**   %2 = tanh %1   {mem_offset = [0]}     ; %0 is dead after %1
**   %3 = add %2, %x {mem_offset = [-1]}   ; returned
*/
#include <stdlib.h>
#include <string.h>

#include "memplan.h"
#include "pass.h"

/* One result of a node: its live range and place. */
typedef struct Buf {
  IrValue *v;
  int64_t def, last;   /* positions */
  int64_t bytes, off;  /* off -1: not placed */
  bool returned;
} Buf;

typedef struct Live {
  Arena *a;
  int nnodes, nbufs;
  int64_t *start, *end; /* by node id */
  Buf *bufs;            /* by value id (results only) */
  int64_t pos;
} Live;

int64_t memplan_value_bytes(const IrType *t) {
  int64_t n = ir_type_numel(t) * ir_dtype_size(t->dtype);
  return (n + MEMPLAN_ALIGN - 1) / MEMPLAN_ALIGN * MEMPLAN_ALIGN;
}

/* Give every node of b (recursively) an id, and every result a value id;
** other values get id -1. */
static void count(Live *L, IrBlock *b) {
  for (int i = 0; i < b->nargs; i++) b->args[i]->id = -1;
  for (IrNode *n = b->first; n; n = n->next) {
    n->id = L->nnodes++;
    for (int r = 0; r < n->nres; r++) n->res[r]->id = L->nbufs++;
    if (n->body) count(L, n->body);
  }
}

/* Program positions: start and end of every node (equal for plain ones). */
static void number(Live *L, IrBlock *b) {
  for (IrNode *n = b->first; n; n = n->next) {
    L->start[n->id] = L->pos++;
    if (n->body) {
      number(L, n->body);
      L->end[n->id] = L->pos++;
    } else {
      L->end[n->id] = L->start[n->id];
    }
    for (int r = 0; r < n->nres; r++) {
      Buf *bf = &L->bufs[n->res[r]->id];
      bf->v = n->res[r];
      bf->def = L->start[n->id];
      bf->last = L->end[n->id];
      bf->bytes = memplan_value_bytes(&n->res[r]->type);
      bf->off = -1;
    }
  }
}

static IrBlock *def_block(const IrValue *v) {
  if (v->kind == IRV_RESULT) return v->def->parent;
  if (v->kind == IRV_ARG) return v->block;
  return NULL;
}

/* A use of v at position p in block b: lifted to the end of every scan
** between b and the block that defines v. */
static void use(Live *L, IrValue *v, IrBlock *b, int64_t p) {
  if (v->kind != IRV_RESULT) return;
  IrBlock *db = def_block(v);
  while (b && b != db && b->owner) {
    if (L->end[b->owner->id] > p) p = L->end[b->owner->id];
    b = b->owner->parent;
  }
  Buf *bf = &L->bufs[v->id];
  if (p > bf->last) bf->last = p;
}

static void uses(Live *L, IrBlock *b) {
  for (IrNode *n = b->first; n; n = n->next) {
    for (int i = 0; i < n->nargs; i++) use(L, n->args[i], b, L->end[n->id]);
    if (n->body) {
      uses(L, n->body);
      for (int i = 0; i < n->body->nrets; i++)
        use(L, n->body->rets[i], n->body, L->end[n->id]);
    }
  }
}

/* Liveness of f: positions, buffers and live ranges. */
static Live *liveness(const IrFunc *f, Arena *a) {
  Live *L = ARENA_NEW(a, Live);
  L->a = a;
  count(L, f->body);
  L->start = ARENA_ARRAY(a, int64_t, L->nnodes + 1);
  L->end = ARENA_ARRAY(a, int64_t, L->nnodes + 1);
  L->bufs = ARENA_ARRAY(a, Buf, L->nbufs + 1);
  number(L, f->body);
  uses(L, f->body);
  for (int i = 0; i < f->body->nrets; i++) {
    IrValue *v = f->body->rets[i];
    if (v->kind == IRV_RESULT) L->bufs[v->id].returned = true;
  }
  return L;
}

/* ------------------------------------------------------------ placement */

/* The live buffers, sorted by offset. */
typedef struct Placed {
  Buf **v;
  int n;
} Placed;

static void release(Placed *p, int64_t pos) {
  int k = 0;
  for (int i = 0; i < p->n; i++)
    if (p->v[i]->last >= pos) p->v[k++] = p->v[i];
  p->n = k;
}

/* First fit: the lowest gap between live buffers that holds b. */
static void place(Placed *p, Buf *b) {
  int64_t at = 0;
  int i = 0;
  for (; i < p->n; i++) {
    if (p->v[i]->off - at >= b->bytes) break;
    int64_t top = p->v[i]->off + p->v[i]->bytes;
    if (top > at) at = top;
  }
  b->off = at;
  memmove(&p->v[i + 1], &p->v[i], sizeof(p->v[0]) * (size_t)(p->n - i));
  p->v[i] = b;
  p->n++;
}

static int by_def(const void *x, const void *y) {
  const Buf *a = *(Buf *const *)x, *b = *(Buf *const *)y;
  if (a->def != b->def) return a->def < b->def ? -1 : 1;
  return a->v->id < b->v->id ? -1 : a->v->id > b->v->id;
}

static void allocate(Live *L) {
  Buf **order = ARENA_ARRAY(L->a, Buf *, L->nbufs + 1);
  int n = 0;
  for (int i = 0; i < L->nbufs; i++)
    if (!L->bufs[i].returned && L->bufs[i].bytes > 0) order[n++] = &L->bufs[i];
  qsort(order, (size_t)n, sizeof(order[0]), by_def);
  Placed p = {ARENA_ARRAY(L->a, Buf *, n + 1), 0};
  for (int i = 0; i < n; i++) {
    release(&p, order[i]->def);
    place(&p, order[i]);
  }
}

static void record(IrModule *m, Live *L, IrBlock *b) {
  for (IrNode *n = b->first; n; n = n->next) {
    int64_t offs[16], *o = n->nres <= 16 ? offs : ARENA_ARRAY(L->a, int64_t, n->nres);
    for (int r = 0; r < n->nres; r++) {
      Buf *bf = &L->bufs[n->res[r]->id];
      o[r] = bf->returned ? -1 : bf->off < 0 ? 0 : bf->off;
    }
    ir_attr_set_ints(m, &n->attrs, MEMPLAN_ATTR, n->nres, o);
    if (n->body) record(m, L, n->body);
  }
}

bool pass_memplan(IrModule *m, PassCtx *cx) {
  for (IrFunc *f = m->funcs; f; f = f->next) {
    Live *L = liveness(f, cx->scratch);
    allocate(L);
    record(m, L, f->body);
  }
  return true;
}

/* -------------------------------------------------------------- queries */

int64_t memplan_plan_bytes(const IrFunc *f, Arena *scratch) {
  Live *L = liveness(f, scratch);
  allocate(L);
  int64_t top = 0;
  for (int i = 0; i < L->nbufs; i++)
    if (L->bufs[i].off >= 0 && L->bufs[i].off + L->bufs[i].bytes > top)
      top = L->bufs[i].off + L->bufs[i].bytes;
  return top;
}

/* max(offset + bytes) over b's nodes; -1 when one has no plan. */
static int64_t block_bytes(const IrBlock *b) {
  int64_t top = 0;
  for (const IrNode *n = b->first; n; n = n->next) {
    const IrAttr *at = ir_attr_get(&n->attrs, MEMPLAN_ATTR);
    if (!at || at->kind != ATTR_INTS || at->n != n->nres) return -1;
    for (int r = 0; r < n->nres; r++) {
      if (at->ints[r] < 0) continue;
      int64_t e = at->ints[r] + memplan_value_bytes(&n->res[r]->type);
      if (e > top) top = e;
    }
    if (n->body) {
      int64_t t = block_bytes(n->body);
      if (t < 0) return -1;
      if (t > top) top = t;
    }
  }
  return top;
}

int64_t memplan_func_bytes(const IrFunc *f) { return block_bytes(f->body); }

int64_t memplan_module_bytes(const IrModule *m) {
  int64_t top = 0;
  for (const IrFunc *f = m->funcs; f; f = f->next) {
    int64_t t = memplan_func_bytes(f);
    if (t < 0) return -1;
    if (t > top) top = t;
  }
  return top;
}

int64_t memplan_param_bytes(const IrModule *m) {
  int64_t s = 0;
  for (const IrGlobal *g = m->globals; g; g = g->next)
    s += ir_type_numel(&g->type) * ir_dtype_size(g->type.dtype);
  return s;
}

/* Read the recorded offsets of b's nodes into L->bufs. */
static bool read_plan(Live *L, const IrBlock *b, const char **err) {
  for (const IrNode *n = b->first; n; n = n->next) {
    const IrAttr *at = ir_attr_get(&n->attrs, MEMPLAN_ATTR);
    if (!at || at->kind != ATTR_INTS || at->n != n->nres) {
      *err = arena_printf(L->a, "node %d (%s) has no plan", n->id,
                          ir_op_info[n->op].name);
      return false;
    }
    for (int r = 0; r < n->nres; r++) {
      Buf *bf = &L->bufs[n->res[r]->id];
      bf->off = at->ints[r];
      if (bf->off >= 0 && bf->off % MEMPLAN_ALIGN) {
        *err = arena_printf(L->a, "node %d: offset %lld not aligned", n->id,
                            (long long)bf->off);
        return false;
      }
      if (bf->off < 0 && !bf->returned && bf->bytes > 0) {
        *err = arena_printf(L->a, "node %d: result %d is not placed", n->id, r);
        return false;
      }
    }
    if (n->body && !read_plan(L, n->body, err)) return false;
  }
  return true;
}

bool memplan_check(const IrModule *m, const IrFunc *f, Arena *scratch,
                   const char **err) {
  (void)m;
  Live *L = liveness(f, scratch);
  if (!read_plan(L, f->body, err)) return false;
  for (int i = 0; i < L->nbufs; i++) {
    Buf *x = &L->bufs[i];
    if (x->off < 0 || x->bytes == 0) continue;
    for (int j = i + 1; j < L->nbufs; j++) {
      Buf *y = &L->bufs[j];
      if (y->off < 0 || y->bytes == 0) continue;
      bool live_both = x->def <= y->last && y->def <= x->last;
      bool overlap = x->off < y->off + y->bytes && y->off < x->off + x->bytes;
      if (live_both && overlap) {
        *err = arena_printf(scratch,
                            "@%s: results of nodes %d and %d are live together "
                            "(positions %lld..%lld and %lld..%lld) and overlap",
                            f->name, x->v->def->id, y->v->def->id,
                            (long long)x->def, (long long)x->last,
                            (long long)y->def, (long long)y->last);
        return false;
      }
    }
  }
  return true;
}
