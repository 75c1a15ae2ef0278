/*
** This file contains the generator of the C header that goes with an
** object file (`nnc build M.nn --emit=obj -o M.o` writes M.o and M.h): a
** documented C API over the runtime's NnrtInstance, as static inline
** functions, so that the object itself only exports the model's native
** functions and its descriptor P_desc (backend/descriptor.c):
**
**   P_model *P_new(void);                        arena + parameters
**   int P_init(P_model *, uint64_t seed);        the initialisers
**   int P_load(P_model *, const char *path);     safetensors
**   int P_save(const P_model *, const char *path);
**   int P_forward(P_model *, const T *in_NAME..., T *out_NAME...);
**   const char *P_error(const P_model *);        the last error's message
**   void P_free(P_model *);
**
** and macros for the sizes: P_BATCH, P_INPUT_<NAME>_{RANK,DIMS,NUMEL},
** P_OUTPUT_<NAME>_{...}, P_PARAM_COUNT, P_PARAM_BYTES, P_ARENA_BYTES,
** P_FLOPS (P upper-cased in macros), and the error codes P_OK, P_E_*.
*/
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "emit.h"

/* s as a C identifier, upper-cased when upper. */
static const char *ident(Arena *a, const char *s, bool upper) {
  size_t n = strlen(s);
  char *r = arena_alloc(a, n + 2, 1), *p = r;
  if (isdigit((unsigned char)s[0])) *p++ = '_';
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char o = isalnum(c) || c == '_' ? (char)c : '_';
    *p++ = upper ? (char)toupper((unsigned char)o) : o;
  }
  *p = '\0';
  return r;
}

/* The C element type of a dtype (f16/bf16 as their bits). */
static const char *ctype(DType t) {
  switch (t) {
  case DT_F32: return "float";
  case DT_F64: return "double";
  case DT_F16:
  case DT_BF16: return "uint16_t";
  case DT_I32: return "int32_t";
  case DT_I64: return "int64_t";
  case DT_U8:
  case DT_BOOL: return "uint8_t";
  default: return "void";
  }
}

static void dims_str(FILE *f, const IrType *t, bool braces) {
  fputs(braces ? "{" : "[", f);
  for (int k = 0; k < t->rank; k++)
    fprintf(f, "%s%lld", k ? ", " : "", (long long)t->dim[k]);
  if (braces && t->rank == 0) fputs("1", f);
  fputs(braces ? "}" : "]", f);
}

/* Macros of one input or output. */
static void io_macros(EmitJob *j, FILE *f, const char *P, const char *kind,
                      const char *name, const IrType *t) {
  const char *N = ident(j->a, name, true);
  fprintf(f, "/* %s '%s': %s", kind, name, ir_dtype_name(t->dtype));
  dims_str(f, t, false);
  fprintf(f, " */\n");
  const char *K = strcmp(kind, "input") == 0 ? "INPUT" : "OUTPUT";
  fprintf(f, "#define %s_%s_%s_RANK %d\n", P, K, N, t->rank);
  fprintf(f, "#define %s_%s_%s_DIMS ", P, K, N);
  dims_str(f, t, true);
  fprintf(f, "\n#define %s_%s_%s_NUMEL %lld\n\n", P, K, N,
          (long long)ir_type_numel(t));
}

static const char *io_name(EmitJob *j, bool out, int i) {
  const IrBlock *b = j->forward->body;
  const char *n = out ? j->forward->ret_names[i] : b->args[i]->name;
  return n ? n : arena_printf(j->a, "%s%d", out ? "out" : "in", i);
}

static void write_sizes(EmitJob *j, FILE *f, const char *P) {
  const IrBlock *b = j->forward->body;
  int64_t batch = -1;
  for (int i = 0; i < b->nargs && batch < 0; i++)
    if (b->args[i]->type.rank && b->args[i]->type.sym[0] != IR_NO_SYM)
      batch = b->args[i]->type.dim[0];
  fprintf(f, "/* The batch size compiled in (-1: no batch axis). */\n");
  fprintf(f, "#define %s_BATCH %lld\n", P, (long long)batch);
  fprintf(f, "#define %s_NUM_INPUTS %d\n#define %s_NUM_OUTPUTS %d\n\n", P,
          b->nargs, P, b->nrets);
  for (int i = 0; i < b->nargs; i++)
    io_macros(j, f, P, "input", io_name(j, false, i), &b->args[i]->type);
  for (int i = 0; i < b->nrets; i++)
    io_macros(j, f, P, "output", io_name(j, true, i), &b->rets[i]->type);
  fprintf(f, "/* Trainable scalars; bytes of the parameter block (parameters and\n"
             "** states, 64-aligned each); scratch bytes of one instance (the\n"
             "** memory plan's peak); estimated flops of one forward call. */\n");
  fprintf(f, "#define %s_PARAM_COUNT %lld\n", P, (long long)j->sizes.param_count);
  fprintf(f, "#define %s_PARAM_BYTES %llu\n", P, (unsigned long long)j->sizes.param_bytes);
  fprintf(f, "#define %s_ARENA_BYTES %llu\n", P, (unsigned long long)j->sizes.arena_bytes);
  fprintf(f, "#define %s_FLOPS %lld\n\n", P, (long long)j->sizes.flops_forward);
}

static void write_errors(FILE *f, const char *p, const char *P) {
  fprintf(f,
          "/* Status codes: every function returns one; %s_error() gives the\n"
          "** message of the last failure (it names the file, the tensor and\n"
          "** what differs). */\n"
          "enum {\n"
          "  %s_OK = 0,\n"
          "  %s_E_NOMEM = NNRT_E_NOMEM,         /* out of memory */\n"
          "  %s_E_IO = NNRT_E_IO,               /* cannot open, read or write a file */\n"
          "  %s_E_FORMAT = NNRT_E_FORMAT,       /* malformed weights file */\n"
          "  %s_E_TRUNCATED = NNRT_E_TRUNCATED, /* weights file shorter than its header says */\n"
          "  %s_E_MISMATCH = NNRT_E_MISMATCH,   /* a tensor's dtype or shape differs */\n"
          "  %s_E_NOTFOUND = NNRT_E_NOTFOUND,   /* a parameter is missing from the file */\n"
          "  %s_E_ARG = NNRT_E_ARG,             /* bad argument */\n"
          "  %s_E_RUN = 64                      /* forward: an index or label out of\n"
          "                                          range, an integer division by 0 */\n"
          "};\n\n",
          p, P, P, P, P, P, P, P, P, P);
}

static void write_funcs(EmitJob *j, FILE *f, const char *p) {
  const IrBlock *b = j->forward->body;
  fprintf(f,
          "extern const NnrtModel %s_desc;\n\n"
          "/* A live model: its parameters and scratch memory. */\n"
          "typedef struct %s_model {\n  NnrtInstance inst;\n  NnrtErr err;\n} %s_model;\n\n",
          p, p, p);
  fprintf(f,
          "/* A new model with zeroed parameters (call %s_init or %s_load);\n"
          "** NULL when out of memory. */\n"
          "static inline %s_model *%s_new(void) {\n"
          "  %s_model *m = (%s_model *)calloc(1, sizeof *m);\n"
          "  if (m && nnrt_instance_new(&%s_desc, &m->inst, &m->err)) {\n"
          "    free(m);\n    m = NULL;\n  }\n  return m;\n}\n\n",
          p, p, p, p, p, p, p);
  fprintf(f,
          "/* Fill the parameters with their initialisers (the same values as\n"
          "** the executable's `init --seed SEED`). */\n"
          "static inline int %s_init(%s_model *m, uint64_t seed) {\n"
          "  return nnrt_instance_init(&m->inst, seed, &m->err);\n}\n\n"
          "/* Load every parameter from a safetensors file; names, dtypes and\n"
          "** shapes must match exactly. */\n"
          "static inline int %s_load(%s_model *m, const char *path) {\n"
          "  return nnrt_instance_load(&m->inst, path, &m->err);\n}\n\n"
          "/* Save the parameters to a safetensors file (atomically). */\n"
          "static inline int %s_save(%s_model *m, const char *path) {\n"
          "  return nnrt_instance_save(&m->inst, path, &m->err);\n}\n\n",
          p, p, p, p, p, p);
  fprintf(f, "/* One forward pass: inputs and outputs are dense row-major arrays of\n"
             "** the sizes above; outputs must not overlap inputs. */\n");
  fprintf(f, "static inline int %s_forward(%s_model *m", p, p);
  for (int i = 0; i < b->nargs; i++)
    fprintf(f, ",\n    const %s *in_%s /* %s */", ctype(b->args[i]->type.dtype),
            ident(j->a, io_name(j, false, i), false),
            ir_type_str(j->a, j->m, &b->args[i]->type));
  for (int i = 0; i < b->nrets; i++)
    fprintf(f, ",\n    %s *out_%s /* %s */", ctype(b->rets[i]->type.dtype),
            ident(j->a, io_name(j, true, i), false),
            ir_type_str(j->a, j->m, &b->rets[i]->type));
  fprintf(f, ") {\n");
  fprintf(f, "  const void *in[%d] = {", b->nargs + 1);
  for (int i = 0; i < b->nargs; i++)
    fprintf(f, "%sin_%s", i ? ", " : "", ident(j->a, io_name(j, false, i), false));
  if (!b->nargs) fputs("0", f);
  fprintf(f, "};\n  void *out[%d] = {", b->nrets + 1);
  for (int i = 0; i < b->nrets; i++)
    fprintf(f, "%sout_%s", i ? ", " : "", ident(j->a, io_name(j, true, i), false));
  if (!b->nrets) fputs("0", f);
  fprintf(f, "};\n"
             "  int st = %s_desc.forward(&m->inst, (void *const *)in, out);\n"
             "  if (st)\n"
             "    return nnrt_err_set(&m->err, %s_E_RUN, \"%s: forward: run-time \"\n"
             "                        \"error %%d (an index or label out of range)\", st);\n"
             "  return 0;\n}\n\n",
          p, ident(j->a, p, true), p);
  fprintf(f,
          "/* The message of the last failure (\"\" when none). */\n"
          "static inline const char *%s_error(const %s_model *m) {\n"
          "  return m ? m->err.msg : \"out of memory\";\n}\n\n"
          "static inline void %s_free(%s_model *m) {\n"
          "  if (!m) return;\n  nnrt_instance_free(&m->inst);\n  free(m);\n}\n\n",
          p, p, p, p);
}

void emit_header_write(EmitJob *j, FILE *f) {
  const char *p = j->prefix, *P = ident(j->a, p, true);
  fprintf(f,
          "/*\n"
          "** %s.h: the C API of the object file nnc made from model '%s'.\n"
          "** Generated by nnc; do not edit.\n"
          "**\n"
          "**   #include \"%s.h\"\n"
          "**   %s_model *m = %s_new();\n"
          "**   if (!m || %s_load(m, \"weights.safetensors\")) ... %s_error(m)\n"
          "**   %s_forward(m, inputs..., outputs...);\n"
          "**   %s_free(m);\n"
          "**\n"
          "** Build: cc -I RUNTIME_INCLUDE prog.c %s.o -L RUNTIME_LIB -lnnrt \\\n"
          "**          -fopenmp -lz -lm\n"
          "** (nnrt.h and libnnrt.a: the runtime/ folder of nnc's build tree, or\n"
          "** include/ and lib/ of an installed nnc.)  Threads: OpenMP\n"
          "** (OMP_NUM_THREADS or nnrt_set_threads).  A model is not safe to use\n"
          "** from two threads at once; create one per thread.\n"
          "*/\n"
          "#ifndef %s_H\n#define %s_H\n\n"
          "#include <stdint.h>\n#include <stdlib.h>\n\n#include \"nnrt.h\"\n\n"
          "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n",
          p, j->m->name ? j->m->name : p, p, p, p, p, p, p, p, p, P, P);
  write_sizes(j, f, P);
  write_errors(f, p, P);
  write_funcs(j, f, p);
  fprintf(f, "#ifdef __cplusplus\n}\n#endif\n#endif /* %s_H */\n", P);
}

bool emit_header(EmitJob *j, const char *path, Diag *d) {
  FILE *f = fopen(path, "w");
  if (!f) {
    diag_error(d, (SrcLoc){0}, "cannot write '%s': %s", path, strerror(errno));
    return false;
  }
  emit_header_write(j, f);
  if (fclose(f) != 0) {
    diag_error(d, (SrcLoc){0}, "cannot write '%s': %s", path, strerror(errno));
    return false;
  }
  return true;
}
