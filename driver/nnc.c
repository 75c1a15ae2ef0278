/*
** This file contains nnc's main(): the command line, running the stages
** (frontend or .nnir reader, verifier, pass pipeline, emission) and
** printing.  It holds no compiler logic: every decision about the program
** is made in frontend/, ir/ and passes/.
**
** Native code (--emit=exe|obj|asm|llvm, `nnc run`) goes through
** backend/emit.h when nnc is linked with the backend (NNC_BACKEND defined
** by CMake); without it those say "not implemented" and exit 2.
**
** Exit status: 0 success; 1 errors in the input (diagnostics printed);
** 2 usage errors (unknown flag, missing argument, bad -D, an emit kind or
** command that is not implemented yet).  `nnc run` exits with the
** program's status.
*/
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../frontend/frontend.h"
#include "../ir/arena.h"
#include "../ir/diag.h"
#include "../ir/ir.h"
#include "../passes/memplan.h"
#include "../passes/pass.h"
#include "gradcheck.h"
#ifdef NNC_BACKEND
#include "../backend/emit.h"
#endif

#ifndef NNC_VERSION
#define NNC_VERSION "0.0.0"
#endif
#ifndef NNC_SOURCE_STD
#define NNC_SOURCE_STD "std"
#endif

enum { EXIT_INPUT = 1, EXIT_USAGE = 2 };

typedef enum Cmd { CMD_BUILD, CMD_CHECK, CMD_RUN, CMD_GRADCHECK, CMD_PASSES } Cmd;
typedef enum Emit { EMIT_EXE, EMIT_OBJ, EMIT_ASM, EMIT_LLVM, EMIT_IR, EMIT_AST } Emit;
typedef enum Lang { LANG_AUTO, LANG_NN, LANG_IR } Lang;

static const char *const emit_names[] = {"exe", "obj", "asm", "llvm", "ir", "ast"};
static const char *const cmd_names[] = {"build", "check", "run", "gradcheck",
                                        "passes"};

/* Everything the command line says. */
typedef struct Opts {
  Cmd cmd;
  const char *input;
  const char *output;     /* -o; NULL or "-": stdout */
  Emit emit;
  Lang lang;
  Vec defines, incdirs;   /* const char * */
  int opt_level;
  bool verbose, print_loc, verify;
  const char *passes;     /* NULL: the default pipeline */
  const char *print_after;
  const char *model, *target, *cpu;
  int nprog_args;         /* run: arguments after "--" */
  char **prog_args;
  GcOpts gc;              /* gradcheck */
} Opts;

/* ------------------------------------------------------------------ help */

static const char top_help[] =
    "usage: nnc COMMAND [OPTIONS] FILE\n"
    "\n"
    "nnc compiles .nn neural-network programs to a typed, shape-checked tensor\n"
    "IR (.nnir), optimises it with passes and, later, to native code.\n"
    "\n"
    "commands:\n"
    "  build FILE         compile FILE (.nn or .nnir) and emit the result\n"
    "  check FILE         parse and shape-check only; silent on success\n"
    "  run FILE -- ARGS   build FILE to a temporary executable and run it\n"
    "  gradcheck FILE     check the model's gradients against finite differences\n"
    "  passes             list the passes with a one-line summary\n"
    "\n"
    "options:\n"
    "  --help             this text; `nnc COMMAND --help` describes a command\n"
    "  --version          print the version\n"
    "\n"
    "exit status: 0 success, 1 errors in the input, 2 usage errors or a\n"
    "feature that is not implemented yet.\n";

static const char input_help[] =
    "  -x nn|ir        input language (default: from the extension, .nn or .nnir)\n"
    "  -D NAME=VALUE   override a `const` or bind a dimension variable (.nn)\n"
    "  -I DIR          search DIR for imports (after the importing file's\n"
    "                  folder; then <folder of nnc>/std, then the source tree's std)\n"
    "  --model NAME    the model to compile (default: the trained one, else the\n"
    "                  last model of the file) (.nn)\n"
    "  --verify        run the IR verifier after every pass (also NNC_VERIFY=1;\n"
    "                  on by default in Debug builds, NNC_VERIFY=0 turns it off)\n"
    "  --help          this text\n";

static const char build_help[] =
    "usage: nnc build FILE.nn|FILE.nnir [OPTIONS]\n"
    "\n"
    "Compile FILE, run the pass pipeline over its IR, and emit the result.\n"
    "\n"
    "  -o OUT          write the output to OUT (atomically: a temporary file in\n"
    "                  the same folder, renamed when complete); default stdout\n"
    "  --emit=KIND     what to produce:\n"
    "                    ir    the module as .nnir text (after the passes)\n"
    "                    ast   the syntax trees of a .nn file and of the files\n"
    "                          it imports (the program is still checked)\n"
    "                    exe   an executable (the default; -o default: FILE\n"
    "                          without its extension), linked with libnnrt\n"
    "                    obj   an object file and its C header (-o default:\n"
    "                          NAME.o; the header is the same path with .h)\n"
    "                    asm, llvm   assembly or LLVM IR (default stdout)\n"
    "  --passes=LIST   comma-separated passes to run instead of the default\n"
    "                  pipeline (see `nnc passes`); --passes= runs none\n"
    "  --print-after=PASS|all\n"
    "                  print the module (parseable .nnir) after the pass, or\n"
    "                  after every pass, to stdout, headed by\n"
    "                  `; ---- IR after PASS ----`\n"
    "  --print-loc     print loc(\"file\":line:col) on each IR node\n"
    "  -O0 -O1 -O2 -O3 LLVM optimisation level of native code (default -O3)\n"
    "  -v              print the parameter count and bytes, the function list,\n"
    "                  `arena: N bytes; parameters: M bytes` and the link\n"
    "                  command to stderr\n"
    "  --target=TRIPLE, --cpu=NAME\n"
    "                  target of native code (default: the host and its CPU)\n"
    "libnnrt.a is looked for in $NNC_RUNTIME_DIR, then runtime/ and ../lib\n"
    "next to nnc; the linker is $CC or cc.\n"
#ifndef NNC_BACKEND
    "NOT IMPLEMENTED YET in this build (nnc was built without the backend):\n"
    "exe, obj, asm, llvm and `nnc run` exit with status 2.\n"
#endif
    ;

static const char check_help[] =
    "usage: nnc check FILE.nn|FILE.nnir [OPTIONS]\n"
    "\n"
    "Parse and shape-check FILE (a .nnir file is parsed and verified).  Prints\n"
    "nothing and exits 0 when FILE is valid; prints diagnostics and exits 1\n"
    "otherwise.\n"
    "\n";

static const char run_help[] =
    "usage: nnc run FILE.nn [OPTIONS] -- ARGS...\n"
    "\n"
    "Build FILE to a temporary executable, run it with ARGS (see\n"
    "`nnc run FILE -- --help`), remove it, and exit with its status.\n"
    "\n";

static const char gradcheck_help[] =
    "usage: nnc gradcheck FILE.nn [OPTIONS]\n"
    "\n"
    "Check the model's gradients against central finite differences: run the\n"
    "autodiff pass, give the parameters seeded random normal values and the\n"
    "inputs random values (integer labels in the range of the classes or table\n"
    "rows they index), then for up to --samples elements of every parameter\n"
    "compare grad.<param> of @loss_grad with (L(p+eps) - L(p-eps)) / 2 eps of\n"
    "@loss, both in the f64 interpreter.  An element passes when\n"
    "|analytic - numeric| <= tol * max(1, |analytic|, |numeric|).  Prints one\n"
    "line per parameter and `gradcheck: N passed, M failed`; exits 0 only\n"
    "when every parameter passes (1 otherwise).\n"
    "\n"
    "  --eps X        finite-difference step (1e-6)\n"
    "  --tol X        tolerance (1e-5)\n"
    "  --seed S       seed of the random values (1)\n"
    "  --samples K    elements checked per parameter (20)\n"
    "\n";

static const char passes_help[] =
    "usage: nnc passes\n"
    "\n"
    "List every pass: its name (for --passes and --print-after) and a\n"
    "one-line summary, then the default pipeline.\n";

static void print_cmd_help(Cmd c) {
  switch (c) {
  case CMD_BUILD: fputs(build_help, stdout); fputs(input_help, stdout); break;
  case CMD_CHECK: fputs(check_help, stdout); fputs(input_help, stdout); break;
  case CMD_RUN: fputs(run_help, stdout); fputs(input_help, stdout); break;
  case CMD_GRADCHECK:
    fputs(gradcheck_help, stdout);
    fputs(input_help, stdout);
    break;
  case CMD_PASSES: fputs(passes_help, stdout); break;
  }
}

/* ------------------------------------------------------------ arguments */

static int usage_error(const Opts *o, const char *fmt, const char *arg) {
  fputs("nnc: error: ", stderr);
  fprintf(stderr, fmt, arg);
  if (o) fprintf(stderr, " (see 'nnc %s --help')", cmd_names[o->cmd]);
  fputc('\n', stderr);
  return EXIT_USAGE;
}

static bool is_ident(const char *s, size_t n) {
  if (n == 0 || !(s[0] == '_' || ((s[0] | 32) >= 'a' && (s[0] | 32) <= 'z')))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!(s[i] == '_' || (s[i] >= '0' && s[i] <= '9') ||
          ((s[i] | 32) >= 'a' && (s[i] | 32) <= 'z')))
      return false;
  return true;
}

/* -D NAME=VALUE: NAME an identifier, VALUE non-empty. */
static bool define_ok(const char *d) {
  const char *eq = strchr(d, '=');
  return eq && is_ident(d, (size_t)(eq - d)) && eq[1] != '\0';
}

/* The value of a flag written `-o VALUE`, `-oVALUE`, `--f=VALUE` or
** `--f VALUE`: *i is advanced past a separate value.  NULL when missing. */
static const char *flag_value(int argc, char **argv, int *i, const char *flag) {
  const char *a = argv[*i];
  size_t n = strlen(flag);
  if (a[n] == '=' && a[1] == '-') return a + n + 1;
  if (a[n] != '\0') return a[1] == '-' ? NULL : a + n;
  if (*i + 1 >= argc) return NULL;
  return argv[++*i];
}

/* Does argument a name the flag (alone, with `=`, or glued for -o/-D/-I/-x)? */
static bool is_flag(const char *a, const char *flag) {
  size_t n = strlen(flag);
  if (strncmp(a, flag, n) != 0) return false;
  if (a[n] == '\0' || a[n] == '=') return true;
  return flag[1] != '-'; /* short flags take a glued value */
}

/* Options valid for every command that reads a file. */
static int parse_input_opt(Arena *ar, Opts *o, int argc, char **argv, int *i,
                           bool *used) {
  const char *a = argv[*i], *v;
  *used = true;
  if (is_flag(a, "-D")) {
    if (!(v = flag_value(argc, argv, i, "-D")))
      return usage_error(o, "%s expects NAME=VALUE", "-D");
    if (!define_ok(v)) {
      fprintf(stderr, "nnc: error: -D expects NAME=VALUE, got '%s'\n", v);
      return EXIT_USAGE;
    }
    vec_push(ar, &o->defines, (void *)v);
  } else if (is_flag(a, "-I")) {
    if (!(v = flag_value(argc, argv, i, "-I")) || !*v)
      return usage_error(o, "%s expects a folder", "-I");
    vec_push(ar, &o->incdirs, (void *)v);
  } else if (is_flag(a, "-x")) {
    if (!(v = flag_value(argc, argv, i, "-x")))
      return usage_error(o, "%s expects nn or ir", "-x");
    if (strcmp(v, "nn") == 0) o->lang = LANG_NN;
    else if (strcmp(v, "ir") == 0 || strcmp(v, "nnir") == 0) o->lang = LANG_IR;
    else return usage_error(o, "-x expects nn or ir, got '%s'", v);
  } else if (is_flag(a, "--model")) {
    if (!(v = flag_value(argc, argv, i, "--model")) || !*v)
      return usage_error(o, "%s expects a model name", "--model");
    o->model = v;
  } else if (strcmp(a, "--verify") == 0) {
    o->verify = true;
  } else {
    *used = false;
  }
  return 0;
}

static int parse_emit(Opts *o, const char *v) {
  for (int k = 0; k < (int)(sizeof emit_names / sizeof *emit_names); k++)
    if (strcmp(v, emit_names[k]) == 0) {
      o->emit = (Emit)k;
      return 0;
    }
  return usage_error(o, "--emit expects ast, ir, llvm, asm, obj or exe, got '%s'", v);
}

/* The first name of a --passes list that is not a registered pass, or
** NULL.  (The pipeline checks again; this makes the mistake a usage error,
** found before any work.) */
static const char *unknown_pass(Arena *ar, const char *list) {
  char *copy = arena_strdup(ar, list), *save = NULL;
  for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    while (*t == ' ' || *t == '\t') t++;
    char *e = t + strlen(t);
    while (e > t && (e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
    if (*t && !pass_lookup(t)) return t;
  }
  return NULL;
}

/* Options of `nnc build` only. */
static int parse_build_opt(Arena *ar, Opts *o, int argc, char **argv, int *i,
                           bool *used) {
  const char *a = argv[*i], *v;
  *used = true;
  if (is_flag(a, "-o")) {
    if (!(v = flag_value(argc, argv, i, "-o")) || !*v)
      return usage_error(o, "%s expects a file name", "-o");
    o->output = v;
  } else if (is_flag(a, "--emit")) {
    if (!(v = flag_value(argc, argv, i, "--emit")))
      return usage_error(o, "%s expects a kind", "--emit");
    return parse_emit(o, v);
  } else if (strncmp(a, "--passes=", 9) == 0) {
    o->passes = a + 9;
    const char *bad = unknown_pass(ar, o->passes);
    if (bad) {
      fprintf(stderr, "nnc: error: unknown pass '%s' (see 'nnc passes')\n", bad);
      return EXIT_USAGE;
    }
  } else if (is_flag(a, "--print-after")) {
    if (!(v = flag_value(argc, argv, i, "--print-after")) || !*v)
      return usage_error(o, "%s expects a pass name or 'all'", "--print-after");
    if (strcmp(v, "all") != 0 && !pass_lookup(v))
      return usage_error(o, "unknown pass '%s' in --print-after", v);
    o->print_after = v;
  } else if (strcmp(a, "--print-loc") == 0) {
    o->print_loc = true;
  } else if (strncmp(a, "-O", 2) == 0 && a[2] >= '0' && a[2] <= '3' && !a[3]) {
    o->opt_level = a[2] - '0';
  } else if (strcmp(a, "-v") == 0) {
    o->verbose = true;
  } else if (is_flag(a, "--target")) {
    if (!(v = flag_value(argc, argv, i, "--target")) || !*v)
      return usage_error(o, "%s expects a target triple", "--target");
    o->target = v;
  } else if (is_flag(a, "--cpu")) {
    if (!(v = flag_value(argc, argv, i, "--cpu")) || !*v)
      return usage_error(o, "%s expects a CPU name", "--cpu");
    o->cpu = v;
  } else {
    *used = false;
  }
  return 0;
}

/* Options of `nnc gradcheck` only. */
static int parse_gradcheck_opt(Opts *o, int argc, char **argv, int *i,
                               bool *used) {
  static const char *const names[] = {"--eps", "--tol", "--seed", "--samples"};
  const char *a = argv[*i];
  *used = false;
  for (int k = 0; k < 4; k++) {
    if (!is_flag(a, names[k])) continue;
    *used = true;
    const char *v = flag_value(argc, argv, i, names[k]);
    char *end = NULL;
    double x = v ? strtod(v, &end) : 0;
    if (!v || !*v || *end || !(x > 0) || (k >= 2 && x != floor(x)))
      return usage_error(o, "%s expects a positive number", names[k]);
    if (k == 0) o->gc.eps = x;
    else if (k == 1) o->gc.tol = x;
    else if (k == 2) o->gc.seed = (uint64_t)x;
    else o->gc.samples = x > 1e6 ? 1000000 : (int)x;
    return 0;
  }
  return 0;
}

/* Parse argv[2..] of command o->cmd.  Returns 0, or an exit status; -1
** means --help was printed. */
static int parse_args(Arena *ar, Opts *o, int argc, char **argv) {
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    bool used = false;
    int rc;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      print_cmd_help(o->cmd);
      return -1;
    }
    if (strcmp(a, "--") == 0) {
      if (o->cmd != CMD_RUN) return usage_error(o, "unexpected '%s'", a);
      o->nprog_args = argc - i - 1;
      o->prog_args = argv + i + 1;
      break;
    }
    if (a[0] != '-' || strcmp(a, "-") == 0) {
      if (o->cmd == CMD_PASSES) return usage_error(o, "unexpected argument '%s'", a);
      if (o->input) return usage_error(o, "more than one input file ('%s')", a);
      o->input = a;
      continue;
    }
    if (o->cmd != CMD_PASSES) {
      if ((rc = parse_input_opt(ar, o, argc, argv, &i, &used)) || used) {
        if (rc) return rc;
        continue;
      }
    }
    if (o->cmd == CMD_BUILD) {
      if ((rc = parse_build_opt(ar, o, argc, argv, &i, &used)) || used) {
        if (rc) return rc;
        continue;
      }
    }
    if (o->cmd == CMD_GRADCHECK) {
      if ((rc = parse_gradcheck_opt(o, argc, argv, &i, &used)) || used) {
        if (rc) return rc;
        continue;
      }
    }
    return usage_error(o, "unknown option '%s'", a);
  }
  if (o->cmd != CMD_PASSES && !o->input)
    return usage_error(o, "no input file%s", "");
  return 0;
}

/* ------------------------------------------------------------ file I/O */

/* Read the whole of path into the arena (NUL-terminated).  Prints the
** error and returns NULL when it cannot. */
static char *read_file(Arena *ar, const char *path, size_t *len) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "nnc: error: cannot open '%s': %s\n", path, strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  char *buf = arena_alloc(ar, cap + 1, 1);
  for (;;) {
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
    if (n == cap) {
      char *nb = arena_alloc(ar, 2 * cap + 1, 1);
      memcpy(nb, buf, n);
      buf = nb, cap *= 2;
    }
  }
  bool bad = ferror(f);
  int err = errno;
  if (f != stdin) fclose(f);
  if (bad) {
    fprintf(stderr, "nnc: error: cannot read '%s': %s\n", path, strerror(err));
    return NULL;
  }
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* An output file written atomically: a temporary file next to the target,
** renamed over it by out_commit, removed by out_abort. */
typedef struct OutFile {
  FILE *f;
  const char *path, *tmp; /* tmp NULL: stdout */
} OutFile;

static bool out_open(Arena *ar, OutFile *o, const char *path) {
  o->path = path;
  o->tmp = NULL;
  if (!path || strcmp(path, "-") == 0) {
    o->f = stdout;
    return true;
  }
  const char *slash = strrchr(path, '/');
  char *tmp = slash ? arena_printf(ar, "%.*s/.%s.XXXXXX", (int)(slash - path),
                                   path, slash + 1)
                    : arena_printf(ar, ".%s.XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0 || !(o->f = fdopen(fd, "w"))) {
    fprintf(stderr, "nnc: error: cannot write '%s': %s\n", path, strerror(errno));
    if (fd >= 0) close(fd), unlink(tmp);
    return false;
  }
  o->tmp = tmp;
  return true;
}

static void out_abort(OutFile *o) {
  if (!o->tmp) return;
  fclose(o->f);
  unlink(o->tmp);
  o->tmp = NULL;
}

static bool out_commit(OutFile *o) {
  if (!o->tmp) {
    fflush(stdout);
    return !ferror(stdout);
  }
  bool ok = fflush(o->f) == 0 && !ferror(o->f);
  /* mkstemp makes the file 0600; give it the usual permissions. */
  mode_t mask = umask(0);
  umask(mask);
  fchmod(fileno(o->f), 0666 & ~mask);
  ok &= fclose(o->f) == 0;
  if (ok && rename(o->tmp, o->path) == 0) return true;
  fprintf(stderr, "nnc: error: cannot write '%s': %s\n", o->path, strerror(errno));
  unlink(o->tmp);
  return false;
}

/* ---------------------------------------------------------------- stages */

static Lang input_lang(const Opts *o) {
  if (o->lang != LANG_AUTO) return o->lang;
  size_t n = strlen(o->input);
  if (n >= 5 && strcmp(o->input + n - 5, ".nnir") == 0) return LANG_IR;
  if (n >= 3 && strcmp(o->input + n - 3, ".nn") == 0) return LANG_NN;
  return LANG_AUTO;
}

/* The folder holding the running binary, or NULL. */
static const char *exe_dir(Arena *ar) {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return NULL;
  buf[n] = '\0';
  char *slash = strrchr(buf, '/');
  if (!slash) return NULL;
  *slash = '\0';
  return arena_strdup(ar, buf);
}

/* Read and verify a .nnir file.  NULL after printing the error. */
static IrModule *load_ir(Arena *ar, const Opts *o) {
  size_t len;
  char *text = read_file(ar, o->input, &len);
  if (!text) return NULL;
  const char *err = NULL;
  IrModule *m = ir_parse(o->input, text, len, ar, &err);
  if (!m) {
    const char *e = err ? err : "error: cannot parse";
    fputs(e, stderr);
    if (!*e || e[strlen(e) - 1] != '\n') fputc('\n', stderr);
    return NULL;
  }
  if (!ir_verify(m, NULL)) {
    fprintf(stderr, "nnc: error: %s: invalid IR\n", o->input);
    ir_verify(m, stderr);
    ir_module_free(m);
    return NULL;
  }
  return m;
}

/* Compile a .nn file with the frontend.  ast_out: the --emit=ast stream. */
static IrModule *load_nn(Arena *ar, Diag *d, const Opts *o, FILE *ast_out) {
  FILE *probe = fopen(o->input, "rb");
  if (!probe) {
    fprintf(stderr, "nnc: error: cannot open '%s': %s\n", o->input, strerror(errno));
    return NULL;
  }
  fclose(probe);
  Vec inc = {0};
  for (int i = 0; i < o->incdirs.len; i++) vec_push(ar, &inc, o->incdirs.data[i]);
  const char *dir = exe_dir(ar);
  if (dir) vec_push(ar, &inc, arena_printf(ar, "%s/std", dir));
  vec_push(ar, &inc, (void *)NNC_SOURCE_STD);
  FrontendOpts fo = {
      .incdirs = (const char **)inc.data, .nincdirs = inc.len,
      .defines = (const char **)o->defines.data, .ndefines = o->defines.len,
      .model = o->model, .ast_out = ast_out};
  IrModule *m = frontend_compile(d, o->input, &fo);
  if (m && d->nerrors > 0) {
    ir_module_free(m);
    m = NULL;
  }
  return m;
}

/* Read the input as .nn or .nnir.  NULL after errors were printed. */
static IrModule *load(Arena *ar, Diag *d, const Opts *o, FILE *ast_out) {
  if (input_lang(o) == LANG_IR) {
    if (o->defines.len || o->model)
      fprintf(stderr, "nnc: warning: -D and --model have no effect on .nnir input\n");
    return load_ir(ar, o);
  }
  return load_nn(ar, d, o, ast_out);
}

static bool verify_wanted(const Opts *o) {
  const char *env = getenv("NNC_VERIFY");
  if (o->verify) return true;
  if (env && *env) return strcmp(env, "0") != 0;
#ifdef NDEBUG
  return false;
#else
  return true;
#endif
}

/* -v: the size of the globals and the list of functions, to stderr. */
static void print_summary(const IrModule *m) {
  int64_t nparam = 0, nstate = 0, elems = 0, bytes = 0;
  for (const IrGlobal *g = m->globals; g; g = g->next) {
    int64_t n = ir_type_numel(&g->type);
    if (g->kind == IRG_PARAM) nparam++;
    else nstate++;
    elems += n;
    bytes += n * ir_dtype_size(g->type.dtype);
  }
  fprintf(stderr, "module @%s\n", m->name ? m->name : "?");
  fprintf(stderr, "  globals: %lld params + %lld states, %lld values, %lld bytes (%.2f MiB)\n",
          (long long)nparam, (long long)nstate, (long long)elems,
          (long long)bytes, (double)bytes / (1024.0 * 1024.0));
  for (const IrFunc *f = m->funcs; f; f = f->next)
    fprintf(stderr, "  func @%s: %d arguments, %d results\n", f->name,
            f->body->nargs, f->body->nrets);
}

/* -v: the memory figures.  arena is what the code needs (the backend's
** plan when native code is made, else the memplan pass's: recorded, or
** computed for the occasion). */
static void print_memory(const IrModule *m, int64_t arena, int64_t params) {
  if (arena < 0) {
    bool recorded = (arena = memplan_module_bytes(m)) >= 0;
    for (const IrFunc *f = m->funcs; !recorded && f; f = f->next) {
      Arena *s = arena_new();
      int64_t b = memplan_plan_bytes(f, s);
      arena_free(s);
      if (b > arena) arena = b;
    }
  }
  if (arena < 0) arena = 0;
  if (params < 0) params = memplan_param_bytes(m);
  fprintf(stderr, "arena: %lld bytes; parameters: %lld bytes\n", (long long)arena,
          (long long)params);
}

#ifdef NNC_BACKEND
/* The input's file name without folder and extension ("mlp" for
** "examples/mlp.nn"). */
static const char *stem(Arena *ar, const char *path) {
  const char *b = strrchr(path, '/');
  b = b ? b + 1 : path;
  const char *dot = strrchr(b, '.');
  size_t n = dot && dot != b ? (size_t)(dot - b) : strlen(b);
  return n ? arena_strndup(ar, b, n) : "a";
}

/* A new empty temporary file next to path (mkstemp), or NULL. */
static char *tmp_next_to(Arena *ar, const char *path) {
  const char *slash = strrchr(path, '/');
  char *tmp = slash ? arena_printf(ar, "%.*s/.%s.XXXXXX", (int)(slash - path),
                                   path, slash + 1)
                    : arena_printf(ar, ".%s.XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    fprintf(stderr, "nnc: error: cannot write '%s': %s\n", path, strerror(errno));
    return NULL;
  }
  mode_t mask = umask(0);
  umask(mask);
  fchmod(fd, 0666 & ~mask);
  close(fd);
  return tmp;
}

static bool commit(const char *tmp, const char *path) {
  if (rename(tmp, path) == 0) return true;
  fprintf(stderr, "nnc: error: cannot write '%s': %s\n", path, strerror(errno));
  unlink(tmp);
  return false;
}

/* Copy the file at path to stdout. */
static bool cat_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  char buf[1 << 15];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
  fclose(f);
  fflush(stdout);
  return !ferror(stdout);
}

/* Write code of kind k to path ("-": stdout) atomically. */
static bool write_code(Arena *ar, EmitJob *j, EmitKind k, const char *path,
                       Diag *d) {
  bool to_stdout = strcmp(path, "-") == 0;
  char *tmp = to_stdout ? arena_strdup(ar, "/tmp/nnc-out.XXXXXX") : tmp_next_to(ar, path);
  if (to_stdout) {
    int fd = mkstemp(tmp);
    if (fd < 0) return false;
    close(fd);
  }
  if (!tmp) return false;
  if (!emit_write(j, k, tmp, d)) {
    unlink(tmp);
    return false;
  }
  if (!to_stdout) return commit(tmp, path);
  bool ok = cat_file(tmp);
  unlink(tmp);
  return ok;
}

/* The header that goes with object file obj: obj with .o replaced by .h. */
static const char *header_path(Arena *ar, const char *obj) {
  size_t n = strlen(obj);
  if (n > 2 && strcmp(obj + n - 2, ".o") == 0)
    return arena_printf(ar, "%.*s.h", (int)(n - 2), obj);
  return arena_printf(ar, "%s.h", obj);
}

static bool write_obj(Arena *ar, EmitJob *j, const char *path, Diag *d) {
  if (!write_code(ar, j, EMITK_OBJ, path, d)) return false;
  if (strcmp(path, "-") == 0) return true;
  const char *h = header_path(ar, path);
  char *tmp = tmp_next_to(ar, h);
  if (!tmp) return false;
  if (!emit_header(j, tmp, d)) {
    unlink(tmp);
    return false;
  }
  return commit(tmp, h);
}

/* Link an executable at path (atomically). */
static bool write_exe(Arena *ar, EmitJob *j, const char *path, Diag *d) {
  char *dir = arena_strdup(ar, "/tmp/nnc-build.XXXXXX");
  if (!mkdtemp(dir)) {
    fprintf(stderr, "nnc: error: cannot make a temporary folder: %s\n", strerror(errno));
    return false;
  }
  char *obj = arena_printf(ar, "%s/%s.o", dir, j->prefix);
  char *tmp = NULL;
  bool ok = emit_write(j, EMITK_OBJ, obj, d) && (tmp = tmp_next_to(ar, path)) &&
            emit_link_exe(j, obj, tmp, d);
  unlink(obj);
  rmdir(dir);
  if (ok) return commit(tmp, path);
  if (tmp) unlink(tmp);
  return false;
}

/* Lower m to native code and write what o->emit asks for; run_exe: the
** executable `nnc run` wants instead (NULL otherwise). */
static int emit_native(Arena *ar, Diag *d, const Opts *o, IrModule *m,
                       const char *run_exe) {
  EmitOpts eo = {.triple = o->target, .cpu = o->cpu, .opt_level = o->opt_level,
                 .verbose = o->verbose};
  EmitJob j;
  bool ok = emit_lower(&j, m, &eo, ar, d);
  if (ok && o->verbose)
    print_memory(m, (int64_t)j.sizes.arena_bytes, (int64_t)j.sizes.param_bytes);
  if (ok && run_exe) {
    ok = write_exe(ar, &j, run_exe, d);
  } else if (ok) {
    const char *out = o->output;
    switch (o->emit) {
    case EMIT_OBJ:
      ok = write_obj(ar, &j, out ? out : arena_printf(ar, "%s.o", stem(ar, o->input)), d);
      break;
    case EMIT_ASM: ok = write_code(ar, &j, EMITK_ASM, out ? out : "-", d); break;
    case EMIT_LLVM: ok = write_code(ar, &j, EMITK_LLVM, out ? out : "-", d); break;
    default: ok = write_exe(ar, &j, out ? out : stem(ar, o->input), d); break;
    }
  }
  emit_free(&j);
  return ok ? 0 : EXIT_INPUT;
}

/* Run path with args; its exit status (128 + signal when killed). */
static int run_program(Arena *ar, const char *path, int argc, char **args) {
  char **argv = ARENA_ARRAY(ar, char *, argc + 2);
  argv[0] = (char *)path;
  for (int i = 0; i < argc; i++) argv[i + 1] = args[i];
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    execv(path, argv);
    fprintf(stderr, "nnc: error: cannot run '%s': %s\n", path, strerror(errno));
    _exit(127);
  }
  int st = 0;
  if (pid < 0) {
    fprintf(stderr, "nnc: error: cannot run '%s': %s\n", path, strerror(errno));
    return EXIT_INPUT;
  }
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* nnc run: build to a temporary folder, run, remove. */
static int build_and_run(Arena *ar, Diag *d, const Opts *o, IrModule *m) {
  Arena *scratch = arena_new();
  PassOpts po = {.verify = verify_wanted(o)};
  PassCtx cx = {.scratch = scratch, .diag = d, .opt = &po};
  bool ok = pass_run_pipeline(m, pass_default_pipeline, &cx);
  arena_free(scratch);
  if (!ok) return EXIT_INPUT;
  char *dir = arena_strdup(ar, "/tmp/nnc-run.XXXXXX");
  if (!mkdtemp(dir)) {
    fprintf(stderr, "nnc: error: cannot make a temporary folder: %s\n", strerror(errno));
    return EXIT_INPUT;
  }
  char *exe = arena_printf(ar, "%s/%s", dir, stem(ar, o->input));
  int rc = emit_native(ar, d, o, m, exe);
  if (rc == 0) rc = run_program(ar, exe, o->nprog_args, o->prog_args);
  unlink(exe);
  rmdir(dir);
  return rc;
}
#endif

#ifndef NNC_BACKEND
static int pending(const char *what) {
  fprintf(stderr, "nnc: error: %s is not implemented yet (backend pending)\n", what);
  return EXIT_USAGE;
}
#endif

/* nnc build / check / run / gradcheck on a loaded module. */
static int compile(Arena *ar, const Opts *o) {
  Lang lang = input_lang(o);
  if (lang == LANG_AUTO) {
    fprintf(stderr, "nnc: error: cannot tell the language of '%s' "
                    "(name it .nn or .nnir, or use -x nn|ir)\n", o->input);
    return EXIT_USAGE;
  }
  if (o->cmd == CMD_BUILD && o->emit == EMIT_AST && lang != LANG_NN) {
    fprintf(stderr, "nnc: error: --emit=ast needs a .nn input\n");
    return EXIT_USAGE;
  }
  Diag *d = diag_new(stderr);
  OutFile out = {0};
  bool ast = o->cmd == CMD_BUILD && o->emit == EMIT_AST;
  if (ast && !out_open(ar, &out, o->output)) {
    diag_free(d);
    return EXIT_INPUT;
  }
  IrModule *m = load(ar, d, o, ast ? out.f : NULL);
  int rc = 0;
  if (!m) {
    rc = EXIT_INPUT;
  } else if (ast) {
    rc = out_commit(&out) ? 0 : EXIT_INPUT;
    ast = false;
  } else if (o->cmd == CMD_RUN) {
#ifdef NNC_BACKEND
    rc = build_and_run(ar, d, o, m);
#else
    rc = pending("'nnc run'");
#endif
  } else if (o->cmd == CMD_GRADCHECK) {
    rc = nnc_gradcheck(d, o->input, &o->gc, m);
  } else if (o->cmd == CMD_BUILD) {
    Arena *scratch = arena_new();
    PassOpts po = {.print_after = o->print_after, .verify = verify_wanted(o),
                   .print_locs = o->print_loc, .dump = stdout};
    PassCtx cx = {.scratch = scratch, .diag = d, .opt = &po};
    const char *list = o->passes ? o->passes : pass_default_pipeline;
    if (!pass_run_pipeline(m, list, &cx)) rc = EXIT_INPUT;
    arena_free(scratch);
    if (rc == 0 && o->verbose) print_summary(m);
    if (rc == 0 && o->verbose && o->emit == EMIT_IR) print_memory(m, -1, -1);
    if (rc == 0 && o->emit != EMIT_IR) {
#ifdef NNC_BACKEND
      rc = emit_native(ar, d, o, m, NULL);
#else
      char *what = arena_printf(ar, "--emit=%s", emit_names[o->emit]);
      rc = pending(what);
#endif
    } else if (rc == 0) {
      IrPrintOpts pr = {.locs = o->print_loc};
      if (!out_open(ar, &out, o->output)) {
        rc = EXIT_INPUT;
      } else {
        ir_print_module(out.f, m, &pr);
        rc = out_commit(&out) ? 0 : EXIT_INPUT;
      }
    }
  }
  if (ast) out_abort(&out);
  if (m) ir_module_free(m);
  diag_free(d);
  return rc;
}

static int list_passes(void) {
  int w = 0;
  for (int i = 0; i < pass_count; i++) {
    int n = (int)strlen(pass_table[i].name);
    if (n > w) w = n;
  }
  for (int i = 0; i < pass_count; i++)
    printf("  %-*s  %s\n", w, pass_table[i].name, pass_table[i].summary);
  printf("default pipeline: %s\n", pass_default_pipeline);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || !argv[1]) {
    fputs(top_help, stderr);
    return EXIT_USAGE;
  }
  const char *c = argv[1];
  if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0 || strcmp(c, "help") == 0) {
    fputs(top_help, stdout);
    return 0;
  }
  if (strcmp(c, "--version") == 0) {
    printf("nnc %s\n", NNC_VERSION);
    return 0;
  }
  Opts o = {0};
  o.opt_level = 3;
  int k = 0;
  while (k < (int)(sizeof cmd_names / sizeof *cmd_names) && strcmp(c, cmd_names[k]))
    k++;
  if (k == (int)(sizeof cmd_names / sizeof *cmd_names)) {
    if (c[0] == '-')
      return usage_error(NULL, "unknown option '%s' (see 'nnc --help')", c);
    return usage_error(NULL, "unknown command '%s' (see 'nnc --help')", c);
  }
  o.cmd = (Cmd)k;
  Arena *ar = arena_new();
  int rc = parse_args(ar, &o, argc, argv);
  if (rc == -1) rc = 0;
  else if (rc == 0) rc = o.cmd == CMD_PASSES ? list_passes() : compile(ar, &o);
  arena_free(ar);
  return rc;
}
