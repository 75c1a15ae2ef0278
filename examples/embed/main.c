/*
** examples/embed: a C program that runs a model compiled by nnc, linked
** as an object file through the header nnc writes beside it.
**
**   nnc build examples/mlp_tiny.nn --emit=obj -o mlp_tiny.o  # and mlp_tiny.h
**   cc -I . -I RUNTIME examples/embed/main.c mlp_tiny.o RUNTIME/libnnrt.a \
**      -fopenmp -lz -lm -o embed
**   ./embed [--load W.safetensors] [--save W.safetensors] [--seed S]
**
** RUNTIME is the folder of nnrt.h and libnnrt.a (runtime/ of the source
** and build trees, or include/ and lib/ of an installed nnc).  Without
** --load the weights come from the model's initialisers (seed 7, or
** --seed); --save writes them.  The input is fixed, x[i] = (i % 7) / 4 -
** 3/4, so runs can be compared; the program prints one line per example
** of the batch: "logits[b] = v0 v1 v2".
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlp_tiny.h"

int main(int argc, char **argv) {
  const char *load = NULL, *save = NULL;
  uint64_t seed = 7;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--load") && i + 1 < argc) load = argv[++i];
    else if (!strcmp(argv[i], "--save") && i + 1 < argc) save = argv[++i];
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
    else {
      fprintf(stderr, "usage: embed [--load W] [--save W] [--seed S]\n");
      return 2;
    }
  }
  mlp_tiny_model *m = mlp_tiny_new();
  if (!m) {
    fprintf(stderr, "embed: out of memory\n");
    return 1;
  }
  int rc = load ? mlp_tiny_load(m, load) : mlp_tiny_init(m, seed);
  if (!rc && save) rc = mlp_tiny_save(m, save);
  static float x[MLP_TINY_INPUT_X_NUMEL];
  static float logits[MLP_TINY_OUTPUT_LOGITS_NUMEL];
  for (int i = 0; i < MLP_TINY_INPUT_X_NUMEL; i++) x[i] = (float)(i % 7) * 0.25f - 0.75f;
  if (!rc) rc = mlp_tiny_forward(m, x, logits);
  if (rc) {
    fprintf(stderr, "embed: %s\n", mlp_tiny_error(m));
    mlp_tiny_free(m);
    return 1;
  }
  int cols = MLP_TINY_OUTPUT_LOGITS_NUMEL / MLP_TINY_BATCH;
  for (int b = 0; b < MLP_TINY_BATCH; b++) {
    printf("logits[%d] =", b);
    for (int c = 0; c < cols; c++) printf(" %.9g", logits[b * cols + c]);
    printf("\n");
  }
  printf("(%d parameters, %d bytes of arena)\n", MLP_TINY_PARAM_COUNT, MLP_TINY_ARENA_BYTES);
  mlp_tiny_free(m);
  return 0;
}
