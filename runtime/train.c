/*
** train.c: the `train` and `eval` commands of every generated executable.
** Training draws the batches of each epoch by a seeded shuffle
** (nnrt_shuffle of (seed, epoch)), calls the model's train_step once per
** batch, keeps running means of the loss and metrics over the epoch,
** evaluates at the end of each epoch (with the averaged weights when the
** model has them), shows a live line on a terminal and writes an optional
** CSV log.  Checkpoints (--save) hold the parameters, the states and the
** position of the run as safetensors metadata; --resume continues from one
** so that the rest of the run is bit-identical to an uninterrupted one.
** Ctrl-C finishes the current step, saves and exits 130.
**
** The only mutable global of the runtime lives here: the flag that the
** SIGINT handler sets (a handler can reach nothing else).
*/
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------- shuffle */

void nnrt_shuffle(int64_t *perm, int64_t n, uint64_t seed, uint64_t epoch) {
  uint64_t key = nnrt_rng_key(seed, 0);
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    uint32_t r[4];
    nnrt_philox(key, NNRT_SHUFFLE_COUNTER + epoch, (uint64_t)i, r);
    uint64_t w = (uint64_t)r[0] | (uint64_t)r[1] << 32;
    int64_t j = (int64_t)(((unsigned __int128)w * (uint64_t)(i + 1)) >> 64);
    int64_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

/* ------------------------------------------------------------- SIGINT */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
  if (interrupted) { /* a second Ctrl-C: stop now */
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  interrupted = 1;
}

/* ------------------------------------------------------------- state */

typedef struct Opts {
  int64_t epochs, steps, save_every, batch_limit;
  uint64_t seed;
  bool seed_set;
  const char *save, *resume, *log, *weights;
  const char **data, **eval_data; /* NAME=FILE */
  int ndata, neval;
} Opts;

typedef struct Train {
  const NnrtModel *m;
  const char *prog;
  FILE *out, *err;
  NnrtErr e;
  Opts o;
  NnrtInstance inst;
  NnrtData data, eval;
  bool has_eval;
  int64_t B, spe, total;   /* batch, steps per epoch, steps of the run */
  int64_t step;            /* steps done */
  uint64_t seed;
  int64_t *perm, perm_epoch, *idx;
  void **in;               /* ntrain_inputs batches + epoch + total_steps */
  void *scalars, *outs_blk;
  void **outs;             /* loss, lr, metrics (train) */
  void **eouts;            /* loss, metrics (eval) */
  double loss_sum, *metric_sum; /* running sums over the epoch */
  int64_t mean_steps;
  FILE *log;
  double t0;
} Train;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fail(Train *t, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(Train *t, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(t->err, "%s: ", t->prog);
  vfprintf(t->err, fmt, ap);
  fputc('\n', t->err);
  va_end(ap);
  return status;
}

static int fail_err(Train *t) { return fail(t, 1, "%s", t->e.msg); }

static float f32_at(void *p) {
  float f;
  memcpy(&f, p, 4);
  return f;
}

/* ------------------------------------------------------------- options */

static bool parse_i64(const char *s, int64_t *v, int64_t min) {
  char *end;
  if (!s || !*s) return false;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (errno || *end || x < min) return false;
  *v = x;
  return true;
}

static void train_usage(Train *t, bool eval) {
  if (eval)
    fprintf(t->out,
            "usage: %s eval --weights W [--data NAME=FILE ...] [--batch-limit K]\n"
            "  Loss and metrics of model '%s' over the eval data of its train\n"
            "  block (else its train data), in full batches, in file order,\n"
            "  with the averaged weights when the model keeps them.\n",
            t->prog, t->m->name);
  else
    fprintf(t->out,
            "usage: %s train [--epochs N | --steps N] [--data NAME=FILE ...]\n"
            "         [--eval-data NAME=FILE ...] [--save W] [--save-every N]\n"
            "         [--resume W] [--log FILE.csv] [--seed S] [--batch-limit K]\n"
            "  --epochs/--steps  the length of the whole run (a resumed run\n"
            "                    counts the steps already done)\n"
            "  --data NAME=FILE  the file that fills input NAME (replaces the\n"
            "                    train block's); --eval-data likewise\n"
            "  --save W          checkpoint at the end, every --save-every N\n"
            "                    steps and on Ctrl-C (atomically)\n"
            "  --resume W        continue a checkpoint (or start from weights)\n"
            "  --log FILE.csv    one row per step and per evaluation\n"
            "  --seed S          initialisation, shuffling and rand\n"
            "  --batch-limit K   at most K batches per epoch and per evaluation\n"
            "Batches are drawn by a shuffle of (seed, epoch); the last partial\n"
            "batch of an epoch is dropped.  Ctrl-C saves and exits 130.\n",
            t->prog);
}

/* Argument i's value as a count >= min (usage error otherwise). */
static int opt_count(Train *t, const char *cmd, int argc, char **argv, int *i,
                     int64_t *v, int64_t min) {
  const char *name = argv[*i];
  if (*i + 1 >= argc || !parse_i64(argv[*i + 1], v, min))
    return fail(t, 2, "%s: %s needs an integer >= %lld%s%s%s", cmd, name,
                (long long)min, *i + 1 < argc ? ", got '" : "",
                *i + 1 < argc ? argv[*i + 1] : "", *i + 1 < argc ? "'" : "");
  ++*i;
  return 0;
}

static int parse_opts(Train *t, bool eval, int argc, char **argv) {
  Opts *o = &t->o;
  const char *cmd = eval ? "eval" : "train";
  o->data = calloc((size_t)argc + 1, sizeof *o->data);
  o->eval_data = calloc((size_t)argc + 1, sizeof *o->eval_data);
  if (!o->data || !o->eval_data) return fail(t, 1, "out of memory");
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    bool v = i + 1 < argc;
    int rc = 0;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      train_usage(t, eval);
      return -1;
    } else if (!strcmp(a, "--data") && v) o->data[o->ndata++] = argv[++i];
    else if (!strcmp(a, "--batch-limit"))
      rc = opt_count(t, cmd, argc, argv, &i, &o->batch_limit, 1);
    else if (eval && !strcmp(a, "--weights") && v) o->weights = argv[++i];
    else if (eval) return fail(t, 2, "eval: unexpected argument '%s' (see eval --help)", a);
    else if (!strcmp(a, "--eval-data") && v) o->eval_data[o->neval++] = argv[++i];
    else if (!strcmp(a, "--save") && v) o->save = argv[++i];
    else if (!strcmp(a, "--resume") && v) o->resume = argv[++i];
    else if (!strcmp(a, "--log") && v) o->log = argv[++i];
    else if (!strcmp(a, "--epochs"))
      rc = opt_count(t, cmd, argc, argv, &i, &o->epochs, 1);
    else if (!strcmp(a, "--steps"))
      rc = opt_count(t, cmd, argc, argv, &i, &o->steps, 1);
    else if (!strcmp(a, "--save-every"))
      rc = opt_count(t, cmd, argc, argv, &i, &o->save_every, 1);
    else if (!strcmp(a, "--seed")) {
      int64_t s;
      if ((rc = opt_count(t, cmd, argc, argv, &i, &s, 0))) return rc;
      o->seed = (uint64_t)s, o->seed_set = true;
    } else
      return fail(t, 2, "train: unexpected argument '%s' (see train --help)", a);
    if (rc) return rc;
  }
  if (eval && !o->weights) return fail(t, 2, "eval: --weights W.safetensors is required");
  if (o->epochs && o->steps) return fail(t, 2, "train: give --epochs or --steps, not both");
  if (o->save_every && !o->save) return fail(t, 2, "train: --save-every needs --save W");
  return 0;
}

/* ------------------------------------------------------------- buffers */

static int alloc_buffers(Train *t) {
  const NnrtModel *m = t->m;
  int ni = m->ntrain_inputs, nm = m->nmetrics;
  t->in = calloc((size_t)ni + 2, sizeof *t->in);
  t->outs = calloc((size_t)nm + 2, sizeof *t->outs);
  t->eouts = calloc((size_t)nm + 1, sizeof *t->eouts);
  t->metric_sum = calloc((size_t)nm + 1, sizeof *t->metric_sum);
  t->idx = calloc((size_t)t->B, sizeof *t->idx);
  t->scalars = nnrt_arena_new(128);
  t->outs_blk = nnrt_arena_new(64 * ((size_t)nm + 2));
  if (!t->in || !t->outs || !t->eouts || !t->metric_sum || !t->idx ||
      !t->scalars || !t->outs_blk)
    return fail(t, 1, "out of memory");
  for (int i = 0; i < ni; i++) {
    const NnrtTensorDesc *d = &m->train_inputs[i];
    size_t bytes = (size_t)nnrt_numel(d->dims, d->rank) * nnrt_dtype_size(d->dtype);
    if (!(t->in[i] = nnrt_arena_new(bytes))) return fail(t, 1, "out of memory");
  }
  t->in[ni] = t->scalars;
  t->in[ni + 1] = (char *)t->scalars + 64;
  for (int k = 0; k < nm + 2; k++) t->outs[k] = (char *)t->outs_blk + 64 * k;
  t->eouts[0] = t->outs[0];
  for (int k = 0; k < nm; k++) t->eouts[k + 1] = t->outs[k + 2];
  return 0;
}

static void free_all(Train *t) {
  for (int i = 0; t->in && i < t->m->ntrain_inputs; i++) nnrt_arena_free(t->in[i]);
  free(t->in);
  free(t->outs);
  free(t->eouts);
  free(t->metric_sum);
  free(t->idx);
  free(t->perm);
  nnrt_arena_free(t->scalars);
  nnrt_arena_free(t->outs_blk);
  nnrt_data_free(&t->data);
  nnrt_data_free(&t->eval);
  nnrt_instance_free(&t->inst);
  free(t->o.data);
  free(t->o.eval_data);
  if (t->log) fclose(t->log);
}

/* Gathers samples ids[0 .. B) of d into the input buffers. */
static void gather(Train *t, const NnrtData *d, const int64_t *ids) {
  for (int c = 0; c < d->ncols; c++) nnrt_data_gather(d, c, ids, t->B, t->in[c]);
}

/* The message of a failed entry point. */
static int step_failed(Train *t, const char *fn, int st, const char *where) {
  const char *why = st == NNRT_STEP_E_INDEX
                        ? "a label or index of the batch is out of range"
                    : st == NNRT_STEP_E_NONFINITE ? "a value is not finite"
                                                  : "failed";
  return fail(t, 1, "model '%s': %s %s (status %d) %s", t->m->name, fn, why,
              st, where);
}

/* ---------------------------------------------------------- evaluation */

int nnrt_instance_average(NnrtInstance *inst, NnrtErr *e) {
  const NnrtModel *m = inst->model;
  if (m->abi_version < 2 || !m->average) return 0;
  void *scratch = nnrt_arena_new(m->param_bytes);
  void **outs = calloc((size_t)m->nparams + 1, sizeof *outs);
  int rc = 0;
  if (!scratch || !outs) {
    rc = nnrt_err_set(e, NNRT_E_NOMEM, "out of memory");
  } else {
    for (int i = 0; i < m->nparams; i++)
      outs[i] = (char *)scratch + m->params[i].offset;
    int st = m->average(inst, NULL, outs);
    if (st)
      rc = nnrt_err_set(e, NNRT_E_ARG, "model '%s': average failed (status %d)",
                        m->name, st);
    for (int i = 0; i < m->nparams && !rc; i++)
      memcpy(NNRT_PARAM_PTR(inst, &m->params[i]), outs[i],
             (size_t)nnrt_numel(m->params[i].dims, m->params[i].rank) *
                 nnrt_dtype_size(m->params[i].dtype));
  }
  nnrt_arena_free(scratch);
  free(outs);
  return rc;
}

/* Puts the averaged weights in place of the params; *backup gets the
** parameter block to restore (NULL without averaging). */
static int swap_in_average(Train *t, void **backup) {
  *backup = NULL;
  if (!t->m->average) return 0;
  if (!(*backup = nnrt_arena_new(t->m->param_bytes))) return fail(t, 1, "out of memory");
  memcpy(*backup, t->inst.params, t->m->param_bytes);
  if (!nnrt_instance_average(&t->inst, &t->e)) return 0;
  nnrt_arena_free(*backup);
  *backup = NULL;
  return fail_err(t);
}

static void swap_out_average(Train *t, void *backup) {
  if (!backup) return;
  memcpy(t->inst.params, backup, t->m->param_bytes);
  nnrt_arena_free(backup);
}

/* Means of eval_step's loss and metrics over the full batches of d (file
** order); *samples gets the count evaluated. */
static int evaluate(Train *t, const NnrtData *d, double *loss, double *metrics,
                    int64_t *samples) {
  const NnrtModel *m = t->m;
  int64_t nb = d->n / t->B;
  if (t->o.batch_limit && nb > t->o.batch_limit) nb = t->o.batch_limit;
  if (nb < 1)
    return fail(t, 1, "eval data: %lld samples do not fill one batch of %lld",
                (long long)d->n, (long long)t->B);
  void *backup;
  int rc = swap_in_average(t, &backup);
  if (rc) return rc;
  *loss = 0;
  for (int k = 0; k < m->nmetrics; k++) metrics[k] = 0;
  for (int64_t b = 0; b < nb && !rc && !interrupted; b++) {
    for (int64_t i = 0; i < t->B; i++) t->idx[i] = b * t->B + i;
    gather(t, d, t->idx);
    int st = m->eval_step(&t->inst, t->in, t->eouts);
    if (st) {
      char where[128];
      snprintf(where, sizeof where, "on eval batch %lld (samples %lld..%lld)",
               (long long)b + 1, (long long)(b * t->B),
               (long long)((b + 1) * t->B - 1));
      rc = step_failed(t, "eval_step", st, where);
    }
    *loss += f32_at(t->eouts[0]);
    for (int k = 0; k < m->nmetrics; k++) metrics[k] += f32_at(t->eouts[k + 1]);
  }
  swap_out_average(t, backup);
  *loss /= (double)nb;
  for (int k = 0; k < m->nmetrics; k++) metrics[k] /= (double)nb;
  *samples = nb * t->B;
  return rc;
}

/* "loss 0.123456 accuracy 0.912300" */
static void print_means(FILE *f, const NnrtModel *m, double loss,
                        const double *metrics, int nm) {
  fprintf(f, "loss %.6f", loss);
  for (int k = 0; k < nm; k++) fprintf(f, " %s %.6f", m->metric_names[k], metrics[k]);
}

/* ------------------------------------------------------------- the log */

static int open_log(Train *t) {
  if (!t->o.log) return 0;
  bool append = false;
  if (t->step > 0) { /* a resumed run continues its log */
    FILE *f = fopen(t->o.log, "r");
    if (f) {
      append = fgetc(f) != EOF;
      fclose(f);
    }
  }
  if (!(t->log = fopen(t->o.log, append ? "a" : "w")))
    return fail(t, 1, "%s: %s", t->o.log, strerror(errno));
  if (!append) {
    fprintf(t->log, "phase,epoch,step,loss");
    for (int k = 0; k < t->m->nmetrics; k++) fprintf(t->log, ",%s", t->m->metric_names[k]);
    fprintf(t->log, ",lr,samples_per_s,elapsed_s\n");
  }
  return 0;
}

/* One row; metrics NULL leaves their columns empty, lr < 0 its column. */
static void log_row(Train *t, const char *phase, int64_t epoch, double loss,
                    const double *metrics, double lr, double rate) {
  if (!t->log) return;
  fprintf(t->log, "%s,%lld,%lld,%.9g", phase, (long long)epoch,
          (long long)t->step, loss);
  for (int k = 0; k < t->m->nmetrics; k++)
    if (metrics) fprintf(t->log, ",%.9g", metrics[k]);
    else fputc(',', t->log);
  if (lr >= 0) fprintf(t->log, ",%.9g", lr);
  else fputc(',', t->log);
  fprintf(t->log, ",%.6g,%.6f\n", rate, now() - t->t0);
  fflush(t->log);
}

/* ---------------------------------------------------------- checkpoints */

/* Writes the checkpoint: params, states and the position of the run. */
static int save(Train *t) {
  const NnrtModel *m = t->m;
  char v[8][64];
  char *sums = calloc((size_t)m->nmetrics + 1, 32);
  if (!sums) return fail(t, 1, "out of memory");
  for (int k = 0; k < m->nmetrics; k++)
    snprintf(sums + strlen(sums), 32, "%s%a", k ? "," : "", t->metric_sum[k]);
  snprintf(v[0], 64, "%lld", (long long)t->step);
  snprintf(v[1], 64, "%lld", (long long)(t->step / t->spe));
  snprintf(v[2], 64, "%llu", (unsigned long long)t->seed);
  snprintf(v[3], 64, "%lld", (long long)t->total);
  snprintf(v[4], 64, "%lld", (long long)t->spe);
  snprintf(v[5], 64, "%lld", (long long)t->data.n);
  snprintf(v[6], 64, "%a", t->loss_sum);
  snprintf(v[7], 64, "%lld", (long long)t->mean_steps);
  const char *meta[] = {"step", v[0], "epoch", v[1], "seed", v[2],
                        "total_steps", v[3], "steps_per_epoch", v[4],
                        "samples", v[5], "loss_sum", v[6], "mean_steps", v[7],
                        "metric_sums", sums,
                        "shuffle", "fisher-yates philox4x32-10 (seed, epoch)"};
  int rc = nnrt_instance_save_meta(&t->inst, t->o.save, meta, 10, &t->e);
  free(sums);
  return rc ? fail_err(t) : 0;
}

static bool meta_i64(const NnrtTensorFile *f, const char *key, int64_t *v) {
  const char *s = nnrt_tf_meta(f, key);
  return s && parse_i64(s, v, 0);
}

/* Restores the position of the run from the checkpoint's metadata (a
** weights file without it starts at step 0 from those weights). */
static int resume_meta(Train *t, const NnrtTensorFile *f) {
  const char *path = t->o.resume;
  int64_t step, spe, seed, ms;
  if (!nnrt_tf_meta(f, "step")) return 0;
  if (!meta_i64(f, "step", &step) || !meta_i64(f, "steps_per_epoch", &spe) ||
      !meta_i64(f, "seed", &seed) || !meta_i64(f, "mean_steps", &ms) ||
      !nnrt_tf_meta(f, "loss_sum") || !nnrt_tf_meta(f, "metric_sums"))
    return fail(t, 1, "%s: bad training metadata", path);
  if (spe != t->spe)
    return fail(t, 1, "%s: saved with %lld steps per epoch, this run has %lld "
                "(other data, batch or --batch-limit): cannot continue its "
                "epoch", path, (long long)spe, (long long)t->spe);
  if (t->o.seed_set && t->o.seed != (uint64_t)seed)
    return fail(t, 2, "train: --seed %llu differs from the seed %lld of %s",
                (unsigned long long)t->o.seed, (long long)seed, path);
  int64_t total;
  if (!t->o.epochs && !t->o.steps && meta_i64(f, "total_steps", &total) && total > 0)
    t->total = total; /* the interrupted run's length */
  t->step = step;
  t->seed = (uint64_t)seed;
  t->mean_steps = ms;
  t->loss_sum = strtod(nnrt_tf_meta(f, "loss_sum"), NULL);
  const char *s = nnrt_tf_meta(f, "metric_sums");
  for (int k = 0; k < t->m->nmetrics && *s; k++) {
    char *end;
    t->metric_sum[k] = strtod(s, &end);
    s = *end == ',' ? end + 1 : end;
  }
  return 0;
}

/* ---------------------------------------------------------- train */

/* --save's folder must be writable before hours of training, not after. */
static int check_save_dir(Train *t) {
  const char *w = t->o.save, *slash = w ? strrchr(w, '/') : NULL;
  if (!w) return 0;
  char dir[4096];
  snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - w) + (slash == w) : 1,
           slash ? w : ".");
  if (access(dir, W_OK | X_OK))
    return fail(t, 1, "%s: cannot write in folder '%s': %s", w, dir, strerror(errno));
  return 0;
}

static int setup_data(Train *t) {
  const NnrtModel *m = t->m;
  if (nnrt_data_load(m, m->data, t->o.data, t->o.ndata, "train data", &t->data, &t->e))
    return fail_err(t);
  if ((m->eval_data || t->o.neval) && m->eval_step) {
    if (nnrt_data_load(m, m->eval_data, t->o.eval_data, t->o.neval,
                       "eval data", &t->eval, &t->e))
      return fail_err(t);
    t->has_eval = true;
  } else if (t->o.neval) {
    return fail(t, 2, "train: model '%s' has no eval_step for --eval-data",
                m->name);
  }
  t->spe = t->data.n / t->B;
  if (t->o.batch_limit && t->spe > t->o.batch_limit) t->spe = t->o.batch_limit;
  if (t->spe < 1)
    return fail(t, 1, "train data: %lld samples do not fill one batch of %lld",
                (long long)t->data.n, (long long)t->B);
  int64_t epochs = t->o.epochs, steps = t->o.steps;
  if (!epochs && !steps) epochs = m->epochs, steps = m->steps;
  t->total = steps ? steps : (epochs ? epochs : 1) * t->spe;
  return 0;
}

static int setup_weights(Train *t) {
  const NnrtModel *m = t->m;
  t->seed = t->o.seed_set ? t->o.seed : m->seed;
  if (nnrt_instance_new(m, &t->inst, &t->e)) return fail_err(t);
  if (!t->o.resume) {
    if (nnrt_instance_init(&t->inst, t->seed, &t->e)) return fail_err(t);
    return 0;
  }
  NnrtTensorFile f;
  if (nnrt_instance_load_file(&t->inst, t->o.resume, &f, &t->e)) return fail_err(t);
  int rc = resume_meta(t, &f);
  nnrt_tf_free(&f);
  t->inst.seed = t->seed;
  return rc;
}

/* End of an epoch: its means, then the evaluation. */
static int end_epoch(Train *t, int64_t epoch, double rate, NnrtProgress *p) {
  const NnrtModel *m = t->m;
  int nm = m->train_metrics ? m->nmetrics : 0;
  if (p->tty && p->line_len) fputc('\n', p->tty), p->line_len = 0;
  fprintf(t->out, "epoch %lld step %lld/%lld: ", (long long)epoch,
          (long long)t->step, (long long)t->total);
  double ms = t->mean_steps ? (double)t->mean_steps : 1, *mm = t->metric_sum;
  for (int k = 0; k < nm; k++) mm[k] /= ms;
  print_means(t->out, m, t->loss_sum / ms, mm, nm);
  fprintf(t->out, " | %.0f samples/s\n", rate);
  t->loss_sum = 0, t->mean_steps = 0;
  for (int k = 0; k < m->nmetrics; k++) t->metric_sum[k] = 0;
  if (!t->has_eval || interrupted) return 0;
  double loss, *met = calloc((size_t)m->nmetrics + 1, sizeof *met), t1 = now();
  int64_t n;
  if (!met) return fail(t, 1, "out of memory");
  int rc = evaluate(t, &t->eval, &loss, met, &n);
  if (!rc && !interrupted) { /* (Ctrl-C cuts an evaluation short) */
    fprintf(t->out, "  eval: ");
    print_means(t->out, m, loss, met, m->nmetrics);
    fprintf(t->out, " (%lld samples)\n", (long long)n);
    log_row(t, "eval", epoch, loss, met, -1, (double)n / fmax(now() - t1, 1e-9));
  }
  free(met);
  fflush(t->out);
  return rc;
}

/* One step: the batch of position pos of the epoch's order. */
static int one_step(Train *t, int64_t epoch, int64_t pos) {
  const NnrtModel *m = t->m;
  if (t->perm_epoch != epoch) {
    nnrt_shuffle(t->perm, t->data.n, t->seed, (uint64_t)epoch);
    t->perm_epoch = epoch;
  }
  gather(t, &t->data, t->perm + pos * t->B);
  float ep = (float)epoch, tot = (float)t->total;
  memcpy(t->in[m->ntrain_inputs], &ep, 4);
  memcpy(t->in[m->ntrain_inputs + 1], &tot, 4);
  t->inst.step = (uint64_t)t->step;
  int st = m->train_step(&t->inst, t->in, t->outs);
  double loss = f32_at(t->outs[0]);
  if (st || !isfinite(loss)) {
    char where[160];
    snprintf(where, sizeof where, "at step %lld (epoch %lld, batch %lld of the "
             "epoch)", (long long)t->step + 1, (long long)epoch + 1,
             (long long)pos + 1);
    if (st) return step_failed(t, "train_step", st, where);
    return fail(t, 1, "model '%s': the loss is %g %s; stopping (nothing saved)",
                m->name, loss, where);
  }
  t->loss_sum += loss;
  for (int k = 0; m->train_metrics && k < m->nmetrics; k++)
    t->metric_sum[k] += f32_at(t->outs[k + 2]);
  t->mean_steps++;
  t->step++;
  return 0;
}

static int train_loop(Train *t) {
  const NnrtModel *m = t->m;
  int nm = m->train_metrics ? m->nmetrics : 0;
  NnrtProgress p;
  if (nnrt_progress_begin(&p, t->out, t->total, NULL, &t->e)) return fail_err(t);
  double *vals = calloc((size_t)m->nmetrics + 1, sizeof *vals);
  double *means = calloc((size_t)m->nmetrics + 1, sizeof *means);
  int rc = !vals || !means ? fail(t, 1, "out of memory") : 0;
  int64_t start = t->step;
  t->perm_epoch = -1;
  t->t0 = now();
  while (!rc && t->step < t->total && !interrupted) {
    int64_t epoch = t->step / t->spe, pos = t->step % t->spe;
    if ((rc = one_step(t, epoch, pos))) break;
    double rate = (double)((t->step - start) * t->B) / fmax(now() - t->t0, 1e-9);
    for (int k = 0; k < nm; k++) {
      vals[k] = f32_at(t->outs[k + 2]);
      means[k] = t->metric_sum[k] / (double)t->mean_steps;
    }
    log_row(t, "train", epoch + 1, f32_at(t->outs[0]), nm ? vals : NULL,
            f32_at(t->outs[1]), rate);
    nnrt_progress_step(&p, (int)epoch + 1, t->step,
                       t->loss_sum / (double)t->mean_steps, m->metric_names,
                       means, nm, t->B);
    if (t->step % t->spe == 0 || t->step == t->total)
      rc = end_epoch(t, epoch + 1, rate, &p);
    if (!rc && t->o.save_every && t->step % t->o.save_every == 0 &&
        t->step < t->total && !interrupted)
      rc = save(t);
  }
  nnrt_progress_end(&p);
  free(vals);
  free(means);
  return rc;
}

int nnrt_cmd_train(const NnrtModel *m, const char *prog, int argc,
                   char **argv, FILE *out, FILE *err) {
  Train t = {.m = m, .prog = prog, .out = out, .err = err, .t0 = now()};
  if (m->abi_version < 2 || !m->train_step || m->ntrain_inputs < 1)
    return fail(&t, 2, "'train' is not available in model '%s'", m->name);
  int rc = parse_opts(&t, false, argc, argv);
  if (rc) {
    free_all(&t);
    return rc < 0 ? 0 : rc;
  }
  t.B = m->train_inputs[0].dims[0];
  if (!(rc = check_save_dir(&t)) && !(rc = setup_data(&t)) &&
      !(rc = alloc_buffers(&t)) &&
      !(rc = setup_weights(&t)) && !(rc = open_log(&t))) {
    if (!(t.perm = calloc((size_t)t.data.n + 1, sizeof *t.perm)))
      rc = fail(&t, 1, "out of memory");
  }
  if (rc) {
    free_all(&t);
    return rc;
  }
  fprintf(out, "train %s: %lld samples, batch %lld, %lld steps per epoch "
          "(%lld samples dropped), steps %lld..%lld of %lld, seed %llu\n",
          m->name, (long long)t.data.n, (long long)t.B, (long long)t.spe,
          (long long)(t.data.n - t.spe * t.B), (long long)t.step + 1,
          (long long)t.total, (long long)t.total, (unsigned long long)t.seed);
  if (t.step >= t.total)
    fprintf(out, "nothing to do: %s is at step %lld of %lld\n", t.o.resume,
            (long long)t.step, (long long)t.total);
  fflush(out);
  struct sigaction sa = {.sa_handler = on_sigint}, old;
  sigemptyset(&sa.sa_mask);
  interrupted = 0;
  sigaction(SIGINT, &sa, &old);
  rc = train_loop(&t);
  bool stopped = interrupted;
  sigaction(SIGINT, &old, NULL);
  interrupted = 0;
  if (!rc && t.o.save) rc = save(&t);
  fflush(out);
  if (!rc && stopped) {
    fprintf(err, "%s: interrupted after step %lld%s%s\n", prog,
            (long long)t.step, t.o.save ? "; saved " : " (no --save: nothing "
                                                       "saved)",
            t.o.save ? t.o.save : "");
    rc = 130;
  } else if (!rc && t.o.save) {
    fprintf(out, "saved %s (step %lld)\n", t.o.save, (long long)t.step);
  }
  free_all(&t);
  return rc;
}

/* ---------------------------------------------------------- eval */

int nnrt_cmd_eval(const NnrtModel *m, const char *prog, int argc,
                  char **argv, FILE *out, FILE *err) {
  Train t = {.m = m, .prog = prog, .out = out, .err = err, .t0 = now()};
  if (m->abi_version < 2 || !m->eval_step || m->ntrain_inputs < 1)
    return fail(&t, 2, "'eval' is not available in model '%s'", m->name);
  int rc = parse_opts(&t, true, argc, argv);
  if (rc) {
    free_all(&t);
    return rc < 0 ? 0 : rc;
  }
  t.B = m->train_inputs[0].dims[0];
  const NnrtDataSource *src = m->eval_data ? m->eval_data : m->data;
  double loss, *met = calloc((size_t)m->nmetrics + 1, sizeof *met);
  int64_t n = 0;
  if (!met) rc = fail(&t, 1, "out of memory");
  else if (nnrt_data_load(m, src, t.o.data, t.o.ndata, "data", &t.eval, &t.e) ||
           nnrt_instance_new(m, &t.inst, &t.e) ||
           nnrt_instance_load(&t.inst, t.o.weights, &t.e))
    rc = fail_err(&t);
  else if (!(rc = alloc_buffers(&t)) &&
           !(rc = evaluate(&t, &t.eval, &loss, met, &n))) {
    fprintf(out, "eval %s: ", m->name);
    print_means(out, m, loss, met, m->nmetrics);
    fprintf(out, " (%lld of %lld samples, batch %lld)\n", (long long)n,
            (long long)t.eval.n, (long long)t.B);
  }
  free(met);
  free_all(&t);
  return rc;
}
