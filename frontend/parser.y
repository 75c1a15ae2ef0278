/*
** This file contains the grammar of .nn (bison, pure, with locations).  The
** actions only build the raw AST (frontend/ast.h); no checks happen here
** (PostgreSQL style): names, types and shapes are sema's business.
**
** Statements end at a NEWLINE token, which the lexer emits Go-style only
** where a statement may end (see lexer.l), or just before a closing '}'.
** Syntax errors are reported with bison's detailed message; recovery skips
** to the next end of line or '}' inside blocks and to the next declaration
** at top level.  The lexer returns end of file once the Diag has stopped
** (too many errors), so parsing always terminates.  After parsing, a
** declaration whose tree is deeper than MAX_DEPTH is reported and dropped.
*/
%define api.pure full
%define api.prefix {yy}
%define api.token.prefix {TOK_}
%define api.location.type {SrcLoc}
%define parse.error detailed
%define parse.lac full
%locations
%expect 0
%parse-param {Parser *p} {void *scanner}
%lex-param {void *scanner}

%code top {
/* bison's yynerrs is counted but unused (errors are counted by the Diag) */
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
}

%code requires {
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ast.h"

/* The state shared by the parser and the reentrant lexer (yyextra). */
typedef struct Parser {
  AstProgram *prog;
  Diag *diag;
  const char *file;         /* as registered with diag */
  const char *text;
  size_t len;
  void *scanner;            /* yyscan_t */
  /* lexer position: the next character to read */
  uint32_t line, col, offset;
  /* start of the current token (for yyless fix-ups) */
  uint32_t tok_line, tok_col, tok_offset;
  char *brackets;           /* stack of open '(' '[' '{' */
  int nbrackets, capbrackets;
  int last;                 /* last token returned (0 at start) */
  bool at_eof;
} Parser;

/* A number token: is_int when written without '.' and exponent (a size
** suffix multiplies such an integer, which stays an integer); ival is 0
** for the others. */
typedef struct NumTok {
  double num;
  int64_t ival;
  bool is_int;
} NumTok;
}

%code provides {
/* Scanner life cycle (lexer.l): lex_begin sets up p->scanner on p->text. */
void lex_begin(Parser *p);
void lex_end(Parser *p);
int yylex(YYSTYPE *lvalp, SrcLoc *llocp, void *scanner);
}

%code {
#include <string.h>

static void yyerror(SrcLoc *loc, Parser *p, void *scanner, const char *msg);

/* Spanning location of a rule: from the first to the last non-empty
** component, so leading or trailing empty rules do not stretch it. */
#define YYLLOC_DEFAULT(Cur, Rhs, N) ((Cur) = rule_loc(Rhs, N))
static SrcLoc rule_loc(const SrcLoc *rhs, int n) {
  SrcLoc first = {0}, last = {0};
  for (int i = 1; i <= n; i++) {
    if (!rhs[i].len) continue;
    if (!first.len) first = rhs[i];
    last = rhs[i];
  }
  if (first.len) return srcloc_span(first, last);
  /* empty rule: a zero-length location just after the previous token */
  SrcLoc l = rhs[0];
  l.offset += l.len;
  l.col += l.len;
  l.len = 0;
  return l;
}

static AstNode *node(Parser *p, AstKind k, SrcLoc loc) {
  return ast_new(p->prog, k, loc);
}

static AstNode *named(Parser *p, AstKind k, SrcLoc loc, const char *name,
                      SrcLoc name_loc) {
  AstNode *n = ast_new(p->prog, k, loc);
  n->name = name;
  n->name_loc = name_loc;
  return n;
}

static AstNode *unary(Parser *p, AstOp op, AstNode *a, SrcLoc loc) {
  AstNode *n = node(p, AST_UNARY, loc);
  n->op = op;
  n->a = a;
  return n;
}

static AstNode *binary(Parser *p, AstOp op, AstNode *a, AstNode *b,
                       SrcLoc loc) {
  AstNode *n = node(p, AST_BINARY, loc);
  n->op = op;
  n->a = a;
  n->b = b;
  return n;
}

static AstNode *with_list(Parser *p, AstKind k, SrcLoc loc, AstList l) {
  AstNode *n = node(p, k, loc);
  n->list = l;
  return n;
}

static AstList list1(Parser *p, AstNode *n) {
  AstList l = {0};
  ast_list_push(p->prog, &l, n);
  return l;
}

static AstList push(Parser *p, AstList l, AstNode *n) {
  ast_list_push(p->prog, &l, n);
  return l;
}

/* 'metric' expr: the metric is named after the callee of a call. */
static AstNode *metric(Parser *p, SrcLoc loc, AstNode *e) {
  AstNode *n = node(p, AST_METRIC, loc);
  n->a = e;
  if (e->kind == AST_CALL && e->a->kind == AST_IDENT) {
    n->name = e->a->name;
    n->name_loc = e->a->loc;
  }
  return n;
}
}

%union {
  const char *str;
  NumTok num;
  AstNode *node;
  AstList list;
  int flag;
}

%token <str> IDENT "identifier"
%token <num> NUMBER "number"
%token <str> STRING "string"
%token NEWLINE "end of line"
%token IMPORT "'import'" CONST "'const'" FN "'fn'" LAYER "'layer'"
%token MODEL "'model'" TRAIN "'train'" PARAM "'param'" STATE "'state'"
%token INPUT "'input'" OUTPUT "'output'" LOSS "'loss'" METRIC "'metric'"
%token LET "'let'" RETURN "'return'" EMIT "'emit'" FOR "'for'" IN "'in'"
%token IF "'if'" ELSE "'else'" SCAN "'scan'" ALONG "'along'" AS "'as'"
%token REVERSE "'reverse'" TRUE "'true'" FALSE "'false'" AND "'and'"
%token OR "'or'" NOT "'not'"
%token POW "'**'" EQ "'=='" NE "'!='" LE "'<='" GE "'>='" LARROW "'<-'"
%token ARROW "'->'" DOTDOT "'..'" ELLIPSIS "'...'"

%nonassoc DOTDOT
%left OR
%left AND
%precedence NOT
%nonassoc EQ NE '<' '>' LE GE
%left '+' '-'
%left '*' '/' '%' '@'
%precedence UNARY
%right POW

%type <node> decl fn_decl arg type rettype block stmt if_stmt train_item
%type <node> expr postfix primary callarg carry seq scan dim
%type <list> args arg_list types dims dim_list stmts train_items idents
%type <list> exprs callargs callarg_list carries carry_list seqs
%type <flag> fn_kind opt_reverse
%type <str> opt_as

%%

/* program := { NEWLINE | decl } */
program:
    %empty
  | program NEWLINE
  | program decl          { ast_list_push(p->prog, &p->prog->decls, $2); }
  | program error         /* resync at the next declaration */
  ;

/* decl := 'import' STRING
**       | 'const' IDENT [':' type] '=' expr
**       | fn_decl
**       | 'model' IDENT block
**       | 'train' IDENT '{' { NEWLINE | train_item NEWLINE } '}' */
decl:
    IMPORT STRING         { $$ = node(p, AST_IMPORT, @$); $$->str = $2; }
  | CONST IDENT '=' expr  { $$ = named(p, AST_CONST, @$, $2, @2); $$->a = $4; }
  | CONST IDENT ':' type '=' expr
      { $$ = named(p, AST_CONST, @$, $2, @2); $$->type = $4; $$->a = $6; }
  | fn_decl
  | MODEL IDENT block
      { $$ = named(p, AST_MODEL, @$, $2, @2); $$->body = $3; }
  | TRAIN IDENT '{' train_items '}'
      { $$ = named(p, AST_TRAIN, @$, $2, @2); $$->list = $4; }
  | TRAIN IDENT '{' train_items train_item '}'
      { $$ = named(p, AST_TRAIN, @$, $2, @2); $$->list = push(p, $4, $5); }
  | TRAIN IDENT '{' train_items error '}'
      { $$ = named(p, AST_TRAIN, @$, $2, @2); $$->list = $4; }
  ;

/* fn_decl := ('fn' | 'layer') IDENT '(' [arg {',' arg} [',']] ')'
**            ['->' rettype] block */
fn_decl:
    fn_kind IDENT '(' args ')' block
      { $$ = named(p, $1, @$, $2, @2); $$->list = $4; $$->body = $6; }
  | fn_kind IDENT '(' args ')' ARROW rettype block
      { $$ = named(p, $1, @$, $2, @2); $$->list = $4; $$->type = $7;
        $$->body = $8; }
  ;
fn_kind: FN { $$ = AST_FN; } | LAYER { $$ = AST_LAYER; } ;

args:
    %empty                { $$ = (AstList){0}; }
  | arg_list
  | arg_list ','
  ;
arg_list:
    arg                   { $$ = list1(p, $1); }
  | arg_list ',' arg      { $$ = push(p, $1, $3); }
  ;

/* arg := IDENT [':' type] ['=' expr] */
arg:
    IDENT                 { $$ = named(p, AST_ARG, @$, $1, @1); }
  | IDENT ':' type        { $$ = named(p, AST_ARG, @$, $1, @1); $$->type = $3; }
  | IDENT '=' expr        { $$ = named(p, AST_ARG, @$, $1, @1); $$->a = $3; }
  | IDENT ':' type '=' expr
      { $$ = named(p, AST_ARG, @$, $1, @1); $$->type = $3; $$->a = $5; }
  ;

/* type := IDENT '[' [dim {',' dim}] ']' | IDENT
** dim  := expr | '...' */
type:
    IDENT                 { $$ = named(p, AST_TYPE, @$, $1, @1); }
  | IDENT '[' dims ']'
      { $$ = named(p, AST_TYPE, @$, $1, @1); $$->is_tensor = true;
        $$->list = $3; }
  ;
dims:
    %empty                { $$ = (AstList){0}; }
  | dim_list
  ;
dim_list:
    dim                   { $$ = list1(p, $1); }
  | dim_list ',' dim      { $$ = push(p, $1, $3); }
  ;
dim:
    expr
  | ELLIPSIS              { $$ = node(p, AST_ELLIPSIS, @$); }
  ;

/* rettype := type | '(' type {',' type} ')' */
rettype:
    type
  | '(' types ')'         { $$ = with_list(p, AST_TUPLE_TYPE, @$, $2); }
  ;
types:
    type                  { $$ = list1(p, $1); }
  | types ',' type        { $$ = push(p, $1, $3); }
  ;

/* block := '{' { NEWLINE | stmt (NEWLINE | before '}') } '}' */
block:
    '{' stmts '}'         { $$ = with_list(p, AST_BLOCK, @$, $2); }
  | '{' stmts stmt '}'    { $$ = with_list(p, AST_BLOCK, @$, push(p, $2, $3)); }
  | '{' stmts error '}'   { $$ = with_list(p, AST_BLOCK, @$, $2); }
  ;
stmts:
    %empty                { $$ = (AstList){0}; }
  | stmts NEWLINE
  | stmts stmt NEWLINE    { $$ = push(p, $1, $2); }
  | stmts error NEWLINE   { yyerrok; }
  ;

/* stmt := 'let' IDENT {',' IDENT} '=' expr
**       | IDENT '=' expr | IDENT '<-' expr
**       | 'return' [expr {',' expr}] | 'emit' expr {',' expr}
**       | 'for' IDENT 'in' expr block | if_stmt
**       | ('param' | 'state') IDENT ':' type ['=' expr]
**       | 'input' IDENT ':' type | 'output' IDENT ['=' expr]
**       | 'loss' expr | 'metric' [IDENT '='] expr | expr */
stmt:
    LET idents '=' expr   { $$ = with_list(p, AST_LET, @$, $2); $$->a = $4; }
  | IDENT '=' expr        { $$ = named(p, AST_ASSIGN, @$, $1, @1); $$->a = $3; }
  | IDENT LARROW expr     { $$ = named(p, AST_UPDATE, @$, $1, @1); $$->a = $3; }
  | RETURN                { $$ = node(p, AST_RETURN, @$); }
  | RETURN expr           { $$ = node(p, AST_RETURN, @$); $$->a = $2; }
  | RETURN expr ',' exprs
      { $$ = node(p, AST_RETURN, @$);
        AstList l = list1(p, $2);
        for (int i = 0; i < $4.n; i++) ast_list_push(p->prog, &l, $4.v[i]);
        $$->a = with_list(p, AST_TUPLE, srcloc_span(@2, @4), l); }
  | EMIT exprs            { $$ = with_list(p, AST_EMIT, @$, $2); }
  | FOR IDENT IN expr block
      { $$ = named(p, AST_FOR, @$, $2, @2); $$->a = $4; $$->body = $5; }
  | if_stmt
  | PARAM IDENT ':' type
      { $$ = named(p, AST_PARAM, @$, $2, @2); $$->type = $4; }
  | PARAM IDENT ':' type '=' expr
      { $$ = named(p, AST_PARAM, @$, $2, @2); $$->type = $4; $$->a = $6; }
  | STATE IDENT ':' type
      { $$ = named(p, AST_STATE, @$, $2, @2); $$->type = $4; }
  | STATE IDENT ':' type '=' expr
      { $$ = named(p, AST_STATE, @$, $2, @2); $$->type = $4; $$->a = $6; }
  | INPUT IDENT ':' type
      { $$ = named(p, AST_INPUT, @$, $2, @2); $$->type = $4; }
  | OUTPUT IDENT
      { $$ = named(p, AST_OUTPUT, @$, $2, @2);
        $$->a = named(p, AST_IDENT, @2, $2, @2); }
  | OUTPUT IDENT '=' expr { $$ = named(p, AST_OUTPUT, @$, $2, @2); $$->a = $4; }
  | LOSS expr             { $$ = node(p, AST_LOSS, @$); $$->a = $2; }
  | METRIC expr           { $$ = metric(p, @$, $2); }
  | METRIC IDENT '=' expr { $$ = named(p, AST_METRIC, @$, $2, @2); $$->a = $4; }
  | expr                  { $$ = node(p, AST_EXPR_STMT, @$); $$->a = $1; }
  ;

/* if_stmt := 'if' expr block ['else' (block | if_stmt)] */
if_stmt:
    IF expr block
      { $$ = node(p, AST_IF, @$); $$->a = $2; $$->body = $3; }
  | IF expr block ELSE block
      { $$ = node(p, AST_IF, @$); $$->a = $2; $$->body = $3; $$->b = $5; }
  | IF expr block ELSE if_stmt
      { $$ = node(p, AST_IF, @$); $$->a = $2; $$->body = $3; $$->b = $5; }
  ;

idents:
    IDENT                 { $$ = list1(p, named(p, AST_IDENT, @1, $1, @1)); }
  | idents ',' IDENT      { $$ = push(p, $1, named(p, AST_IDENT, @3, $3, @3)); }
  ;
exprs:
    expr                  { $$ = list1(p, $1); }
  | exprs ',' expr        { $$ = push(p, $1, $3); }
  ;

/* train_item := IDENT IDENT {',' IDENT} '=' expr    (AST_DATA)
**             | IDENT expr                          (AST_SETTING) */
train_items:
    %empty                { $$ = (AstList){0}; }
  | train_items NEWLINE
  | train_items train_item NEWLINE { $$ = push(p, $1, $2); }
  | train_items error NEWLINE      { yyerrok; }
  ;
train_item:
    IDENT idents '=' expr
      { $$ = named(p, AST_DATA, @$, $1, @1); $$->list = $2; $$->a = $4; }
  | IDENT expr
      { $$ = named(p, AST_SETTING, @$, $1, @1); $$->a = $2; }
  ;

/* expr := expr '..' expr | expr 'or' expr | expr 'and' expr | 'not' expr
**       | expr ('==' | '!=' | '<' | '>' | '<=' | '>=') expr
**       | expr ('+' | '-') expr | expr ('*' | '/' | '%' | '@') expr
**       | ('-' | '+') expr | expr '**' expr | postfix */
expr:
    postfix
  | expr DOTDOT expr
      { $$ = node(p, AST_RANGE, @$); $$->a = $1; $$->b = $3; }
  | expr OR expr          { $$ = binary(p, AOP_OR, $1, $3, @$); }
  | expr AND expr         { $$ = binary(p, AOP_AND, $1, $3, @$); }
  | NOT expr              { $$ = unary(p, AOP_NOT, $2, @$); }
  | expr EQ expr          { $$ = binary(p, AOP_EQ, $1, $3, @$); }
  | expr NE expr          { $$ = binary(p, AOP_NE, $1, $3, @$); }
  | expr '<' expr         { $$ = binary(p, AOP_LT, $1, $3, @$); }
  | expr '>' expr         { $$ = binary(p, AOP_GT, $1, $3, @$); }
  | expr LE expr          { $$ = binary(p, AOP_LE, $1, $3, @$); }
  | expr GE expr          { $$ = binary(p, AOP_GE, $1, $3, @$); }
  | expr '+' expr         { $$ = binary(p, AOP_ADD, $1, $3, @$); }
  | expr '-' expr         { $$ = binary(p, AOP_SUB, $1, $3, @$); }
  | expr '*' expr         { $$ = binary(p, AOP_MUL, $1, $3, @$); }
  | expr '/' expr         { $$ = binary(p, AOP_DIV, $1, $3, @$); }
  | expr '%' expr         { $$ = binary(p, AOP_MOD, $1, $3, @$); }
  | expr '@' expr         { $$ = binary(p, AOP_MATMUL, $1, $3, @$); }
  | '-' expr %prec UNARY  { $$ = unary(p, AOP_NEG, $2, @$); }
  | '+' expr %prec UNARY  { $$ = unary(p, AOP_PLUS, $2, @$); }
  | expr POW expr         { $$ = binary(p, AOP_POW, $1, $3, @$); }
  ;

/* postfix := primary
**          | postfix '(' [callarg {',' callarg} [',']] ')' ['as' IDENT]
**          | postfix '[' expr {',' expr} ']' | postfix '.' IDENT */
postfix:
    primary
  | postfix '(' callargs ')' opt_as
      { $$ = node(p, AST_CALL, @$); $$->a = $1; $$->list = $3; $$->scope = $5; }
  | postfix '[' exprs ']' { $$ = with_list(p, AST_INDEX, @$, $3); $$->a = $1; }
  | postfix '.' IDENT     { $$ = named(p, AST_FIELD, @$, $3, @3); $$->a = $1; }
  ;
opt_as:
    %empty                { $$ = NULL; }
  | AS IDENT              { $$ = $2; }
  ;
callargs:
    %empty                { $$ = (AstList){0}; }
  | callarg_list
  | callarg_list ','
  ;
callarg_list:
    callarg               { $$ = list1(p, $1); }
  | callarg_list ',' callarg { $$ = push(p, $1, $3); }
  ;
/* callarg := expr | IDENT ':' expr */
callarg:
    expr
  | IDENT ':' expr
      { $$ = named(p, AST_NAMED_ARG, @$, $1, @1); $$->a = $3; }
  ;

/* primary := NUMBER | STRING | 'true' | 'false' | IDENT | '(' expr ')'
**          | '(' expr ',' expr {',' expr} ')' | '[' [expr {',' expr}] ']'
**          | scan */
primary:
    NUMBER
      { $$ = node(p, AST_NUM, @$); $$->num = $1.num; $$->ival = $1.ival;
        $$->is_int = $1.is_int; }
  | STRING                { $$ = node(p, AST_STR, @$); $$->str = $1; }
  | TRUE                  { $$ = node(p, AST_BOOL, @$); $$->ival = 1; }
  | FALSE                 { $$ = node(p, AST_BOOL, @$); $$->ival = 0; }
  | IDENT                 { $$ = named(p, AST_IDENT, @$, $1, @1); }
  | '(' expr ')'          { $$ = $2; }
  | '(' expr ',' exprs ')'
      { $$ = with_list(p, AST_TUPLE, @$, list1(p, $2));
        for (int i = 0; i < $4.n; i++)
          ast_list_push(p->prog, &$$->list, $4.v[i]); }
  | '[' ']'               { $$ = node(p, AST_LIST, @$); }
  | '[' exprs ']'         { $$ = with_list(p, AST_LIST, @$, $2); }
  | scan
  ;

/* scan  := 'scan' ['reverse'] '(' [carry {',' carry}] [';' seq {',' seq}] ')'
**          block
** carry := IDENT '=' expr
** seq   := IDENT 'in' expr ['along' expr] */
scan:
    SCAN opt_reverse '(' carries ')' block
      { $$ = with_list(p, AST_SCAN, @$, $4); $$->ival = $2; $$->body = $6; }
  | SCAN opt_reverse '(' carries ';' seqs ')' block
      { $$ = with_list(p, AST_SCAN, @$, $4); $$->ival = $2; $$->list2 = $6;
        $$->body = $8; }
  ;
opt_reverse:
    %empty                { $$ = 0; }
  | REVERSE               { $$ = 1; }
  ;
carries:
    %empty                { $$ = (AstList){0}; }
  | carry_list
  ;
carry_list:
    carry                 { $$ = list1(p, $1); }
  | carry_list ',' carry  { $$ = push(p, $1, $3); }
  ;
carry:
    IDENT '=' expr
      { $$ = named(p, AST_NAMED_ARG, @$, $1, @1); $$->a = $3; }
  ;
seqs:
    seq                   { $$ = list1(p, $1); }
  | seqs ',' seq          { $$ = push(p, $1, $3); }
  ;
seq:
    IDENT IN expr         { $$ = named(p, AST_SEQ, @$, $1, @1); $$->a = $3; }
  | IDENT IN expr ALONG expr
      { $$ = named(p, AST_SEQ, @$, $1, @1); $$->a = $3; $$->b = $5; }
  ;

%%

static void yyerror(SrcLoc *loc, Parser *p, void *scanner,
                    const char *msg) {
  (void)scanner;
  diag_error(p->diag, *loc, "%s", msg);
}

/* Trees deeper than this are refused: the consumers of the AST (dump,
** sema, lowering) recurse, and a generated `a + a + ... + a` of a million
** terms would overflow the C stack.  Bison's own stack limit (YYMAXDEPTH)
** bounds only right-nested text, not left-associative chains. */
enum { MAX_DEPTH = 1000 };

typedef struct DepthItem {
  const AstNode *n;
  int depth;
} DepthItem;

/* The first node of decl nested deeper than MAX_DEPTH, or NULL.  Iterative,
** with an explicit stack in the arena. */
static const AstNode *too_deep(Parser *p, const AstNode *decl) {
  int cap = 256, n = 0;
  DepthItem *st = ARENA_ARRAY(p->prog->arena, DepthItem, cap);
  st[n++] = (DepthItem){decl, 1};
  while (n > 0) {
    DepthItem it = st[--n];
    if (it.depth > MAX_DEPTH) return it.n;
    const AstNode *x = it.n;
    int nkids = 4 + x->list.n + x->list2.n;
    if (n + nkids > cap) {
      int ncap = 2 * (n + nkids);
      DepthItem *v = ARENA_ARRAY(p->prog->arena, DepthItem, ncap);
      memcpy(v, st, sizeof *st * (size_t)n);
      st = v;
      cap = ncap;
    }
    const AstNode *kids[] = {x->a, x->b, x->type, x->body};
    for (int i = 0; i < 4; i++)
      if (kids[i]) st[n++] = (DepthItem){kids[i], it.depth + 1};
    for (int i = 0; i < x->list.n; i++)
      st[n++] = (DepthItem){x->list.v[i], it.depth + 1};
    for (int i = 0; i < x->list2.n; i++)
      st[n++] = (DepthItem){x->list2.v[i], it.depth + 1};
  }
  return NULL;
}

/* Report and drop the declarations that are nested too deeply. */
static void drop_deep_decls(Parser *p) {
  AstList *l = &p->prog->decls;
  int k = 0;
  for (int i = 0; i < l->n; i++) {
    const AstNode *bad = too_deep(p, l->v[i]);
    if (bad)
      diag_error(p->diag, bad->loc, "expression is nested too deeply "
                 "(more than %d levels)", MAX_DEPTH);
    else
      l->v[k++] = l->v[i];
  }
  l->n = k;
}

AstProgram *ast_parse(Diag *d, const char *file, const char *text,
                      size_t len) {
  Arena *a = arena_new();
  AstProgram *prog = ARENA_NEW(a, AstProgram);
  prog->arena = a;
  prog->strs = strtab_new(a);
  const DiagFile *f = diag_find_file(d, file);
  prog->file = f ? f->name : strtab_cstr(prog->strs, file);
  if (len > INT32_MAX) { /* flex takes an int; SrcLoc offsets are 32-bit */
    diag_error(d, (SrcLoc){0}, "%s: file too large", prog->file);
    return prog;
  }
  Parser p = {.prog = prog, .diag = d, .file = prog->file, .text = text,
              .len = len};
  lex_begin(&p);
  yyparse(&p, p.scanner);
  lex_end(&p);
  drop_deep_decls(&p);
  return prog;
}
