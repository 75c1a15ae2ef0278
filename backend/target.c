/*
** This file contains the target setup: the LLVM target machine for the host
** (LLVMGetHostCPUName/Features) or for an overriding triple and CPU, and
** the vector width and register count that the kernels are sized from,
** read from the feature string (AVX-512 -> 16 floats x 32 registers,
** AVX2/AVX -> 8 x 16, SSE -> 4 x 16, AArch64 NEON -> 4 x 32).
*/
#include "target.h"

#include <stdio.h>
#include <string.h>

#include <llvm-c/Core.h>
#include <llvm-c/Target.h>

/* Whether the comma-separated feature string enables +NAME. */
static bool has_feature(const char *features, const char *name)
{
  size_t n = strlen(name);
  for (const char *p = features; p && *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == n + 1 && p[0] == '+' && memcmp(p + 1, name, n) == 0)
      return true;
    p = end ? end + 1 : p + len;
  }
  return false;
}

static bool in_list(const char *cpu, const char *const *list)
{
  for (; cpu && *list; list++)
    if (strcmp(cpu, *list) == 0)
      return true;
  return false;
}

static const char *const avx512_cpus[] = {
  "skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake-client",
  "icelake-server", "tigerlake", "rocketlake", "sapphirerapids", "emeraldrapids",
  "graniterapids", "graniterapids-d", "znver4", "znver5", "x86-64-v4", "knl", "knm",
  NULL};
static const char *const avx2_cpus[] = {
  "haswell", "broadwell", "skylake", "core-avx2", "alderlake", "raptorlake",
  "meteorlake", "arrowlake", "lunarlake", "gracemont", "znver1", "znver2", "znver3",
  "bdver4", "x86-64-v3", NULL};

void cg_target_vector_shape(const char *triple, const char *cpu, const char *features,
                            int *vec_floats, int *vec_regs, bool *has_fma)
{
  if (triple && (strncmp(triple, "aarch64", 7) == 0 || strncmp(triple, "arm64", 5) == 0)) {
    *vec_floats = 4, *vec_regs = 32, *has_fma = true;
    return;
  }
  bool known = features && *features;
  if (known ? has_feature(features, "avx512f") : in_list(cpu, avx512_cpus)) {
    *vec_floats = 16, *vec_regs = 32, *has_fma = true;
  } else if (known ? has_feature(features, "avx") : in_list(cpu, avx2_cpus)) {
    *vec_floats = 8, *vec_regs = 16;
    *has_fma = known ? has_feature(features, "fma") : true;
  } else {
    *vec_floats = 4, *vec_regs = 16;
    *has_fma = known && has_feature(features, "fma");
  }
}

/* The architecture of a triple: its text up to the first '-'. */
static size_t arch_len(const char *triple)
{
  const char *dash = strchr(triple, '-');
  return dash ? (size_t)(dash - triple) : strlen(triple);
}

/* Whether triple names the host's architecture (its code can be linked
** and run here); vendor and OS spellings vary, the architecture decides. */
static bool is_host_triple(const char *triple)
{
  char *host = LLVMGetDefaultTargetTriple();
  char *norm = LLVMNormalizeTargetTriple(triple);
  size_t n = arch_len(host);
  bool same = arch_len(norm) == n && strncmp(norm, host, n) == 0;
  LLVMDisposeMessage(norm);
  LLVMDisposeMessage(host);
  return same;
}

/* The error message for a triple LLVM has no target for: its architecture
** and the architectures LLVM knows (the caller names the triple). */
static char *unknown_triple(const char *triple)
{
  char buf[1024];
  size_t n = (size_t)snprintf(buf, sizeof buf, "unknown architecture '%.*s' (known:",
                              (int)arch_len(triple), triple);
  for (LLVMTargetRef t = LLVMGetFirstTarget(); t && n < sizeof buf; t = LLVMGetNextTarget(t))
    n += (size_t)snprintf(buf + n, sizeof buf - n, " %s", LLVMGetTargetName(t));
  if (n < sizeof buf)
    snprintf(buf + n, sizeof buf - n, ")");
  return LLVMCreateMessage(buf);
}

bool cg_target_init(CgTarget *t, const char *triple, const char *cpu,
                    const char *features, char **err)
{
  memset(t, 0, sizeof *t);
  *err = NULL;
  /* Every target this LLVM was built with (libLLVM-19.so holds them all),
  ** so that --target can name any of them. */
  LLVMInitializeAllTargetInfos();
  LLVMInitializeAllTargets();
  LLVMInitializeAllTargetMCs();
  LLVMInitializeAllAsmPrinters();
  LLVMInitializeAllAsmParsers();
  bool host = triple == NULL;
  t->triple = host ? LLVMGetDefaultTargetTriple() : LLVMCreateMessage(triple);
  t->cpu = cpu ? LLVMCreateMessage(cpu)
               : host ? LLVMGetHostCPUName() : LLVMCreateMessage("generic");
  t->features = features ? LLVMCreateMessage(features)
                         : host && !cpu ? LLVMGetHostCPUFeatures() : LLVMCreateMessage("");
  t->is_host = host || is_host_triple(t->triple);
  LLVMTargetRef target;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(t->triple, &target, &msg)) {
    LLVMDisposeMessage(msg);
    *err = unknown_triple(t->triple);
    cg_target_free(t);
    return false;
  }
  t->tm = LLVMCreateTargetMachine(target, t->triple, t->cpu, t->features,
                                  LLVMCodeGenLevelAggressive, LLVMRelocPIC,
                                  LLVMCodeModelDefault);
  if (!t->tm) {
    *err = LLVMCreateMessage("cannot create the target machine");
    cg_target_free(t);
    return false;
  }
  cg_target_vector_shape(t->triple, t->cpu, t->features, &t->vec_floats, &t->vec_regs,
                         &t->has_fma);
  return true;
}

void cg_target_free(CgTarget *t)
{
  if (t->tm)
    LLVMDisposeTargetMachine(t->tm);
  LLVMDisposeMessage(t->triple);
  LLVMDisposeMessage(t->cpu);
  LLVMDisposeMessage(t->features);
  memset(t, 0, sizeof *t);
}
