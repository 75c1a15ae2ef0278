/*
** This file contains the frontend's driver: it reads the main .nn file and
** its imports (each file once, cycles allowed), registers every source with
** the Diag, collects the global definitions (fn, layer, model, const, train)
** of all files, parses -D definitions, picks the model to compile and hands
** it to lower.c.
*/
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sema.h"

/* ------------------------------------------------------------ files */

static char *read_file(Arena *a, const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = arena_alloc(a, cap + 1, 1);
  for (;;) {
    size_t r = fread(buf + n, 1, cap - n, f);
    n += r;
    if (n < cap) break;
    char *nb = arena_alloc(a, 2 * cap + 1, 1);
    memcpy(nb, buf, n);
    buf = nb;
    cap *= 2;
  }
  fclose(f);
  buf[n] = 0;
  *len = n;
  return buf;
}

static bool is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static const char *dir_of(Arena *a, const char *path) {
  const char *s = strrchr(path, '/');
  if (!s) return ".";
  if (s == path) return "/";
  return arena_strndup(a, path, (size_t)(s - path));
}

typedef struct Loader {
  Sema *S;
  Vec seen; /* canonical paths of loaded files */
} Loader;

static void load_file(Loader *ld, const char *path, SrcLoc from);

static bool seen_before(Loader *ld, const char *path) {
  char buf[PATH_MAX];
  const char *key = realpath(path, buf) ? arena_strdup(ld->S->a, buf) : path;
  for (int i = 0; i < ld->seen.len; i++)
    if (!strcmp(ld->seen.data[i], key)) return true;
  vec_push(ld->S->a, &ld->seen, (void *)key);
  return false;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every *.nn of dir, sorted by name. */
static void load_dir(Loader *ld, const char *dir, SrcLoc from) {
  Sema *S = ld->S;
  DIR *d = opendir(dir);
  if (!d) return;
  Vec names = {0};
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n > 3 && !strcmp(e->d_name + n - 3, ".nn"))
      vec_push(S->a, &names, arena_strdup(S->a, e->d_name));
  }
  closedir(d);
  if (names.len) qsort(names.data, (size_t)names.len, sizeof(void *), cmp_str);
  for (int i = 0; i < names.len; i++)
    load_file(ld, arena_printf(S->a, "%s/%s", dir, (char *)names.data[i]),
              from);
}

static void do_import(Loader *ld, AstProgram *p, AstNode *imp) {
  Sema *S = ld->S;
  const char *x = imp->str ? imp->str : "";
  SrcLoc at = imp->name_loc.file ? imp->name_loc : imp->loc;
  int ndirs = 1 + S->o->nincdirs;
  for (int i = 0; i < ndirs; i++) {
    const char *dir = i == 0 ? dir_of(S->a, p->file) : S->o->incdirs[i - 1];
    const char *f = arena_printf(S->a, "%s/%s.nn", dir, x);
    const char *dd = arena_printf(S->a, "%s/%s", dir, x);
    if (x[0] == '/') {
      f = arena_printf(S->a, "%s.nn", x);
      dd = x;
    }
    if (is_file(f)) {
      load_file(ld, f, at);
      return;
    }
    if (is_dir(dd)) {
      if (!seen_before(ld, dd)) load_dir(ld, dd, at);
      return;
    }
    /* an include directory named like the import is the import itself
    ** (the driver passes the std/ folder for `import "std"`) */
    const char *base = strrchr(dir, '/');
    base = base ? base + 1 : dir;
    if (i > 0 && !strcmp(base, x) && is_dir(dir)) {
      if (!seen_before(ld, dir)) load_dir(ld, dir, at);
      return;
    }
  }
  /* the include folders depend on where nnc is installed: name only the
  ** importing file's folder so that messages are the same everywhere */
  const char *dir = dir_of(S->a, p->file);
  diag_error(S->d, at, "cannot find import \"%s\"", x);
  diag_note(S->d, (SrcLoc){0}, "looked for %s/%s.nn and %s/%s/, then in "
            "the include folders (-I and the standard library)", dir, x, dir,
            x);
}

static void add_def(Sema *S, AstNode *n) {
  Def *old = sema_def_find(S, n->name);
  SrcLoc nl = n->name_loc.file ? n->name_loc : n->loc;
  if (old) {
    diag_error(S->d, nl, "'%s' is defined twice", n->name);
    diag_note(S->d, old->node->name_loc.file ? old->node->name_loc
                                             : old->node->loc,
              "first definition of '%s' is here", n->name);
    return;
  }
  Def *d = ARENA_NEW(S->a, Def);
  d->name = n->name;
  d->node = n;
  vec_push(S->a, &S->defs, d);
}

static void load_file(Loader *ld, const char *path, SrcLoc from) {
  Sema *S = ld->S;
  if (seen_before(ld, path)) return;
  size_t len = 0;
  char *text = read_file(S->a, path, &len);
  if (!text) {
    diag_error(S->d, from, "cannot read '%s'", path);
    return;
  }
  const char *name = diag_add_file(S->d, path, text, len);
  AstProgram *p = ast_parse(S->d, name, text, len);
  if (!p) return;
  vec_push(S->a, &S->progs, p);
  if (S->o->ast_out) ast_dump(S->o->ast_out, p);
  for (int i = 0; i < p->decls.n; i++) {
    AstNode *n = p->decls.v[i];
    switch (n->kind) {
    case AST_IMPORT: do_import(ld, p, n); break;
    case AST_CONST:
    case AST_FN:
    case AST_LAYER:
    case AST_MODEL: add_def(S, n); break;
    case AST_TRAIN: vec_push(S->a, &S->trains, n); break;
    default: break;
    }
  }
}

/* ------------------------------------------------------------ -D */

static bool parse_defines(Sema *S) {
  const FrontendOpts *o = S->o;
  S->defines = ARENA_ARRAY(S->a, Define, o->ndefines ? o->ndefines : 1);
  bool ok = true;
  for (int i = 0; i < o->ndefines; i++) {
    const char *s = o->defines[i];
    const char *eq = strchr(s, '=');
    if (!eq || eq == s) {
      diag_error(S->d, (SrcLoc){0}, "-D %s: expected NAME=VALUE", s);
      ok = false;
      continue;
    }
    Define *d = &S->defines[S->ndefines++];
    d->name = arena_strndup(S->a, s, (size_t)(eq - s));
    const char *v = eq + 1;
    char *end;
    if (!strcmp(v, "true") || !strcmp(v, "false")) {
      d->v = sema_bool(S, v[0] == 't');
      continue;
    }
    long long iv = strtoll(v, &end, 10);
    if (*v && !*end) {
      d->v = sema_int(S, iv);
      continue;
    }
    double fv = strtod(v, &end);
    if (*v && !*end) {
      d->v = sema_float(S, fv);
      continue;
    }
    diag_error(S->d, (SrcLoc){0}, "-D %s: the value '%s' is not an int, a "
               "float or a bool", d->name, v);
    S->ndefines--;
    ok = false;
  }
  return ok;
}

/* ------------------------------------------------------ model choice */

static AstNode *pick_model(Sema *S, AstProgram *main) {
  const char *want = S->o->model;
  if (!want && S->trains.len > 0)
    want = ((AstNode *)S->trains.data[S->trains.len - 1])->name;
  if (want) {
    Def *d = sema_def_find(S, want);
    if (d && d->node->kind == AST_MODEL) return d->node;
    if (S->o->model) {
      diag_error(S->d, (SrcLoc){0}, "no model named '%s'", want);
      return NULL;
    }
  }
  AstNode *last = NULL;
  for (int i = 0; main && i < main->decls.n; i++)
    if (main->decls.v[i]->kind == AST_MODEL) last = main->decls.v[i];
  return last;
}

static AstNode *check_trains(Sema *S, AstNode *model) {
  AstNode *found = NULL;
  for (int i = 0; i < S->trains.len; i++) {
    AstNode *t = S->trains.data[i];
    Def *d = sema_def_find(S, t->name);
    SrcLoc nl = t->name_loc.file ? t->name_loc : t->loc;
    if (!d || d->node->kind != AST_MODEL) {
      diag_error(S->d, nl, "train block for unknown model '%s'", t->name);
      continue;
    }
    if (model && d->node == model) {
      if (found) {
        diag_error(S->d, nl, "model '%s' has two train blocks", t->name);
        diag_note(S->d, found->name_loc.file ? found->name_loc : found->loc,
                  "the first one is here");
        continue;
      }
      found = t;
    }
  }
  return found;
}

IrModule *frontend_compile(Diag *d, const char *path, const FrontendOpts *o) {
  FrontendOpts dflt = {0};
  Sema S = {0};
  S.d = d;
  S.o = o ? o : &dflt;
  S.a = arena_new();
  Loader ld = {0};
  ld.S = &S;
  parse_defines(&S);
  load_file(&ld, path, (SrcLoc){0});
  AstProgram *main = S.progs.len ? S.progs.data[0] : NULL;
  IrModule *m = NULL;
  if (d->nerrors == 0) {
    AstNode *model = pick_model(&S, main);
    m = ir_module_new(model ? model->name : "main");
    S.m = m;
    AstNode *train = check_trains(&S, model);
    /* every const is evaluated, so -D overrides are checked */
    for (int i = 0; i < S.defs.len; i++) {
      Def *df = S.defs.data[i];
      if (df->node->kind == AST_CONST) (void)sema_const_value(&S, df);
    }
    if (model && d->nerrors == 0) sema_lower_model(&S, model, train);
    for (int i = 0; i < S.ndefines && d->nerrors == 0; i++) {
      if (!S.defines[i].used)
        diag_error(d, (SrcLoc){0}, "-D %s: no constant or dimension variable "
                   "named '%s'", S.defines[i].name, S.defines[i].name);
    }
  }
  for (int i = 0; i < S.progs.len; i++) ast_program_free(S.progs.data[i]);
  arena_free(S.a);
  if (d->nerrors > 0) {
    if (m) ir_module_free(m);
    return NULL;
  }
  return m;
}
