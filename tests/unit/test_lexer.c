/*
** This file contains the unit tests of the lexer (frontend/lexer.l): token
** kinds and values, keywords against identifiers, numbers with exponents
** and size suffixes, strings and escapes, token locations, the Go-like
** NEWLINE rule with its bracket stack, and lexical errors.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "parser.h" /* generated: token numbers, Parser, lex_begin */

static int arena_setup(void **state) {
  *state = arena_new();
  return 0;
}

static int arena_teardown(void **state) {
  arena_free(*state);
  return 0;
}

enum { MAXTOK = 64 };

typedef struct Lexed {
  int n;
  int tok[MAXTOK];
  SrcLoc loc[MAXTOK];
  YYSTYPE val[MAXTOK];
  int nerrors;
  bool files_ok;  /* every loc.file was the registered name */
  char err[8192]; /* diagnostics printed */
} Lexed;

/* Run the lexer over text up to end of file (inclusive). */
static Lexed *lex(void **state, const char *text) {
  Arena *a = *state;
  Lexed *r = ARENA_NEW(a, Lexed);
  AstProgram *prog = ARENA_NEW(a, AstProgram);
  prog->arena = a;
  prog->strs = strtab_new(a);
  FILE *out = tmpfile();
  assert_non_null(out);
  Diag *d = diag_new(out);
  size_t len = strlen(text);
  const char *file = diag_add_file(d, "t.nn", text, len);
  Parser p = {.prog = prog, .diag = d, .file = file, .text = text, .len = len};
  lex_begin(&p);
  int t;
  do {
    assert_true(r->n < MAXTOK);
    t = yylex(&r->val[r->n], &r->loc[r->n], p.scanner);
    r->tok[r->n++] = t;
  } while (t != TOK_YYEOF);
  lex_end(&p);
  r->files_ok = true;
  for (int i = 0; i < r->n; i++) r->files_ok &= r->loc[i].file == file;
  for (int i = 0; i < r->n; i++) r->loc[i].file = NULL; /* freed below */
  r->nerrors = d->nerrors;
  long n = ftell(out);
  rewind(out);
  size_t got = fread(r->err, 1, sizeof r->err - 1, out);
  assert_int_equal(got, n < (long)sizeof r->err ? (size_t)n : sizeof r->err - 1);
  fclose(out);
  diag_free(d);
  return r;
}

static void assert_toks(const Lexed *r, const int *want, int n) {
  for (int i = 0; i < n && i < r->n; i++) {
    if (r->tok[i] != want[i])
      fail_msg("token %d: got %d, want %d", i, r->tok[i], want[i]);
  }
  assert_int_equal(r->n, n);
}
#define TOKS(r, ...)                                                   \
  do {                                                                 \
    static const int want_[] = {__VA_ARGS__};                          \
    assert_toks(r, want_, (int)(sizeof want_ / sizeof want_[0]));      \
  } while (0)

/* ------------------------------------------------------------- tokens */

static void test_lexer_keywords_and_identifiers(void **state) {
  Lexed *r = lex(state, "import const fn layer model train param state input "
                        "output loss metric let return emit for in if else "
                        "scan along as reverse true false and or not "
                        "f32 data batch int lets _x9 Iff");
  TOKS(r, TOK_IMPORT, TOK_CONST, TOK_FN, TOK_LAYER, TOK_MODEL, TOK_TRAIN,
       TOK_PARAM, TOK_STATE, TOK_INPUT, TOK_OUTPUT, TOK_LOSS, TOK_METRIC,
       TOK_LET, TOK_RETURN, TOK_EMIT, TOK_FOR, TOK_IN, TOK_IF, TOK_ELSE,
       TOK_SCAN, TOK_ALONG, TOK_AS, TOK_REVERSE, TOK_TRUE, TOK_FALSE,
       TOK_AND, TOK_OR, TOK_NOT, TOK_IDENT, TOK_IDENT, TOK_IDENT, TOK_IDENT,
       TOK_IDENT, TOK_IDENT, TOK_IDENT, TOK_YYEOF);
  assert_string_equal(r->val[28].str, "f32");
  assert_string_equal(r->val[32].str, "lets");
  assert_string_equal(r->val[34].str, "Iff");
  /* identifiers are interned */
  Lexed *r2 = lex(state, "abc abc");
  assert_ptr_equal(r2->val[0].str, r2->val[1].str);
}

static void test_lexer_operators(void **state) {
  Lexed *r = lex(state, "+ - * / % @ ** == != < > <= >= = <- -> : , ; . .. "
                        "... ( ) [ ] { }");
  TOKS(r, '+', '-', '*', '/', '%', '@', TOK_POW, TOK_EQ, TOK_NE, '<', '>',
       TOK_LE, TOK_GE, '=', TOK_LARROW, TOK_ARROW, ':', ',', ';', '.',
       TOK_DOTDOT, TOK_ELLIPSIS, '(', ')', '[', ']', '{', '}', TOK_YYEOF);
  /* longest match without spaces */
  Lexed *r2 = lex(state, "a**-b<-c...d..e");
  TOKS(r2, TOK_IDENT, TOK_POW, '-', TOK_IDENT, TOK_LARROW, TOK_IDENT,
       TOK_ELLIPSIS, TOK_IDENT, TOK_DOTDOT, TOK_IDENT, TOK_YYEOF);
}

static void test_lexer_numbers(void **state) {
  Lexed *r = lex(state, "42 0.5 1e-3 2E+2 0..L 7.25e1");
  TOKS(r, TOK_NUMBER, TOK_NUMBER, TOK_NUMBER, TOK_NUMBER, TOK_NUMBER,
       TOK_DOTDOT, TOK_IDENT, TOK_NUMBER, TOK_YYEOF);
  assert_true(r->val[0].num.is_int);
  assert_int_equal(r->val[0].num.ival, 42);
  assert_true(r->val[0].num.num == 42.0);
  assert_false(r->val[1].num.is_int);
  assert_true(r->val[1].num.num == 0.5);
  assert_false(r->val[2].num.is_int);
  assert_true(r->val[2].num.num == 1e-3);
  assert_false(r->val[3].num.is_int);
  assert_true(r->val[3].num.num == 200.0);
  assert_true(r->val[4].num.is_int); /* `0..L` is 0, '..', L */
  assert_int_equal(r->val[4].num.ival, 0);
  assert_true(r->val[7].num.num == 72.5);
  assert_int_equal(r->nerrors, 0);
}

static void test_lexer_no_leading_or_trailing_dot(void **state) {
  Lexed *r = lex(state, ".5 2. x");
  TOKS(r, '.', TOK_NUMBER, TOK_NUMBER, '.', TOK_IDENT, TOK_YYEOF);
  assert_int_equal(r->val[1].num.ival, 5);
  assert_int_equal(r->val[2].num.ival, 2);
}

static void test_lexer_size_suffixes(void **state) {
  Lexed *r = lex(state, "256 MiB 2KiB 3\tGiB 4 KiBx 5 kib");
  TOKS(r, TOK_NUMBER, TOK_NUMBER, TOK_NUMBER, TOK_NUMBER, TOK_IDENT,
       TOK_NUMBER, TOK_IDENT, TOK_YYEOF);
  assert_true(r->val[0].num.is_int);
  assert_int_equal(r->val[0].num.ival, 256ll << 20);
  assert_int_equal(r->loc[0].len, 7); /* the suffix is part of the token */
  assert_int_equal(r->val[1].num.ival, 2048);
  assert_int_equal(r->val[2].num.ival, 3ll << 30);
  assert_true(r->val[2].num.num == (double)(3ll << 30));
  /* `4 KiBx`: 4 then the identifier KiBx */
  assert_int_equal(r->val[3].num.ival, 4);
  assert_int_equal(r->loc[3].len, 1);
  assert_string_equal(r->val[4].str, "KiBx");
  assert_int_equal(r->loc[4].col, 22);
  assert_string_equal(r->val[6].str, "kib");
}

static void test_lexer_integer_overflow(void **state) {
  Lexed *r = lex(state, "9223372036854775807 9223372036854775808\n"
                        "8589934592 GiB 8589934591 GiB");
  TOKS(r, TOK_NUMBER, TOK_NUMBER, TOK_NEWLINE, TOK_NUMBER, TOK_NUMBER,
       TOK_YYEOF);
  assert_int_equal(r->val[0].num.ival, INT64_MAX);
  assert_int_equal(r->nerrors, 2);
  assert_string_equal(r->err,
                      "t.nn:1:21: error: integer literal is too large\n"
                      "    1 | 9223372036854775807 9223372036854775808\n"
                      "      |                     ^~~~~~~~~~~~~~~~~~~\n"
                      "t.nn:2:1: error: integer literal is too large\n"
                      "    2 | 8589934592 GiB 8589934591 GiB\n"
                      "      | ^~~~~~~~~~~~~~\n");
  assert_int_equal(r->val[4].num.ival, 8589934591ll << 30);
  Lexed *f = lex(state, "1e999");
  assert_int_equal(f->nerrors, 1);
  assert_non_null(strstr(f->err, "number literal is too large"));
}

static void test_lexer_strings(void **state) {
  Lexed *r = lex(state, "\"std\" \"a\\n\\t\\\\\\\"b\" \"\"");
  TOKS(r, TOK_STRING, TOK_STRING, TOK_STRING, TOK_YYEOF);
  assert_string_equal(r->val[0].str, "std");
  assert_string_equal(r->val[1].str, "a\n\t\\\"b");
  assert_string_equal(r->val[2].str, "");
  assert_int_equal(r->loc[1].len, 12);
  assert_int_equal(r->nerrors, 0);
}

static void test_lexer_string_errors(void **state) {
  Lexed *r = lex(state, "x = \"abc\ny = \"a\\qb\"");
  TOKS(r, TOK_IDENT, '=', TOK_STRING, TOK_NEWLINE, TOK_IDENT, '=',
       TOK_STRING, TOK_YYEOF);
  assert_int_equal(r->nerrors, 2);
  assert_string_equal(r->err, "t.nn:1:5: error: unterminated string\n"
                              "    1 | x = \"abc\n"
                              "      |     ^~~~\n"
                              "t.nn:2:7: error: invalid escape sequence '\\q'\n"
                              "    2 | y = \"a\\qb\"\n"
                              "      |       ^~\n");
  Lexed *e = lex(state, "\"abc\\");
  TOKS(e, TOK_STRING, TOK_YYEOF);
  assert_int_equal(e->nerrors, 1);
}

/* ----------------------------------------------------------- locations */

static void test_lexer_locations(void **state) {
  Lexed *r = lex(state, "let x = 1.5\n\n  # comment\n\tfoo(\"s\") ** 2\n");
  TOKS(r, TOK_LET, TOK_IDENT, '=', TOK_NUMBER, TOK_NEWLINE, TOK_IDENT, '(',
       TOK_STRING, ')', TOK_POW, TOK_NUMBER, TOK_NEWLINE, TOK_YYEOF);
  SrcLoc x = r->loc[1];
  assert_true(r->files_ok);
  assert_int_equal(x.line, 1);
  assert_int_equal(x.col, 5);
  assert_int_equal(x.offset, 4);
  assert_int_equal(x.len, 1);
  SrcLoc num = r->loc[3];
  assert_int_equal(num.col, 9);
  assert_int_equal(num.len, 3);
  SrcLoc nl = r->loc[4]; /* the '\n' itself */
  assert_int_equal(nl.line, 1);
  assert_int_equal(nl.col, 12);
  assert_int_equal(nl.offset, 11);
  SrcLoc foo = r->loc[5];
  assert_int_equal(foo.line, 4);
  assert_int_equal(foo.col, 2);
  assert_int_equal(foo.offset, 26);
  assert_int_equal(foo.len, 3);
  SrcLoc pow = r->loc[9];
  assert_int_equal(pow.col, 11);
  assert_int_equal(pow.len, 2);
  /* end of file after a final newline: just after the last character of
  ** the last line */
  SrcLoc eof = r->loc[12];
  assert_int_equal(eof.line, 4);
  assert_int_equal(eof.col, 15);
  assert_int_equal(eof.offset, 39);
}

static void test_lexer_eof_location_without_newline(void **state) {
  Lexed *r = lex(state, "a\nbc");
  TOKS(r, TOK_IDENT, TOK_NEWLINE, TOK_IDENT, TOK_YYEOF);
  assert_int_equal(r->loc[3].line, 2);
  assert_int_equal(r->loc[3].col, 3);
  assert_int_equal(r->loc[3].offset, 4);
  Lexed *e = lex(state, "");
  TOKS(e, TOK_YYEOF);
  assert_int_equal(e->loc[0].line, 1);
  assert_int_equal(e->loc[0].col, 1);
}

/* ------------------------------------------------------------ newlines */

static void test_lexer_newline_after_statement_enders(void **state) {
  /* each line ends with a token that may end a statement */
  Lexed *r = lex(state, "a\n1\n\"s\"\ntrue\nfalse\nreturn\nf()\nx[0]\n{}\n"
                        "...\n");
  TOKS(r, TOK_IDENT, TOK_NEWLINE, TOK_NUMBER, TOK_NEWLINE, TOK_STRING,
       TOK_NEWLINE, TOK_TRUE, TOK_NEWLINE, TOK_FALSE, TOK_NEWLINE,
       TOK_RETURN, TOK_NEWLINE, TOK_IDENT, '(', ')', TOK_NEWLINE, TOK_IDENT,
       '[', TOK_NUMBER, ']', TOK_NEWLINE, '{', '}', TOK_NEWLINE,
       TOK_ELLIPSIS, TOK_NEWLINE, TOK_YYEOF);
}

static void test_lexer_no_newline_after_operators(void **state) {
  /* `let x = a +\n b` continues; blank lines and comments give one NEWLINE */
  Lexed *r = lex(state, "let x = a +\n b\n\n# c\n\ny = {\n}\n");
  TOKS(r, TOK_LET, TOK_IDENT, '=', TOK_IDENT, '+', TOK_IDENT, TOK_NEWLINE,
       TOK_IDENT, '=', '{', '}', TOK_NEWLINE, TOK_YYEOF);
}

static void test_lexer_newlines_in_brackets(void **state) {
  /* inside ( or [ newlines vanish; a { inside ( makes them count again */
  Lexed *r = lex(state, "f(a,\n  b\n)\n[1\n]\ng(scan () {\n  x\n  y\n})\n");
  TOKS(r, TOK_IDENT, '(', TOK_IDENT, ',', TOK_IDENT, ')', TOK_NEWLINE, '[',
       TOK_NUMBER, ']', TOK_NEWLINE, TOK_IDENT, '(', TOK_SCAN, '(', ')',
       '{', TOK_IDENT, TOK_NEWLINE, TOK_IDENT, TOK_NEWLINE, '}', ')',
       TOK_NEWLINE, TOK_YYEOF);
}

static void test_lexer_close_brace_closes_open_parens(void **state) {
  /* `}` pops a '(' left open inside its block: newlines count again */
  Lexed *r = lex(state, "{ f(\n}\nx\n");
  TOKS(r, '{', TOK_IDENT, '(', '}', TOK_NEWLINE, TOK_IDENT, TOK_NEWLINE,
       TOK_YYEOF);
  /* `)` never closes a '{' */
  Lexed *r2 = lex(state, "{ )\nx\n");
  TOKS(r2, '{', ')', TOK_NEWLINE, TOK_IDENT, TOK_NEWLINE, TOK_YYEOF);
}

/* -------------------------------------------------------------- errors */

static void test_lexer_invalid_characters(void **state) {
  Lexed *r = lex(state, "a $ b\n\x01 \xc3\xa9 !");
  TOKS(r, TOK_IDENT, TOK_IDENT, TOK_NEWLINE, TOK_YYEOF);
  assert_int_equal(r->nerrors, 4);
  assert_string_equal(r->err, "t.nn:1:3: error: invalid character '$'\n"
                              "    1 | a $ b\n"
                              "      |   ^\n"
                              "t.nn:2:1: error: invalid character '\\x01'\n"
                              "    2 | \x01 \xc3\xa9 !\n"
                              "      | ^\n"
                              "t.nn:2:3: error: invalid character '\xc3\xa9'\n"
                              "    2 | \x01 \xc3\xa9 !\n"
                              "      |   ^\n"
                              "t.nn:2:6: error: invalid character '!'\n"
                              "    2 | \x01 \xc3\xa9 !\n"
                              "      |     ^\n");
}

static void test_lexer_byte_order_mark(void **state) {
  /* skipped at the start of the file, an error anywhere else */
  Lexed *r = lex(state, "\xef\xbb\xbfx\n\xef\xbb\xbfy");
  TOKS(r, TOK_IDENT, TOK_NEWLINE, TOK_IDENT, TOK_YYEOF);
  assert_int_equal(r->loc[0].col, 4);
  assert_int_equal(r->nerrors, 1);
  assert_non_null(strstr(r->err, "t.nn:2:1: error: invalid character"));
}

static void test_lexer_stops_after_too_many_errors(void **state) {
  Lexed *r = lex(state, "$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$ a b c");
  /* 20 errors, the "too many" line, then end of file at once */
  TOKS(r, TOK_YYEOF);
  assert_int_equal(r->nerrors, 21);
  assert_non_null(strstr(r->err, "nnc: too many errors; stopping\n"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, arena_setup, arena_teardown)
      T(test_lexer_keywords_and_identifiers),
      T(test_lexer_operators),
      T(test_lexer_numbers),
      T(test_lexer_no_leading_or_trailing_dot),
      T(test_lexer_size_suffixes),
      T(test_lexer_integer_overflow),
      T(test_lexer_strings),
      T(test_lexer_string_errors),
      T(test_lexer_locations),
      T(test_lexer_eof_location_without_newline),
      T(test_lexer_newline_after_statement_enders),
      T(test_lexer_no_newline_after_operators),
      T(test_lexer_newlines_in_brackets),
      T(test_lexer_close_brace_closes_open_parens),
      T(test_lexer_invalid_characters),
      T(test_lexer_byte_order_mark),
      T(test_lexer_stops_after_too_many_errors),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
