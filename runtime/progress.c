/*
** progress.c: the progress of long work (training): a live line
** "epoch 2 step 340/1000 loss 0.4213 acc 0.871 | 5120 samples/s | ETA 0:12"
** redrawn with '\r' only when the output is a terminal, and an optional
** CSV log with one row per step.
*/
#include "internal.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int nnrt_progress_begin(NnrtProgress *p, FILE *out, int64_t total_steps,
                        const char *csv_path, NnrtErr *e) {
  memset(p, 0, sizeof *p);
  p->tty = out && isatty(fileno(out)) ? out : NULL;
  p->total_steps = total_steps;
  p->t0 = p->tlast = now();
  if (csv_path && !(p->csv = fopen(csv_path, "w")))
    return nnrt_err_set(e, NNRT_E_IO, "%s: %s", csv_path, strerror(errno));
  return 0;
}

static void live_line(NnrtProgress *p, int epoch, int64_t step, double loss,
                      const char *const *names, const double *m, int nm,
                      double rate) {
  char line[512];
  int k = snprintf(line, sizeof line, "epoch %d step %lld", epoch,
                   (long long)step);
  if (p->total_steps > 0)
    k += snprintf(line + k, sizeof line - (size_t)k, "/%lld",
                  (long long)p->total_steps);
  k += snprintf(line + k, sizeof line - (size_t)k, " loss %.4f", loss);
  for (int i = 0; i < nm && k < (int)sizeof line; i++)
    k += snprintf(line + k, sizeof line - (size_t)k, " %s %.4g", names[i], m[i]);
  if (k < (int)sizeof line)
    k += snprintf(line + k, sizeof line - (size_t)k, " | %.0f samples/s", rate);
  double el = now() - p->t0;
  if (p->total_steps > 0 && step > 0 && k < (int)sizeof line) {
    long eta = (long)(el / (double)step * (double)(p->total_steps - step));
    k += snprintf(line + k, sizeof line - (size_t)k, " | ETA %ld:%02ld",
                  eta / 60, eta % 60);
  }
  if (k > (int)sizeof line - 1) k = (int)sizeof line - 1;
  fprintf(p->tty, "\r%s%*s", line, p->line_len > k ? p->line_len - k : 0, "");
  fflush(p->tty);
  p->line_len = k;
}

void nnrt_progress_step(NnrtProgress *p, int epoch, int64_t step, double loss,
                        const char *const *metric_names,
                        const double *metrics, int nmetrics, int64_t samples) {
  double t = now(), el = t - p->t0;
  p->samples += samples;
  double rate = el > 0 ? (double)p->samples / el : 0;
  if (p->csv) {
    if (!p->header_done) {
      fprintf(p->csv, "epoch,step,loss");
      for (int i = 0; i < nmetrics; i++) fprintf(p->csv, ",%s", metric_names[i]);
      fprintf(p->csv, ",samples_per_s,elapsed_s\n");
      p->header_done = 1;
    }
    fprintf(p->csv, "%d,%lld,%.9g", epoch, (long long)step, loss);
    for (int i = 0; i < nmetrics; i++) fprintf(p->csv, ",%.9g", metrics[i]);
    fprintf(p->csv, ",%.6g,%.6f\n", rate, el);
  }
  if (p->tty && (t - p->tlast > 0.1 || step == p->total_steps)) {
    live_line(p, epoch, step, loss, metric_names, metrics, nmetrics, rate);
    p->tlast = t;
  }
}

void nnrt_progress_end(NnrtProgress *p) {
  if (p->tty && p->line_len) fputc('\n', p->tty);
  if (p->csv) fclose(p->csv);
  p->csv = NULL;
  p->tty = NULL;
}
