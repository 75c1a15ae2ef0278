/*
** This file contains the last step of the backend: it lowers a module
** into a fresh LLVM module (codegen.c), adds the model descriptor
** (descriptor.c), optimises it with the new pass manager, writes it as an
** object file, assembly or LLVM IR through the target machine, and links
** executables by running the system C compiler:
**
**   cc -o OUT main.c MODEL.o DIR/libnnrt.a -fopenmp -lz -lm
**
** where main.c is generated: `int main(int argc, char **argv) { return
** nnrt_main(&P_desc, argc, argv); }`.
**
** Where libnnrt.a is found (emit_find_runtime), first match wins:
**   1. EmitOpts.runtime_dir (the driver's --runtime-dir)
**   2. the environment variable NNC_RUNTIME_DIR
**   3. DIR/runtime, DIR being the folder of the running nnc (build tree:
**      CMake builds the runtime in <build>/runtime)
**   4. DIR/../lib (an installed tree: bin/nnc, lib/libnnrt.a)
** The C compiler is EmitOpts.cc, else $CC, else `cc`.  When nnc itself is
** built with AddressSanitizer (so is libnnrt.a), executables are linked
** with -fsanitize=address,undefined too.
**
** LLVM objects are created and disposed here (emit_free) and nowhere else.
*/
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/TargetMachine.h>

#include "emit.h"
#include "llvm_util.h"

/* A C identifier made of s: other bytes become '_', a leading digit gets
** a '_' before it. */
static const char *c_ident(Arena *a, const char *s) {
  size_t n = strlen(s);
  char *r = arena_alloc(a, n + 2, 1), *p = r;
  if (s[0] >= '0' && s[0] <= '9') *p++ = '_';
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    bool ok = c == '_' || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z');
    *p++ = ok ? c : '_';
  }
  *p = '\0';
  return r;
}

bool emit_lower(EmitJob *j, const IrModule *m, const EmitOpts *o, Arena *a,
                Diag *d) {
  memset(j, 0, sizeof *j);
  j->m = m;
  j->o = *o;
  j->a = a;
  j->prefix = c_ident(a, m->name && *m->name ? m->name : "model");
  j->forward = ir_func_find(m, "forward");
  if (!j->forward) j->forward = m->funcs;
  char *err = NULL;
  if (!cg_target_init(&j->tgt, o->triple, o->cpu, NULL, &err)) {
    diag_error(d, (SrcLoc){0}, "target '%s': %s", o->triple ? o->triple : "host",
               err ? err : "unknown error");
    LLVMDisposeMessage(err);
    return false;
  }
  j->have_tgt = true;
  j->ctx = LLVMContextCreate();
  j->mod = LLVMModuleCreateWithNameInContext(j->prefix, j->ctx);
  CgOpts co = {.prefix = j->prefix, .inplace_func = "train_step"};
  if (!cg_lower_module(m, j->mod, j->tgt.tm, &co, a, &j->cg, d)) return false;
  j->sizes.arena_bytes = j->cg.arena_bytes;
  emit_layout(j);
  if (!emit_descriptor(j, d)) return false;
  char *msg = NULL;
  if (LLVMVerifyModule(j->mod, LLVMReturnStatusAction, &msg)) {
    diag_error(d, (SrcLoc){0}, "backend: invalid LLVM module: %s", msg);
    LLVMDisposeMessage(msg);
    return false;
  }
  LLVMDisposeMessage(msg);
  return cg_optimize(j->mod, j->tgt.tm, o->opt_level, d);
}

bool emit_write(EmitJob *j, EmitKind kind, const char *path, Diag *d) {
  char *err = NULL;
  bool ok;
  if (kind == EMITK_LLVM) {
    ok = !LLVMPrintModuleToFile(j->mod, path, &err);
  } else {
    LLVMCodeGenFileType ft = kind == EMITK_OBJ ? LLVMObjectFile : LLVMAssemblyFile;
    ok = ll_emit_file(j->mod, j->tgt.tm, path, ft, &err);
  }
  if (!ok) diag_error(d, (SrcLoc){0}, "cannot write '%s': %s", path, err ? err : "?");
  LLVMDisposeMessage(err);
  return ok;
}

void emit_free(EmitJob *j) {
  if (j->mod) LLVMDisposeModule(j->mod);
  if (j->ctx) LLVMContextDispose(j->ctx);
  if (j->have_tgt) cg_target_free(&j->tgt);
  j->mod = NULL;
  j->ctx = NULL;
  j->have_tgt = false;
}

/* --------------------------------------------------------------- linking */

static bool has_runtime(const char *dir, Arena *a) {
  struct stat st;
  return dir && stat(arena_printf(a, "%s/libnnrt.a", dir), &st) == 0 &&
         S_ISREG(st.st_mode);
}

/* The folder of the running binary, or NULL. */
static const char *self_dir(Arena *a) {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return NULL;
  buf[n] = '\0';
  char *slash = strrchr(buf, '/');
  if (!slash) return NULL;
  *slash = '\0';
  return arena_strdup(a, buf);
}

const char *emit_find_runtime(const EmitOpts *o, Arena *a) {
  if (o && o->runtime_dir) return has_runtime(o->runtime_dir, a) ? o->runtime_dir : NULL;
  const char *env = getenv("NNC_RUNTIME_DIR");
  if (env && *env) return has_runtime(env, a) ? env : NULL;
  const char *self = self_dir(a);
  if (!self) return NULL;
  const char *cand[] = {arena_printf(a, "%s/runtime", self),
                        arena_printf(a, "%s/../lib", self)};
  for (int i = 0; i < 2; i++)
    if (has_runtime(cand[i], a)) return cand[i];
  return NULL;
}

/* Run argv, wait for it; true when it exited with status 0. */
static bool run_cmd(char **argv, Diag *d) {
  pid_t pid = fork();
  if (pid < 0) {
    diag_error(d, (SrcLoc){0}, "cannot run '%s': %s", argv[0], strerror(errno));
    return false;
  }
  if (pid == 0) {
    execvp(argv[0], argv);
    fprintf(stderr, "nnc: error: cannot run '%s': %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return true;
  if (!(WIFEXITED(st) && WEXITSTATUS(st) == 127))
    diag_error(d, (SrcLoc){0}, "linking failed: '%s' exited with status %d",
               argv[0], WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
  else
    d->nerrors++;
  return false;
}

static bool write_main(EmitJob *j, const char *path, Diag *d) {
  FILE *f = fopen(path, "w");
  if (!f) {
    diag_error(d, (SrcLoc){0}, "cannot write '%s': %s", path, strerror(errno));
    return false;
  }
  fprintf(f,
          "/* Generated by nnc: the entry point of model '%s'. */\n"
          "struct NnrtModel;\n"
          "extern const struct NnrtModel %s_desc;\n"
          "int nnrt_main(const struct NnrtModel *m, int argc, char **argv);\n"
          "int main(int argc, char **argv) { return nnrt_main(&%s_desc, argc, argv); }\n",
          j->prefix, j->prefix, j->prefix);
  return fclose(f) == 0;
}

bool emit_link_exe(EmitJob *j, const char *obj, const char *out, Diag *d) {
  if (j->have_tgt && !j->tgt.is_host) {
    diag_error(d, (SrcLoc){0},
               "cannot link an executable for target '%s' here (not the "
               "host's architecture); use --emit=obj", j->tgt.triple);
    return false;
  }
  const char *rt = emit_find_runtime(&j->o, j->a);
  if (!rt) {
    diag_error(d, (SrcLoc){0},
               "cannot find libnnrt.a (looked in $NNC_RUNTIME_DIR, "
               "runtime/ and ../lib next to nnc); set NNC_RUNTIME_DIR");
    return false;
  }
  char tmpl[] = "/tmp/nnc-link.XXXXXX";
  const char *tmpdir = getenv("TMPDIR");
  char *dir = tmpdir && *tmpdir ? arena_printf(j->a, "%s/nnc-link.XXXXXX", tmpdir)
                                : arena_strdup(j->a, tmpl);
  if (!mkdtemp(dir)) {
    diag_error(d, (SrcLoc){0}, "cannot make a temporary folder: %s", strerror(errno));
    return false;
  }
  char *mainc = arena_printf(j->a, "%s/main.c", dir);
  bool ok = write_main(j, mainc, d);
  const char *cc = j->o.cc ? j->o.cc : getenv("CC");
  if (!cc || !*cc) cc = "cc";
  char *argv[24];
  int n = 0;
  argv[n++] = (char *)cc;
  argv[n++] = "-o";
  argv[n++] = (char *)out;
  argv[n++] = mainc;
  argv[n++] = (char *)obj;
  argv[n++] = arena_printf(j->a, "%s/libnnrt.a", rt);
  argv[n++] = "-fopenmp";
  argv[n++] = "-lz";
  argv[n++] = "-lm";
#if defined(__SANITIZE_ADDRESS__)
  argv[n++] = "-fsanitize=address,undefined";
#endif
  argv[n] = NULL;
  if (ok && j->o.verbose) {
    for (int i = 0; i < n; i++) fprintf(stderr, "%s%s", i ? " " : "", argv[i]);
    fputc('\n', stderr);
  }
  if (ok) ok = run_cmd(argv, d);
  unlink(mainc);
  rmdir(dir);
  return ok;
}
