/*
** This file contains the harness of the differential op tests
** (tests/backend/test_ops.c): compile a .nnir module with cg_lower_module
** and cg_optimize for the host, emit an object, link it with libnnrt into a
** shared library, dlopen it, then run every function of the module through
** the reference interpreter and through the generated code on the same
** seeded random inputs, at 1 and 2 threads, and compare.
*/
#ifndef NNC_OPS_HARNESS_H
#define NNC_OPS_HARNESS_H

#include <dlfcn.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "codegen.h"
#include "diag.h"
#include "ir.h"
#include "target.h"

typedef int32_t EntryFn(void *arena, void *const *globals, void *const *inputs,
                        void *const *outputs, uint64_t seed, uint64_t step);

/* How to fill inputs and how close the results must be. */
typedef struct Spec {
  double lo, hi;     /* float inputs: uniform in [lo, hi) */
  int64_t ihi;       /* integer inputs: uniform in [0, ihi) (default 10) */
  double rtol, atol; /* |got - want| <= atol + rtol |want| */
  int64_t par;       /* CgOpts.par_threshold (default 64: force parallel) */
  bool no_fuse;
  const char *inplace; /* CgOpts.inplace_func */
} Spec;

typedef struct Lib {
  char dir[64];
  void *so;
  IrModule *m;
  CgResult res;
  Arena *a;
  char *asm_text;    /* when asked */
  int nkernels;      /* internal functions named k<digits>_... */
  char kernels[2048];/* their names, space separated */
} Lib;

static CgTarget host;
static bool host_ready;

static int harness_setup(void **state) {
  char *err = NULL;
  if (!host_ready && !cg_target_init(&host, NULL, NULL, NULL, &err)) {
    fprintf(stderr, "target: %s\n", err);
    return -1;
  }
  host_ready = true;
  return 0;
}

static void lib_kernel_names(Lib *L, LLVMModuleRef mod) {
  L->nkernels = 0;
  L->kernels[0] = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f)) {
    size_t len;
    const char *nm = LLVMGetValueName2(f, &len);
    if (nm[0] != 'k' || nm[1] < '0' || nm[1] > '9' || strchr(nm, '.')) continue;
    L->nkernels++;
    size_t have = strlen(L->kernels);
    snprintf(L->kernels + have, sizeof L->kernels - have, "%s ", nm);
  }
}

/* Compile text into L; false (with a message) on any failure. */
static bool lib_build(Lib *L, const char *text, const Spec *sp, bool want_asm) {
  memset(L, 0, sizeof *L);
  L->a = arena_new();
  const char *perr = NULL;
  L->m = ir_parse("t.nnir", text, strlen(text), L->a, &perr);
  if (!L->m) {
    fprintf(stderr, "parse: %s\n", perr);
    return false;
  }
  if (!ir_verify(L->m, stderr)) return false;
  LLVMContextRef c = LLVMContextCreate();
  LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("ops", c);
  Diag *d = diag_new(stderr);
  CgOpts o = {.prefix = "t", .par_threshold = sp->par ? sp->par : 64,
              .no_fuse = sp->no_fuse, .inplace_func = sp->inplace};
  bool ok = cg_lower_module(L->m, mod, host.tm, &o, L->a, &L->res, d);
  if (ok) lib_kernel_names(L, mod);
  if (ok) ok = cg_optimize(mod, host.tm, 3, d);
  diag_free(d);
  char obj[128], so[128], cmd[1024];
  strcpy(L->dir, "/tmp/nnc_ops_XXXXXX");
  if (ok && !mkdtemp(L->dir)) ok = false;
  snprintf(obj, sizeof obj, "%s/ops.o", L->dir);
  snprintf(so, sizeof so, "%s/ops.so", L->dir);
  char *err = NULL;
  if (ok && LLVMTargetMachineEmitToFile(host.tm, mod, obj, LLVMObjectFile, &err)) {
    fprintf(stderr, "emit: %s\n", err);
    LLVMDisposeMessage(err);
    ok = false;
  }
  if (ok && want_asm) {
    LLVMMemoryBufferRef mb;
    if (!LLVMTargetMachineEmitToMemoryBuffer(host.tm, mod, LLVMAssemblyFile, &err, &mb)) {
      size_t n = LLVMGetBufferSize(mb);
      L->asm_text = arena_alloc(L->a, n + 1, 1);
      memcpy(L->asm_text, LLVMGetBufferStart(mb), n);
      L->asm_text[n] = 0;
      LLVMDisposeMemoryBuffer(mb);
      const char *dump = getenv("NNC_OPS_ASM"); /* debugging: keep the assembly */
      FILE *fp = dump ? fopen(dump, "w") : NULL;
      if (fp) {
        fputs(L->asm_text, fp);
        fclose(fp);
      }
    }
  }
  LLVMDisposeModule(mod);
  LLVMContextDispose(c);
  if (!ok) return false;
  snprintf(cmd, sizeof cmd, "%s -shared -o %s %s %s %s -lm", NNC_CC, so, obj,
           NNRT_LIB, NNC_OMP_FLAGS);
  if (system(cmd) != 0) return false;
  L->so = dlopen(so, RTLD_NOW);
  if (!L->so) fprintf(stderr, "dlopen: %s\n", dlerror());
  return L->so != NULL;
}

static void lib_free(Lib *L) {
  char cmd[128];
  if (L->so) dlclose(L->so);
  if (L->dir[0]) {
    snprintf(cmd, sizeof cmd, "rm -rf %s", L->dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", L->dir);
  }
  if (L->m) ir_module_free(L->m);
  arena_free(L->a);
}

/* ------------------------------------------------------------- tensors */

static double rnd(uint64_t *s, double lo, double hi) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  uint64_t r = *s * 0x2545F4914F6CDD1DULL;
  return lo + (hi - lo) * (double)(r >> 11) * 0x1p-53;
}

static uint16_t bf16_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if (isnan(f)) return 0x7fc0;
  u += 0x7fff + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

static float bf16_value(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* A random interpreter tensor of type t (floats exact in their format). */
static IrTensor make_input(Arena *a, const IrType *t, const Spec *sp, uint64_t *s) {
  IrTensor x = {*t, NULL};
  int64_t n = ir_type_numel(t);
  int es = ir_interp_elem_size(t->dtype, false);
  x.data = arena_alloc(a, (size_t)(n ? n : 1) * es, 8);
  for (int64_t i = 0; i < n; i++) {
    double v = rnd(s, sp->lo, sp->hi);
    int64_t k = (int64_t)rnd(s, 0, (double)(sp->ihi ? sp->ihi : 10));
    switch (t->dtype) {
    case DT_F32: ((float *)x.data)[i] = (float)v; break;
    case DT_F16: ((float *)x.data)[i] = (float)(_Float16)v; break;
    case DT_BF16: ((float *)x.data)[i] = bf16_value(bf16_bits((float)v)); break;
    case DT_F64: ((double *)x.data)[i] = v; break;
    case DT_I32: ((int32_t *)x.data)[i] = (int32_t)k; break;
    case DT_I64: ((int64_t *)x.data)[i] = k; break;
    case DT_U8: ((uint8_t *)x.data)[i] = (uint8_t)k; break;
    case DT_BOOL: ((uint8_t *)x.data)[i] = v < (sp->lo + sp->hi) / 2; break;
    default: break;
    }
  }
  return x;
}

/* The generated code's layout of an interpreter tensor (f16 as half, bf16
** as bfloat16 bits). */
static void *to_native(Arena *a, const IrTensor *x) {
  int64_t n = ir_type_numel(&x->type);
  if (x->type.dtype != DT_F16 && x->type.dtype != DT_BF16) return x->data;
  uint16_t *p = arena_alloc(a, (size_t)(n ? n : 1) * 2, 64);
  for (int64_t i = 0; i < n; i++) {
    float f = ((float *)x->data)[i];
    if (x->type.dtype == DT_F16) {
      _Float16 h = (_Float16)f;
      memcpy(&p[i], &h, 2);
    } else {
      p[i] = bf16_bits(f);
    }
  }
  return p;
}

/* Element i of a native buffer as a double. */
static double native_at(DType t, const void *p, int64_t i) {
  switch (t) {
  case DT_F32: return ((const float *)p)[i];
  case DT_F16: {
    _Float16 h;
    memcpy(&h, (const uint16_t *)p + i, 2);
    return (double)h;
  }
  case DT_BF16: return bf16_value(((const uint16_t *)p)[i]);
  case DT_F64: return ((const double *)p)[i];
  case DT_I32: return ((const int32_t *)p)[i];
  case DT_I64: return (double)((const int64_t *)p)[i];
  case DT_U8: case DT_BOOL: return ((const uint8_t *)p)[i];
  default: return 0;
  }
}

static double interp_at(DType t, const void *p, int64_t i) {
  switch (t) {
  case DT_F32: case DT_F16: case DT_BF16: return ((const float *)p)[i];
  default: return native_at(t, p, i);
  }
}

static bool close_enough(DType t, double got, double want, const Spec *sp) {
  if (isnan(want)) return isnan(got);
  if (isinf(want)) return got == want;
  if (!ir_dtype_is_float(t)) return got == want;
  double rtol = sp->rtol, atol = sp->atol;
  if (t == DT_F16 || t == DT_BF16) {
    rtol = fmax(rtol, t == DT_F16 ? 2e-3 : 1.6e-2);
    atol = fmax(atol, 1e-3);
  }
  return fabs(got - want) <= atol + rtol * fabs(want);
}

/* The generated function's info for f. */
static const CgFuncInfo *lib_func(const Lib *L, const IrFunc *f) {
  for (int i = 0; i < L->res.nfuncs; i++)
    if (strcmp(L->res.funcs[i].name, f->name) == 0) return &L->res.funcs[i];
  return NULL;
}

/* The index of the global a result `@X` names, or -1. */
static int ret_global(const Lib *L, const IrFunc *f, int r) {
  const char *nm = f->ret_names ? f->ret_names[r] : NULL;
  if (!nm || nm[0] != '@') return -1;
  int gi = 0;
  for (const IrGlobal *g = L->m->globals; g; g = g->next, gi++)
    if (strcmp(g->name, nm + 1) == 0) return gi;
  return -1;
}

/* Run f through both engines; returns the number of mismatches (a run-time
** error counts as agreement when both report one).  A result written in
** place (CgFuncInfo.inplace) is read from its global; every other global
** must keep its bytes, and all of them on a run-time error. */
static int check_func(Lib *L, const IrFunc *f, const Spec *sp, uint64_t seed) {
  const IrBlock *b = f->body;
  Arena *a = arena_new();
  uint64_t s = seed;
  IrTensor *in = ARENA_ARRAY(a, IrTensor, b->nargs + 1);
  void **nin = ARENA_ARRAY(a, void *, b->nargs + 1);
  for (int i = 0; i < b->nargs; i++) {
    in[i] = make_input(a, &b->args[i]->type, sp, &s);
    nin[i] = to_native(a, &in[i]);
  }
  int ng = 0;
  for (const IrGlobal *g = L->m->globals; g; g = g->next) ng++;
  IrTensor *gl = ARENA_ARRAY(a, IrTensor, ng + 1);
  void **ngl = ARENA_ARRAY(a, void *, ng + 1);
  int gi = 0;
  for (const IrGlobal *g = L->m->globals; g; g = g->next, gi++) {
    gl[gi] = make_input(a, &g->type, sp, &s);
    ngl[gi] = to_native(a, &gl[gi]);
  }
  IrTensor *want = ARENA_ARRAY(a, IrTensor, b->nrets + 1);
  IrInterpOpts io = {.seed = 1234567, .step = 3};
  const char *err = NULL;
  bool iok = ir_interp(L->m, f, in, gl, want, &io, a, &err);
  char sym[256];
  snprintf(sym, sizeof sym, "t_%s", f->name);
  EntryFn *fn = (EntryFn *)dlsym(L->so, sym);
  if (!fn) {
    fprintf(stderr, "no symbol %s\n", sym);
    arena_free(a);
    return 1;
  }
  void **out = ARENA_ARRAY(a, void *, b->nrets + 1);
  for (int i = 0; i < b->nrets; i++) {
    const IrType *t = &b->rets[i]->type;
    out[i] = arena_alloc(a, (size_t)(ir_type_numel(t) + 1) * ir_dtype_size(t->dtype), 64);
  }
  void *arena = arena_alloc(a, L->res.arena_bytes + 64, 64);
  const bool *inplace = lib_func(L, f) ? lib_func(L, f)->inplace : NULL;
  void **gw = ARENA_ARRAY(a, void *, ng + 1); /* the globals the code may write */
  size_t *gbytes = ARENA_ARRAY(a, size_t, ng + 1);
  bool *written = ARENA_ARRAY(a, bool, ng + 1);
  gi = 0;
  for (const IrGlobal *g = L->m->globals; g; g = g->next, gi++) {
    gbytes[gi] = (size_t)ir_type_numel(&g->type) * ir_dtype_size(g->type.dtype);
    gw[gi] = arena_alloc(a, gbytes[gi] + 1, 64);
  }
  for (int i = 0; i < b->nrets && inplace; i++)
    if (inplace[i]) written[ret_global(L, f, i)] = true;
  int bad = 0;
  for (int th = 1; th <= 2; th++) {
    omp_set_num_threads(th);
    for (int i = 0; i < b->nrets; i++) {
      const IrType *t = &b->rets[i]->type;
      memset(out[i], 0xA5, (size_t)ir_type_numel(t) * ir_dtype_size(t->dtype));
    }
    for (int i = 0; i < ng; i++) memcpy(gw[i], ngl[i], gbytes[i]);
    memset(arena, 0x5A, L->res.arena_bytes);
    int32_t rc = fn(arena, (void *const *)gw, (void *const *)nin, (void *const *)out,
                    io.seed, io.step);
    for (int i = 0; i < ng; i++)
      if ((!written[i] || rc != 0) && memcmp(gw[i], ngl[i], gbytes[i]) != 0) {
        fprintf(stderr, "%s: global %d changed (%d threads, rc %d)\n", f->name, i, th, rc);
        bad++;
      }
    if (!iok || rc != 0) {
      if (iok != (rc == 0)) {
        fprintf(stderr, "%s: interpreter %s (%s), generated code returned %d\n",
                f->name, iok ? "ok" : "failed", err ? err : "", rc);
        bad++;
      }
      continue;
    }
    for (int i = 0; i < b->nrets; i++) {
      const IrType *t = &b->rets[i]->type;
      int64_t n = ir_type_numel(t);
      int shown = 0;
      const void *got = inplace && inplace[i] ? gw[ret_global(L, f, i)] : out[i];
      for (int64_t k = 0; k < n; k++) {
        double g = native_at(t->dtype, got, k), w = interp_at(t->dtype, want[i].data, k);
        if (close_enough(t->dtype, g, w, sp)) continue;
        if (shown++ < 4)
          fprintf(stderr, "%s: result %d (%s) [%lld]: got %.9g, want %.9g (%d threads)\n",
                  f->name, i, f->ret_names[i], (long long)k, g, w, th);
        bad++;
      }
    }
  }
  arena_free(a);
  return bad;
}

/* Build text and check every function of it. */
static void check_module(const char *text, const Spec *sp) {
  Lib L;
  bool ok = lib_build(&L, text, sp, false);
  if (!ok) lib_free(&L);
  assert_true(ok);
  int bad = 0, nf = 0;
  for (const IrFunc *f = L.m->funcs; f; f = f->next, nf++)
    bad += check_func(&L, f, sp, 0x9E3779B97F4A7C15ULL + (uint64_t)nf);
  lib_free(&L);
  assert_int_equal(bad, 0);
}

#endif
