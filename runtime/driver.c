/*
** driver.c: model instances (the arena and the parameter block of a
** compiled model, initialised, loaded and saved through its NnrtModel
** descriptor) and nnrt_main, the command line shared by every executable
** that nnc builds: `init`, `predict`, `info`, and `train` and `eval`
** (train.c).  Every check of a user file against the descriptor names the
** file, the tensor and both values.
*/
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>

/* ------------------------------------------------------------ descriptor */

static char *type_str(char *buf, size_t n, NnrtDType t, const int64_t *dims,
                      int rank) {
  char s[200];
  snprintf(buf, n, "%s%s", nnrt_dtype_name(t), nnrt_shape_str(s, sizeof s, dims, rank));
  return buf;
}

static size_t desc_bytes(const NnrtTensorDesc *d) {
  return (size_t)nnrt_numel(d->dims, d->rank) * nnrt_dtype_size(d->dtype);
}

/* Checks one list of tensors (kind names it in messages). */
static int check_list(const NnrtModel *m, const NnrtTensorDesc *d, int n,
                      const char *kind, bool inblock, NnrtErr *e) {
  if (n < 0 || (n > 0 && !d))
    return nnrt_err_set(e, NNRT_E_ARG, "model '%s': bad %s list", m->name, kind);
  for (int i = 0; i < n; i++) {
    if (!d[i].name || !d[i].name[0])
      return nnrt_err_set(e, NNRT_E_ARG, "model '%s': %s %d has no name",
                          m->name, kind, i);
    if ((unsigned)d[i].dtype >= NNRT_DTYPE_COUNT || d[i].rank < 0 ||
        d[i].rank > NNRT_MAX_RANK || nnrt_numel(d[i].dims, d[i].rank) < 0 ||
        d[i].batch_dim < -1 || d[i].batch_dim >= d[i].rank)
      return nnrt_err_set(e, NNRT_E_ARG, "model '%s': %s '%s' has a bad type",
                          m->name, kind, d[i].name);
    for (int k = 0; k < i; k++)
      if (!strcmp(d[k].name, d[i].name))
        return nnrt_err_set(e, NNRT_E_ARG, "model '%s': duplicate %s '%s'",
                            m->name, kind, d[i].name);
    size_t sz = nnrt_dtype_size(d[i].dtype);
    if (inblock && (d[i].offset % sz || d[i].offset > m->param_bytes ||
                    desc_bytes(&d[i]) > m->param_bytes - d[i].offset))
      return nnrt_err_set(e, NNRT_E_ARG, "model '%s': %s '%s' at offset %zu "
                          "(%zu bytes) is misaligned or outside the %zu-byte "
                          "parameter block", m->name, kind, d[i].name,
                          d[i].offset, desc_bytes(&d[i]), m->param_bytes);
  }
  return 0;
}

/* Parameters and states must not share bytes or names. */
static int check_overlap(const NnrtModel *m, NnrtErr *e) {
  int n = m->nparams + m->nstates;
  for (int i = 0; i < n; i++)
    for (int k = 0; k < i; k++) {
      const NnrtTensorDesc *a = i < m->nparams ? &m->params[i]
                                               : &m->states[i - m->nparams];
      const NnrtTensorDesc *b = k < m->nparams ? &m->params[k]
                                               : &m->states[k - m->nparams];
      if (!strcmp(a->name, b->name))
        return nnrt_err_set(e, NNRT_E_ARG, "model '%s': '%s' is both a "
                            "parameter and a state", m->name, a->name);
      if (desc_bytes(a) && desc_bytes(b) && a->offset < b->offset + desc_bytes(b) &&
          b->offset < a->offset + desc_bytes(a))
        return nnrt_err_set(e, NNRT_E_ARG, "model '%s': '%s' and '%s' overlap "
                            "in the parameter block", m->name, b->name, a->name);
    }
  return 0;
}

const NnrtModel *nnrt_model_upgrade(const NnrtModel *m, NnrtModel *out) {
  if (!m || (m->abi_version != 1 && m->abi_version != NNRT_ABI_VERSION))
    return m;
  memset(out, 0, sizeof *out);
  memcpy(out, m, m->abi_version == 1 ? NNRT_MODEL_V1_SIZE : sizeof *out);
  return out;
}

/* One data source: a known kind, names that are train inputs, files. */
static int check_source(const NnrtModel *m, const NnrtDataSource *s,
                        const char *kind, NnrtErr *e) {
  if (!s) return 0;
  int nf = s->kind == NNRT_DATA_IDX || s->kind == NNRT_DATA_NPY ? s->nnames : 1;
  if ((unsigned)s->kind >= NNRT_DATA_KIND_COUNT || s->nnames < 1 || !s->names ||
      (s->kind != NNRT_DATA_NONE && (s->nfiles != nf || !s->files)) ||
      (s->kind == NNRT_DATA_TEXT && (s->nnames > 2 || s->block < 0)))
    return nnrt_err_set(e, NNRT_E_ARG, "model '%s': bad %s source", m->name, kind);
  for (int i = 0; i < s->nnames; i++) {
    bool known = false;
    for (int k = 0; k < m->ntrain_inputs && s->names[i]; k++)
      known |= !strcmp(m->train_inputs[k].name, s->names[i]);
    if (!known || (s->kind != NNRT_DATA_NONE && !s->files[s->kind == NNRT_DATA_IDX ||
                                                 s->kind == NNRT_DATA_NPY ? i : 0]))
      return nnrt_err_set(e, NNRT_E_ARG, "model '%s': %s source: '%s' is not a "
                          "train input", m->name, kind,
                          s->names[i] ? s->names[i] : "(null)");
  }
  return 0;
}

/* The ABI 2 fields. */
static int check_training(const NnrtModel *m, NnrtErr *e) {
  int rc = check_list(m, m->train_inputs, m->ntrain_inputs, "train input",
                      false, e);
  if (rc) return rc;
  for (int i = 0; i < m->ntrain_inputs; i++)
    if (m->train_inputs[i].rank < 1 ||
        m->train_inputs[i].dims[0] != m->train_inputs[0].dims[0] ||
        (m->batch && m->batch != m->train_inputs[i].dims[0]))
      return nnrt_err_set(e, NNRT_E_ARG, "model '%s': train input '%s' has no "
                          "batch axis 0 of the batch size", m->name,
                          m->train_inputs[i].name);
  if ((m->train_step || m->eval_step) && m->ntrain_inputs < 1)
    return nnrt_err_set(e, NNRT_E_ARG, "model '%s': train_step or eval_step "
                        "without train inputs", m->name);
  if (m->nmetrics < 0 || (m->nmetrics && !m->metric_names) ||
      m->train_metrics < 0 || m->train_metrics > 1 || m->epochs < 0 ||
      m->steps < 0 || (m->epochs && m->steps))
    return nnrt_err_set(e, NNRT_E_ARG, "model '%s': bad training settings",
                        m->name);
  for (int i = 0; i < m->nmetrics; i++)
    if (!m->metric_names[i] || !m->metric_names[i][0])
      return nnrt_err_set(e, NNRT_E_ARG, "model '%s': metric %d has no name",
                          m->name, i);
  if ((rc = check_source(m, m->data, "data", e))) return rc;
  return check_source(m, m->eval_data, "eval_data", e);
}

int nnrt_model_check(const NnrtModel *m, NnrtErr *e) {
  if (!m || (m->abi_version != 1 && m->abi_version != NNRT_ABI_VERSION))
    return nnrt_err_set(e, NNRT_E_ARG, "model descriptor ABI version %d, the "
                        "runtime expects %d (or 1)", m ? m->abi_version : -1,
                        NNRT_ABI_VERSION);
  if (!m->name || !m->forward)
    return nnrt_err_set(e, NNRT_E_ARG, "model descriptor without %s",
                        m->name ? "a forward function" : "a name");
  int rc;
  if ((rc = check_list(m, m->inputs, m->ninputs, "input", false, e)) ||
      (rc = check_list(m, m->outputs, m->noutputs, "output", false, e)) ||
      (rc = check_list(m, m->params, m->nparams, "parameter", true, e)) ||
      (rc = check_list(m, m->states, m->nstates, "state", true, e)) ||
      (rc = check_overlap(m, e)))
    return rc;
  return m->abi_version >= 2 ? check_training(m, e) : 0;
}

/* ------------------------------------------------------------ instance */

int nnrt_instance_new(const NnrtModel *m, NnrtInstance *inst, NnrtErr *e) {
  memset(inst, 0, sizeof *inst);
  int rc = nnrt_model_check(m, e);
  if (rc) return rc;
  inst->model = m;
  inst->seed = m->seed;
  inst->arena = nnrt_arena_new(m->arena_bytes);
  inst->params = nnrt_arena_new(m->param_bytes);
  if (!inst->arena || !inst->params) {
    nnrt_instance_free(inst);
    return nnrt_err_set(e, NNRT_E_NOMEM, "model '%s': cannot allocate %zu + %zu "
                        "bytes", m->name, m->arena_bytes, m->param_bytes);
  }
  return 0;
}

void nnrt_instance_free(NnrtInstance *inst) {
  if (!inst) return;
  nnrt_arena_free(inst->arena);
  nnrt_arena_free(inst->params);
  memset(inst, 0, sizeof *inst);
}

/* Parameter or state number i (parameters first). */
static const NnrtTensorDesc *global(const NnrtModel *m, int i) {
  return i < m->nparams ? &m->params[i] : &m->states[i - m->nparams];
}

int nnrt_instance_init(NnrtInstance *inst, uint64_t seed, NnrtErr *e) {
  const NnrtModel *m = inst->model;
  inst->seed = seed;
  for (int i = 0; i < m->nparams + m->nstates; i++) {
    const NnrtTensorDesc *d = global(m, i);
    int64_t n = nnrt_numel(d->dims, d->rank);
    void *dst = NNRT_PARAM_PTR(inst, d);
    float *f = d->dtype == NNRT_F32 ? dst : malloc((size_t)(n ? n : 1) * 4);
    if (!f) return nnrt_err_set(e, NNRT_E_NOMEM, "out of memory");
    int rc = nnrt_init_tensor(f, d->dims, d->rank, d->init, d->init_args,
                              d->ninit_args, seed, (uint64_t)i, e);
    if (!rc && f != dst) nnrt_from_f32(dst, d->dtype, f, n);
    if (f != dst) free(f);
    if (rc) {
      char msg[NNRT_ERR_MSG];
      snprintf(msg, sizeof msg, "%s", e ? e->msg : "");
      return nnrt_err_set(e, rc, "%s '%s': %s",
                          i < m->nparams ? "parameter" : "state", d->name, msg);
    }
  }
  return 0;
}

/* Compares f with the descriptor; one line per difference in e. */
static int diff_weights(const NnrtModel *m, const NnrtTensorFile *f,
                        const char *path, NnrtErr *e) {
  int nd = 0;
  char a[200], b[200];
  nnrt_err_clear(e);
  for (int i = 0; i < m->nparams + m->nstates; i++) {
    const NnrtTensorDesc *d = global(m, i);
    const NnrtTensor *t = nnrt_tf_find(f, d->name);
    if (!t)
      nnrt_err_append(e, "%s: missing tensor '%s' (the model expects %s)", path,
                      d->name, type_str(a, sizeof a, d->dtype, d->dims, d->rank)), nd++;
    else if (t->dtype != d->dtype)
      nnrt_err_append(e, "%s: tensor '%s' has dtype %s, the model expects %s",
                      path, d->name, nnrt_st_dtype_name(t->dtype),
                      nnrt_st_dtype_name(d->dtype)), nd++;
    else if (t->rank != d->rank ||
             memcmp(t->dims, d->dims, (size_t)d->rank * sizeof *d->dims))
      nnrt_err_append(e, "%s: tensor '%s' has shape %s, the model expects %s",
                      path, d->name, nnrt_shape_str(a, sizeof a, t->dims, t->rank),
                      nnrt_shape_str(b, sizeof b, d->dims, d->rank)), nd++;
  }
  for (int k = 0; k < f->n; k++) {
    bool known = false;
    for (int i = 0; i < m->nparams + m->nstates && !known; i++)
      known = !strcmp(global(m, i)->name, f->t[k].name);
    if (!known)
      nnrt_err_append(e, "%s: extra tensor '%s' (%s) is not in model '%s'", path,
                      f->t[k].name, type_str(a, sizeof a, f->t[k].dtype,
                                             f->t[k].dims, f->t[k].rank),
                      m->name), nd++;
  }
  if (nd && e) e->code = NNRT_E_MISMATCH;
  return nd ? NNRT_E_MISMATCH : 0;
}

int nnrt_instance_load_file(NnrtInstance *inst, const char *path,
                            NnrtTensorFile *f, NnrtErr *e) {
  int rc = nnrt_st_read(path, f, e);
  if (rc) return rc;
  const NnrtModel *m = inst->model;
  if ((rc = diff_weights(m, f, path, e))) {
    nnrt_tf_free(f);
    return rc;
  }
  for (int i = 0; i < m->nparams + m->nstates; i++) {
    const NnrtTensorDesc *d = global(m, i);
    const NnrtTensor *t = nnrt_tf_find(f, d->name);
    memcpy(NNRT_PARAM_PTR(inst, d), t->data, t->nbytes);
  }
  return 0;
}

int nnrt_instance_load(NnrtInstance *inst, const char *path, NnrtErr *e) {
  NnrtTensorFile f;
  int rc = nnrt_instance_load_file(inst, path, &f, e);
  if (!rc) nnrt_tf_free(&f);
  return rc;
}

int nnrt_instance_save(const NnrtInstance *inst, const char *path,
                       NnrtErr *e) {
  return nnrt_instance_save_meta(inst, path, NULL, 0, e);
}

int nnrt_instance_save_meta(const NnrtInstance *inst, const char *path,
                            const char *const *meta, int nmeta, NnrtErr *e) {
  const NnrtModel *m = inst->model;
  int n = m->nparams + m->nstates;
  NnrtTensor *t = calloc((size_t)(n ? n : 1), sizeof *t);
  if (!t) return nnrt_err_set(e, NNRT_E_NOMEM, "out of memory");
  for (int i = 0; i < n; i++) {
    const NnrtTensorDesc *d = global(m, i);
    nnrt_tensor_shape(&t[i], d->dtype, d->dims, d->rank);
    t[i].name = d->name;
    t[i].data = NNRT_PARAM_PTR(inst, d);
  }
  const char **all = calloc(2 * (size_t)nmeta + 4, sizeof *all);
  if (!all) {
    free(t);
    return nnrt_err_set(e, NNRT_E_NOMEM, "out of memory");
  }
  all[0] = "format", all[1] = "nnc", all[2] = "model", all[3] = m->name;
  for (int i = 0; i < 2 * nmeta; i++) all[4 + i] = meta[i];
  int rc = nnrt_st_write(path, t, n, all, nmeta + 2, e);
  free(all);
  free(t);
  return rc;
}

/* ------------------------------------------------------------ command line */

typedef struct Cli {
  const NnrtModel *m;
  const char *prog;
  FILE *out, *err;
  NnrtErr e;
} Cli;

static int fail(Cli *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(Cli *c, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(c->err, "%s: ", c->prog);
  vfprintf(c->err, fmt, ap);
  fputc('\n', c->err);
  va_end(ap);
  return status;
}

static int fail_err(Cli *c) { return fail(c, 1, "%s", c->e.msg); }

static void usage(Cli *c, FILE *f) {
  fprintf(f,
          "usage: %s [--threads N] COMMAND [OPTIONS]\n"
          "\n"
          "The executable of model '%s', compiled by nnc.\n"
          "\n"
          "commands:\n"
          "  init --save W.safetensors [--seed S]\n"
          "        fill every parameter and state with its initialiser and\n"
          "        save them (seed default %llu)\n"
          "  predict --weights W.safetensors --input [NAME=]FILE.npy ...\n"
          "          --output [NAME=]FILE.npy ...\n"
          "        run the forward pass on NPY inputs (NAME= may be left out\n"
          "        when the model has one input or one output), with the\n"
          "        averaged weights when the model keeps them\n"
          "  info  list the inputs, outputs, parameters and states with their\n"
          "        shapes, the arena bytes and the FLOPs per forward pass\n"
          "  train [--epochs N | --steps N] [--data NAME=FILE ...]\n"
          "        [--eval-data NAME=FILE ...] [--save W] [--save-every N]\n"
          "        [--resume W] [--log FILE.csv] [--seed S] [--batch-limit K]\n"
          "        train from the train block's data (see `train --help`)\n"
          "  eval --weights W [--data NAME=FILE ...]\n"
          "        loss and metrics over the eval data (else the train data)\n"
          "\n"
          "options:\n"
          "  --threads N  OpenMP threads (default: all processors)\n"
          "  --help       this text\n"
          "\n"
          "Exit status: 0 success, 1 error (one message on stderr), 2 bad "
          "usage.\n",
          c->prog, c->m->name, (unsigned long long)c->m->seed);
}

static bool parse_u64(const char *s, uint64_t *v) {
  char *end;
  if (!s || !*s || *s == '-') return false;
  errno = 0;
  unsigned long long x = strtoull(s, &end, 0);
  if (errno || *end) return false;
  *v = x;
  return true;
}

static int cmd_info(Cli *c) {
  const NnrtModel *m = c->m;
  char t[256];
  FILE *o = c->out;
  fprintf(o, "model: %s\n", m->name);
  const NnrtTensorDesc *lists[2] = {m->inputs, m->outputs};
  int counts[2] = {m->ninputs, m->noutputs};
  for (int l = 0; l < 2; l++) {
    fprintf(o, "%s:\n", l ? "outputs" : "inputs");
    for (int i = 0; i < counts[l]; i++) {
      const NnrtTensorDesc *d = &lists[l][i];
      fprintf(o, "  %s: %s", d->name, type_str(t, sizeof t, d->dtype, d->dims, d->rank));
      if (d->batch_dim >= 0) fprintf(o, " (batch axis %d)", d->batch_dim);
      fputc('\n', o);
    }
  }
  for (int l = 0; l < 2; l++) {
    const NnrtTensorDesc *d = l ? m->states : m->params;
    int n = l ? m->nstates : m->nparams;
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += nnrt_numel(d[i].dims, d[i].rank);
    fprintf(o, "%s: %d tensors, %lld values\n", l ? "states" : "parameters", n,
            (long long)total);
    for (int i = 0; i < n; i++) {
      fprintf(o, "  %s: %s = %s", d[i].name,
              type_str(t, sizeof t, d[i].dtype, d[i].dims, d[i].rank),
              d[i].init ? d[i].init : "zeros");
      for (int a = 0; a < d[i].ninit_args; a++)
        fprintf(o, "%s%s: %g", a ? ", " : "(", d[i].init_args[a].name,
                d[i].init_args[a].value);
      fprintf(o, "%s\n", d[i].ninit_args ? ")" : "");
    }
  }
  fprintf(o, "arena bytes: %zu\n", m->arena_bytes);
  fprintf(o, "parameter bytes: %zu\n", m->param_bytes);
  fprintf(o, "flops per forward: %lld\n", (long long)m->flops_forward);
  return 0;
}

static int cmd_init(Cli *c, int argc, char **argv) {
  const char *save = NULL;
  uint64_t seed = c->m->seed;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--save") && i + 1 < argc) save = argv[++i];
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
      if (!parse_u64(argv[++i], &seed))
        return fail(c, 2, "init: --seed needs a non-negative integer, got '%s'",
                    argv[i]);
    } else
      return fail(c, 2, "init: unexpected argument '%s' (see --help)", argv[i]);
  }
  if (!save) return fail(c, 2, "init: --save W.safetensors is required");
  NnrtInstance inst;
  if (nnrt_instance_new(c->m, &inst, &c->e)) return fail_err(c);
  int rc = nnrt_instance_init(&inst, seed, &c->e);
  if (!rc) rc = nnrt_instance_save(&inst, save, &c->e);
  nnrt_instance_free(&inst);
  return rc ? fail_err(c) : 0;
}

/* "NAME=FILE" naming one of d[0..n), or "FILE" when n == 1. */
static int pick(Cli *c, const char *arg, const NnrtTensorDesc *d, int n,
                const char *kind, const char **file) {
  const char *eq = strchr(arg, '=');
  for (int i = 0; eq && i < n; i++)
    if (strlen(d[i].name) == (size_t)(eq - arg) &&
        !memcmp(d[i].name, arg, (size_t)(eq - arg))) {
      *file = eq + 1;
      return i;
    }
  if (n == 1) {
    *file = arg;
    return 0;
  }
  fprintf(c->err, "%s: predict: '%s' does not name an %s of model '%s' (",
          c->prog, arg, kind, c->m->name);
  for (int i = 0; i < n; i++) fprintf(c->err, "%s%s", i ? ", " : "", d[i].name);
  fprintf(c->err, "); write --%s NAME=FILE.npy\n", kind);
  return -1;
}

/* Reads input i from file into an aligned buffer, checking its type. */
static int load_input(Cli *c, const NnrtTensorDesc *d, const char *file,
                      void **buf) {
  NnrtTensor t;
  char a[200], b[200];
  if (nnrt_npy_read(file, &t, &c->e)) return fail_err(c);
  int rc = 0;
  if (t.dtype != d->dtype)
    rc = fail(c, 1, "%s: input '%s' has dtype %s, the model expects %s", file,
              d->name, nnrt_dtype_name(t.dtype), nnrt_dtype_name(d->dtype));
  else if (t.rank != d->rank ||
           memcmp(t.dims, d->dims, (size_t)d->rank * sizeof *d->dims))
    rc = fail(c, 1, "%s: input '%s' has shape %s, the model expects %s", file,
              d->name, nnrt_shape_str(a, sizeof a, t.dims, t.rank),
              nnrt_shape_str(b, sizeof b, d->dims, d->rank));
  else if (!(*buf = nnrt_arena_new(t.nbytes)))
    rc = fail(c, 1, "%s: out of memory", file);
  else
    memcpy(*buf, t.data, t.nbytes);
  nnrt_tensor_free(&t);
  return rc;
}

/* Parsed predict arguments. */
typedef struct Predict {
  const char *weights;
  const char **in_file, **out_file; /* per input / output, NULL if absent */
  void **in, **out;                 /* buffers */
} Predict;

static int predict_args(Cli *c, Predict *p, int argc, char **argv) {
  const NnrtModel *m = c->m;
  for (int i = 0; i < argc; i++) {
    const char *f;
    int k;
    if (!strcmp(argv[i], "--weights") && i + 1 < argc) p->weights = argv[++i];
    else if (!strcmp(argv[i], "--input") && i + 1 < argc) {
      if ((k = pick(c, argv[++i], m->inputs, m->ninputs, "input", &f)) < 0)
        return 2;
      p->in_file[k] = f;
    } else if (!strcmp(argv[i], "--output") && i + 1 < argc) {
      if ((k = pick(c, argv[++i], m->outputs, m->noutputs, "output", &f)) < 0)
        return 2;
      p->out_file[k] = f;
    } else
      return fail(c, 2, "predict: unexpected argument '%s' (see --help)",
                  argv[i]);
  }
  if (!p->weights) return fail(c, 2, "predict: --weights W.safetensors is required");
  for (int i = 0; i < m->ninputs; i++)
    if (!p->in_file[i])
      return fail(c, 2, "predict: missing --input %s=FILE.npy", m->inputs[i].name);
  int nout = 0;
  for (int i = 0; i < m->noutputs; i++) nout += p->out_file[i] != NULL;
  if (!nout) return fail(c, 2, "predict: --output [NAME=]FILE.npy is required");
  return 0;
}

static int predict_run(Cli *c, Predict *p) {
  const NnrtModel *m = c->m;
  NnrtInstance inst;
  int rc = 0;
  for (int i = 0; i < m->ninputs && !rc; i++)
    rc = load_input(c, &m->inputs[i], p->in_file[i], &p->in[i]);
  if (rc) return rc;
  if (nnrt_instance_new(m, &inst, &c->e)) return fail_err(c);
  if (nnrt_instance_load(&inst, p->weights, &c->e) ||
      nnrt_instance_average(&inst, &c->e)) {
    nnrt_instance_free(&inst);
    return fail_err(c);
  }
  for (int i = 0; i < m->noutputs && !rc; i++)
    if (!(p->out[i] = nnrt_arena_new(desc_bytes(&m->outputs[i]))))
      rc = fail(c, 1, "out of memory");
  int st = rc ? 0 : m->forward(&inst, p->in, p->out);
  if (st) rc = fail(c, 1, "model '%s': forward failed (status %d)", m->name, st);
  for (int i = 0; i < m->noutputs && !rc; i++) {
    if (!p->out_file[i]) continue;
    const NnrtTensorDesc *d = &m->outputs[i];
    NnrtTensor t = {.name = d->name, .data = p->out[i]};
    nnrt_tensor_shape(&t, d->dtype, d->dims, d->rank);
    if (nnrt_npy_write(p->out_file[i], &t, &c->e)) rc = fail_err(c);
  }
  nnrt_instance_free(&inst);
  return rc;
}

static int cmd_predict(Cli *c, int argc, char **argv) {
  const NnrtModel *m = c->m;
  int ni = m->ninputs, no = m->noutputs;
  Predict p = {0};
  p.in_file = calloc((size_t)ni + 1, sizeof *p.in_file);
  p.out_file = calloc((size_t)no + 1, sizeof *p.out_file);
  p.in = calloc((size_t)ni + 1, sizeof *p.in);
  p.out = calloc((size_t)no + 1, sizeof *p.out);
  int rc = !p.in_file || !p.out_file || !p.in || !p.out
               ? fail(c, 1, "out of memory")
               : predict_args(c, &p, argc, argv);
  if (!rc) rc = predict_run(c, &p);
  for (int i = 0; p.in && i < ni; i++) nnrt_arena_free(p.in[i]);
  for (int i = 0; p.out && i < no; i++) nnrt_arena_free(p.out[i]);
  free(p.in_file);
  free(p.out_file);
  free(p.in);
  free(p.out);
  return rc;
}

int nnrt_main_io(const NnrtModel *m0, int argc, char **argv, FILE *out,
                 FILE *err) {
  NnrtModel full;
  const NnrtModel *m = nnrt_model_upgrade(m0, &full);
  Cli c = {m, argc > 0 && argv[0] ? nnrt_basename(argv[0]) : "model", out, err,
           {0}};
  if (nnrt_model_check(m, &c.e)) return fail(&c, 1, "%s", c.e.msg);
  if (m->name && (!argv || !argv[0])) c.prog = m->name;
  /* Global options, then the command and its arguments. */
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    uint64_t n;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(&c, out);
      return 0;
    } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      if (!parse_u64(argv[++i], &n) || n < 1 || n > 4096)
        return fail(&c, 2, "--threads needs a positive integer, got '%s'",
                    argv[i]);
      nnrt_set_threads((int)n);
    } else {
      return fail(&c, 2, "unknown option '%s' (see --help)", argv[i]);
    }
  }
  if (i >= argc) {
    usage(&c, err);
    return 2;
  }
  const char *cmd = argv[i++];
  /* --threads may also follow the command. */
  int k = i;
  for (int j = i; j < argc; j++) {
    uint64_t n;
    if (!strcmp(argv[j], "--threads") && j + 1 < argc) {
      if (!parse_u64(argv[++j], &n) || n < 1 || n > 4096)
        return fail(&c, 2, "--threads needs a positive integer, got '%s'",
                    argv[j]);
      nnrt_set_threads((int)n);
    } else if ((!strcmp(argv[j], "--help") || !strcmp(argv[j], "-h")) &&
               strcmp(cmd, "train") && strcmp(cmd, "eval")) {
      usage(&c, out);
      return 0;
    } else {
      argv[k++] = argv[j];
    }
  }
  argc = k;
  if (!strcmp(cmd, "info")) {
    if (argc > i) return fail(&c, 2, "info: unexpected argument '%s'", argv[i]);
    return cmd_info(&c);
  }
  if (!strcmp(cmd, "init")) return cmd_init(&c, argc - i, argv + i);
  if (!strcmp(cmd, "predict")) return cmd_predict(&c, argc - i, argv + i);
  if (!strcmp(cmd, "train") && m->train_step)
    return nnrt_cmd_train(m, c.prog, argc - i, argv + i, out, err);
  if (!strcmp(cmd, "eval") && m->eval_step)
    return nnrt_cmd_eval(m, c.prog, argc - i, argv + i, out, err);
  if (!strcmp(cmd, "train") || !strcmp(cmd, "eval") || !strcmp(cmd, "sample"))
    return fail(&c, 2, "'%s' is not available in this build of model '%s' "
                "(%s)", cmd, m->name, !strcmp(cmd, "sample")
                    ? "not written yet"
                    : !strcmp(cmd, "train") ? "it has no train block"
                                            : "it has no loss");
  return fail(&c, 2, "unknown command '%s' (commands: init, predict, info, "
              "train, eval; see --help)", cmd);
}

int nnrt_main(const NnrtModel *m, int argc, char **argv) {
  return nnrt_main_io(m, argc, argv, stdout, stderr);
}
