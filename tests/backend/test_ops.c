/*
** This file contains the differential tests of the lowering (backend/
** codegen.c, backend/cg_*.c): every op of ir/ops.def, at odd sizes and with
** broadcasting, compiled for the host and compared with the reference
** interpreter at 1 and 2 threads (ops_harness.h).  Kernels are compiled
** with a parallel threshold of 64 so the parallel path runs at these
** sizes.
**
** Tolerances (|got - want| <= atol + rtol |want|): elementwise rel 1e-5
** (abs 1e-6 where f32 math loses digits near zero: erf, gelu, tanh);
** reductions, matmul, conv, softmax, attention, losses rel 1e-4; f16 2e-3,
** bf16 1.6e-2 relative.  Integers and booleans exact.
*/
#include "ops_harness.h"

#define EW {.lo = -3, .hi = 3, .rtol = 1e-5, .atol = 1e-6}
#define RED {.lo = -2, .hi = 2, .rtol = 1e-4, .atol = 1e-5}

/* ------------------------------------------------------------ elementwise */

static const char unary_nnir[] =
    "module @t\n"
    "func @unary(%x: f32[3,17], %v: f32[257], %s: f32[]) -> (a: f32[3,17], b: f32[3,17], "
    "c: f32[3,17], d: f32[3,17], e: f32[3,17], f: f32[3,17], g: f32[3,17], h: f32[3,17], "
    "i: f32[3,17], j: f32[3,17], k: f32[257], l: f32[], m: f32[257]) {\n"
    "  %0 = neg %x : f32[3,17]\n"
    "  %1 = exp %x : f32[3,17]\n"
    "  %2 = log %x : f32[3,17]\n"
    "  %3 = sqrt %x : f32[3,17]\n"
    "  %4 = rsqrt %x : f32[3,17]\n"
    "  %5 = abs %x : f32[3,17]\n"
    "  %6 = sign %x : f32[3,17]\n"
    "  %7 = sin %x : f32[3,17]\n"
    "  %8 = cos %x : f32[3,17]\n"
    "  %9 = erf %x : f32[3,17]\n"
    "  %10 = clamp %v {lo = -1.0, hi = 2.0} : f32[257]\n"
    "  %11 = exp %s : f32[]\n"
    "  %12 = clamp %v {hi = 0.5} : f32[257]\n"
    "  return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12\n"
    "}\n"
    "func @act(%x: f32[3,17]) -> (a: f32[3,17], b: f32[3,17], c: f32[3,17], d: f32[3,17], "
    "e: f32[3,17], f: f32[3,17], g: f32[3,17], h: f32[3,17], i: f32[3,17], j: f32[3,17], "
    "k: f32[3,17], l: f32[3,17], m: f32[3,17], n: f32[3,17], o: f32[3,17], p: f32[3,17], "
    "q: f32[3,17]) {\n"
    "  %0 = step %x : f32[3,17]\n"
    "  %1 = sigmoid %x : f32[3,17]\n"
    "  %2 = tanh %x : f32[3,17]\n"
    "  %3 = relu %x : f32[3,17]\n"
    "  %4 = relu6 %x : f32[3,17]\n"
    "  %5 = leaky_relu %x {alpha = 0.2} : f32[3,17]\n"
    "  %6 = elu %x : f32[3,17]\n"
    "  %7 = selu %x : f32[3,17]\n"
    "  %8 = gelu %x : f32[3,17]\n"
    "  %9 = gelu_tanh %x : f32[3,17]\n"
    "  %10 = silu %x : f32[3,17]\n"
    "  %11 = mish %x : f32[3,17]\n"
    "  %12 = softplus %x {beta = 2.0, threshold = 3.0} : f32[3,17]\n"
    "  %13 = softsign %x : f32[3,17]\n"
    "  %14 = hard_sigmoid %x : f32[3,17]\n"
    "  %15 = hard_swish %x : f32[3,17]\n"
    "  %16 = step %x {threshold = 0.5} : f32[3,17]\n"
    "  return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16\n"
    "}\n"
    "func @gated(%x: f32[3,18], %y: f32[4,17]) -> (a: f32[3,9], b: f32[3,9], c: f32[3,9], "
    "d: f32[2,17]) {\n"
    "  %0 = glu %x : f32[3,9]\n"
    "  %1 = swiglu %x : f32[3,9]\n"
    "  %2 = geglu %x {axis = 1} : f32[3,9]\n"
    "  %3 = glu %y {axis = 0} : f32[2,17]\n"
    "  return %0, %1, %2, %3\n"
    "}\n";

static const char range_nnir[] =
    "module @t\n"
    "func @range(%x: f32[5,257]) -> (a: f32[5,257], b: f32[5,257], c: f32[5,257], "
    "d: f32[5,257], e: f32[5,257], f: f32[5,257], g: f32[5,257], h: f32[5,257], "
    "i: f32[5,257]) {\n"
    "  %s = constant {value = 40.0} : f32[]\n"
    "  %0 = mul %x, %s : f32[5,257]\n"
    "  %1 = exp %0 : f32[5,257]\n"
    "  %2 = tanh %0 : f32[5,257]\n"
    "  %3 = sigmoid %0 : f32[5,257]\n"
    "  %4 = log %x : f32[5,257]\n"
    "  %5 = exp %4 : f32[5,257]\n"
    "  %6 = tanh %4 : f32[5,257]\n"
    "  %7 = gelu_tanh %0 : f32[5,257]\n"
    "  %8 = erf %0 : f32[5,257]\n"
    "  %9 = gelu %0 : f32[5,257]\n"
    "  %10 = erf %4 : f32[5,257]\n"
    "  return %1, %2, %3, %5, %6, %7, %8, %9, %10\n"
    "}\n";

/* exp/tanh/sigmoid/erf/gelu over [-120, 120] (overflow, subnormals) and NaN. */
static void test_ops_range(void **state) {
  Spec sp = EW;
  check_module(range_nnir, &sp);
}

static void test_ops_unary(void **state) {
  Spec sp = EW;
  check_module(unary_nnir, &sp);
}

static const char binary_nnir[] =
    "module @t\n"
    "func @binary(%x: f32[4,1,17], %y: f32[3,17], %s: f32[]) -> (a: f32[4,3,17], "
    "b: f32[4,3,17], c: f32[4,3,17], d: f32[4,3,17], e: f32[4,3,17], f: f32[4,3,17], "
    "g: f32[4,3,17], h: f32[3,17]) {\n"
    "  %0 = add %x, %y : f32[4,3,17]\n"
    "  %1 = sub %x, %y : f32[4,3,17]\n"
    "  %2 = mul %x, %y : f32[4,3,17]\n"
    "  %3 = div %x, %y : f32[4,3,17]\n"
    "  %4 = pow %x, %y : f32[4,3,17]\n"
    "  %5 = maximum %x, %y : f32[4,3,17]\n"
    "  %6 = minimum %y, %x : f32[4,3,17]\n"
    "  %7 = add %y, %s : f32[3,17]\n"
    "  return %0, %1, %2, %3, %4, %5, %6, %7\n"
    "}\n"
    "func @compare(%x: f32[4,1,17], %y: f32[3,17], %n: i32[3,17], %m: i32[17]) -> "
    "(a: bool[4,3,17], b: bool[4,3,17], c: bool[4,3,17], d: bool[4,3,17], e: bool[4,3,17], "
    "f: bool[4,3,17], g: bool[3,17], h: bool[3,17], i: f32[4,3,17], j: bool[3,17]) {\n"
    "  %0 = eq %x, %y : bool[4,3,17]\n"
    "  %1 = ne %x, %y : bool[4,3,17]\n"
    "  %2 = lt %x, %y : bool[4,3,17]\n"
    "  %3 = le %x, %y : bool[4,3,17]\n"
    "  %4 = gt %x, %y : bool[4,3,17]\n"
    "  %5 = ge %x, %y : bool[4,3,17]\n"
    "  %6 = lt %n, %m : bool[3,17]\n"
    "  %7 = eq %n, %m : bool[3,17]\n"
    "  %8 = and %6, %7 : bool[3,17]\n"
    "  %9 = or %6, %7 : bool[3,17]\n"
    "  %10 = not %9 : bool[3,17]\n"
    "  %11 = where %2, %x, %y : f32[4,3,17]\n"
    "  return %0, %1, %2, %3, %4, %5, %8, %10, %11, %9\n"
    "}\n";

static void test_ops_binary(void **state) {
  Spec sp = EW;
  sp.ihi = 3;
  check_module(binary_nnir, &sp);
}

static const char int_nnir[] =
    "module @t\n"
    "func @ints(%a: i32[5,3], %b: i32[3], %c: i64[5,3], %u: u8[5,3]) -> (s: i32[5,3], "
    "d: i32[5,3], m: i32[5,3], q: i32[5,3], p: i32[5,3], n: i32[5,3], x: i32[5,3], "
    "l: i64[5,3], w: u8[5,3], v: u8[5,3], g: i32[5,3]) {\n"
    "  %one = constant {value = 1.0} : i32[3]\n"
    "  %b1 = add %b, %one : i32[3]\n"
    "  %0 = add %a, %b : i32[5,3]\n"
    "  %1 = sub %a, %b : i32[5,3]\n"
    "  %2 = mul %a, %b : i32[5,3]\n"
    "  %3 = div %a, %b1 : i32[5,3]\n"
    "  %4 = pow %a, %b : i32[5,3]\n"
    "  %5 = neg %a : i32[5,3]\n"
    "  %6 = maximum %a, %b : i32[5,3]\n"
    "  %7 = mul %c, %c : i64[5,3]\n"
    "  %8 = mul %u, %u : u8[5,3]\n"
    "  %9 = sub %u, %u : u8[5,3]\n"
    "  %10 = abs %5 : i32[5,3]\n"
    "  return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10\n"
    "}\n"
    "func @divzero(%a: i32[5,3], %b: i32[3]) -> (q: i32[5,3]) {\n"
    "  %0 = div %a, %b : i32[5,3]\n"
    "  return %0\n"
    "}\n";

static void test_ops_int(void **state) {
  Spec sp = EW;
  sp.ihi = 6;
  check_module(int_nnir, &sp);
}

static const char cast_nnir[] =
    "module @t\n"
    "func @cast(%x: f32[17], %n: i32[17], %l: i64[17], %b: bool[17], %h: f16[17], "
    "%d: f64[17]) -> (a: i32[17], b: u8[17], c: f32[17], e: bool[17], f: f32[17], g: i32[17], "
    "h: f64[17], i: f32[17], j: f16[17], k: f32[17], m: bf16[17], o: i64[17], p: f32[17]) {\n"
    "  %s = constant {value = 100.0} : f32[]\n"
    "  %xs = mul %x, %s : f32[17]\n"
    "  %0 = cast %xs : i32[17]\n"
    "  %1 = cast %xs : u8[17]\n"
    "  %2 = cast %n : f32[17]\n"
    "  %3 = cast %x : bool[17]\n"
    "  %4 = cast %b : f32[17]\n"
    "  %5 = cast %l : i32[17]\n"
    "  %6 = cast %x : f64[17]\n"
    "  %7 = cast %d : f32[17]\n"
    "  %8 = cast %x : f16[17]\n"
    "  %9 = cast %h : f32[17]\n"
    "  %10 = cast %x : bf16[17]\n"
    "  %11 = cast %d : i64[17]\n"
    "  %12 = add %h, %h : f16[17]\n"
    "  %13 = cast %12 : f32[17]\n"
    "  return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %13\n"
    "}\n";

static void test_ops_cast(void **state) {
  Spec sp = EW;
  sp.ihi = 300;
  check_module(cast_nnir, &sp);
}

static const char sources_nnir[] =
    "module @t\n"
    "func @sources() -> (c: f32[4,6], m: f32[5,5], r: f32[3,257], h: f16[7], i: i32[7], "
    "j: f32[2,3,4], k: i64[], n: bf16[9]) {\n"
    "  %c = constant {value = 0.5} : f32[4,6]\n"
    "  %m = causal_mask : f32[5,5]\n"
    "  %r = rand {seed = 3} : f32[3,257]\n"
    "  %h = rand {seed = 4} : f16[7]\n"
    "  %i = iota : i32[7]\n"
    "  %j = iota {axis = 1} : f32[2,3,4]\n"
    "  %k = constant {value = -7.0} : i64[]\n"
    "  %n = rand : bf16[9]\n"
    "  return %c, %m, %r, %h, %i, %j, %k, %n\n"
    "}\n";

static void test_ops_sources(void **state) {
  Spec sp = EW;
  sp.rtol = 0;
  sp.atol = 0;
  check_module(sources_nnir, &sp);
}

/* ------------------------------------------------------------- reductions */

static const char reduce_nnir[] =
    "module @t\n"
    "func @reduce(%x: f32[5,17,3], %n: i32[5,7], %v: f32[257]) -> (a: f32[], b: f32[5,3], "
    "c: f32[1,17,1], d: i32[5], e: f32[5,3], f: f32[5], g: i32[5,3], h: i32[1,7], "
    "i: f32[17], j: f32[], k: f32[5,17], l: i32[]) {\n"
    "  %0 = sum %x : f32[]\n"
    "  %1 = mean %x {axes = [1]} : f32[5,3]\n"
    "  %2 = max %x {keepdims = true, axes = [0, -1]} : f32[1,17,1]\n"
    "  %3 = min %n {axes = [1]} : i32[5]\n"
    "  %4 = logsumexp %x {axes = [1]} : f32[5,3]\n"
    "  %5 = var %x {axes = [1, 2]} : f32[5]\n"
    "  %6 = argmax %x {axis = 1} : i32[5,3]\n"
    "  %7 = argmax %n {axis = 0, keepdims = true} : i32[1,7]\n"
    "  %8 = min %x {axes = [0, 2]} : f32[17]\n"
    "  %9 = sum %v : f32[]\n"
    "  %10 = var %x {axes = [2], correction = 0.0} : f32[5,17]\n"
    "  %11 = sum %n : i32[]\n"
    "  return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11\n"
    "}\n";

/* Runs of reduced axes merged into one loop (cg_reduce.c red_begin): a
** bias gradient's sum over N, H, W; keepdims; a run broken by a kept axis;
** a transposed view (not contiguous: no merge) and a fused operand. */
static const char reduce_runs_nnir[] =
    "module @t\n"
    "func @runs(%x: f32[5,3,7,9], %y: f32[3,7,9]) -> (a: f32[3], b: f32[1,3,1,1], "
    "c: f32[3,7], d: f32[5,9], e: f32[9], f: f32[3], g: f32[5]) {\n"
    "  %0 = sum %x {axes = [0, 2, 3]} : f32[3]\n"
    "  %1 = max %x {axes = [0, 2, 3], keepdims = true} : f32[1,3,1,1]\n"
    "  %2 = mean %x {axes = [0, 3]} : f32[3,7]\n"
    "  %3 = sum %x {axes = [1, 2]} : f32[5,9]\n"
    "  %4 = transpose %y {perm = [0, 2, 1]} : f32[3,9,7]\n"
    "  %5 = sum %4 {axes = [0, 2]} : f32[9]\n"
    "  %6 = mul %x, %x : f32[5,3,7,9]\n"
    "  %7 = sum %6 {axes = [0, 2, 3]} : f32[3]\n"
    "  %8 = var %x {axes = [1, 2, 3]} : f32[5]\n"
    "  return %0, %1, %2, %3, %5, %7, %8\n"
    "}\n";

static void test_ops_reduce(void **state) {
  Spec sp = RED;
  check_module(reduce_nnir, &sp);
  check_module(reduce_runs_nnir, &sp);
}

/* ------------------------------------------------------------------ shape */

static const char shape_nnir[] =
    "module @t\n"
    "param @emb : f32[13,5] = zeros\n"
    "func @shape(%x: f32[3,4,10], %v: f32[10], %ids: i32[3,4], %y: f32[3,4,2]) -> "
    "(a: f32[3,2,4,5], b: f32[3,7,6], c: f32[3,2,4,10], d: f32[3,4,13], e: f32[3,4,5], "
    "f: f32[4,3,10], g: f32[3,4,12], h: f32[12,10], i: f32[3,4,0], j: f32[3,4,10]) {\n"
    "  %0 = reshape %x : f32[3,4,2,5]\n"
    "  %1 = transpose %0 {perm = [0, 2, 1, 3]} : f32[3,2,4,5]\n"
    "  %2 = broadcast %v : f32[3,4,10]\n"
    "  %3 = concat %x, %2, %y {axis = -1} : f32[3,4,22]\n"
    "  %4 = slice %3 {axis = 2, start = 1, end = -1, step = 4} : f32[3,4,5]\n"
    "  %5 = pad %4 {pads = [0, 0, 1, 2, 0, 1], value = 9.0} : f32[3,7,6]\n"
    "  %6 = stack %x, %2 {axis = 1} : f32[3,2,4,10]\n"
    "  %7 = one_hot %ids {classes = 13} : f32[3,4,13]\n"
    "  %8 = gather @emb, %ids : f32[3,4,5]\n"
    "  %9 = transpose %x {perm = [1, 0, 2]} : f32[4,3,10]\n"
    "  %10 = concat %x, %y {axis = 2} : f32[3,4,12]\n"
    "  %11 = reshape %x : f32[12,10]\n"
    "  %12 = slice %x {axis = 2, start = 8, end = 0, step = 3} : f32[3,4,0]\n"
    "  %13 = neg %x : f32[3,4,10]\n"
    "  %14 = reshape %13 : f32[120]\n"
    "  %15 = reshape %14 : f32[3,4,10]\n"
    "  return %1, %5, %6, %7, %8, %9, %10, %11, %12, %15\n"
    "}\n"
    "func @badindex(%ids: i32[3,4]) -> (e: f32[3,4,5]) {\n"
    "  %0 = gather @emb, %ids : f32[3,4,5]\n"
    "  return %0\n"
    "}\n";

static const char returns_nnir[] =
    "module @t\n"
    "param @g : f32[2,3] = zeros\n"
    "func @rets(%x: f32[2,3], %n: i32[4]) -> (a: f32[2,3], b: f32[2,3], c: f32[2,3], "
    "d: f32[2,3], e: f32[6], f: i32[4], g: f32[3,2], h: f32[2,3]) {\n"
    "  %0 = add %x, @g : f32[2,3]\n"
    "  %1 = reshape %0 : f32[6]\n"
    "  %2 = transpose @g {perm = [1, 0]} : f32[3,2]\n"
    "  %3 = constant {value = 2.5} : f32[2,3]\n"
    "  return %x, @g, %0, %0, %1, %n, %2, %3\n"
    "}\n";

/* Reshapes of fused elementwise values: read at the flat index when every
** buffer below is dense row-major (a, b: through a cast, a division by a
** scalar argument and an add of two same-shape values), by division of
** the index otherwise (c: a broadcast operand; d: a transposed view). */
static const char reshape_flat_nnir[] =
    "module @t\n"
    "func @flat(%img: u8[3,5,7], %x: f32[3,5,7], %s: f32[], %v: f32[7], %y: f32[5,3,7]) -> "
    "(a: f32[3,35], b: f32[105], c: f32[15,7], d: f32[3,35]) {\n"
    "  %0 = cast %img : f32[3,5,7]\n"
    "  %1 = div %0, %s : f32[3,5,7]\n"
    "  %2 = reshape %1 : f32[3,35]\n"
    "  %3 = add %x, %1 : f32[3,5,7]\n"
    "  %4 = neg %3 : f32[3,5,7]\n"
    "  %5 = reshape %4 : f32[105]\n"
    "  %6 = mul %x, %v : f32[3,5,7]\n"
    "  %7 = exp %6 : f32[3,5,7]\n"
    "  %8 = reshape %7 : f32[15,7]\n"
    "  %9 = transpose %y {perm = [1, 0, 2]} : f32[3,5,7]\n"
    "  %10 = sqrt %9 : f32[3,5,7]\n"
    "  %11 = abs %10 : f32[3,5,7]\n"
    "  %12 = reshape %11 : f32[3,35]\n"
    "  return %2, %5, %8, %12\n"
    "}\n";

static void test_ops_shape(void **state) {
  Spec sp = EW;
  check_module(reshape_flat_nnir, &sp);
  check_module(returns_nnir, &sp);
  sp.no_fuse = true; /* every value materialised, views as copies */
  check_module(shape_nnir, &sp);
  check_module(unary_nnir, &sp);
  sp.no_fuse = false;
  sp.ihi = 13; /* badindex: labels up to 12 for a 13-row table: in range */
  check_module(shape_nnir, &sp);
  sp.ihi = 20; /* out of range: both engines must fail */
  check_module(shape_nnir, &sp);
}

/* ----------------------------------------------------------------- linalg */

static const char linalg_nnir[] =
    "module @t\n"
    "func @mm(%a: f32[17,33], %b: f32[33,19], %c: f32[2,3,5,7], %d: f32[7,4], %v: f32[7], "
    "%w: f32[3,7], %e: f64[3,5], %f: f64[5,2], %t: f32[2,3,5,7]) -> (a: f32[17,19], "
    "b: f32[2,3,5,4], c: f32[4], d: f32[3], e: f64[3,2], f: f32[2,3,5,5]) {\n"
    "  %0 = matmul %a, %b : f32[17,19]\n"
    "  %1 = matmul %c, %d : f32[2,3,5,4]\n"
    "  %2 = matmul %v, %d : f32[4]\n"
    "  %3 = matmul %w, %v : f32[3]\n"
    "  %4 = matmul %e, %f : f64[3,2]\n"
    "  %5 = transpose %t {perm = [0, 1, 3, 2]} : f32[2,3,7,5]\n"
    "  %6 = matmul %c, %5 : f32[2,3,5,5]\n"
    "  return %0, %1, %2, %3, %4, %6\n"
    "}\n"
    "func @sm(%x: f32[3,4,17], %q: f32[2,5,8], %k: f32[2,6,8], %v: f32[2,6,3], "
    "%m: bool[5,6], %fm: f32[2,5,6]) -> (a: f32[3,4,17], b: f32[3,4,17], c: f32[2,5,3], "
    "d: f32[2,5,3], e: f32[2,5,3], f: f32[2,5,3]) {\n"
    "  %0 = softmax %x : f32[3,4,17]\n"
    "  %1 = log_softmax %x {axis = 1} : f32[3,4,17]\n"
    "  %2 = attention %q, %k, %v : f32[2,5,3]\n"
    "  %3 = attention %q, %k, %v {causal = true, scale = 0.5} : f32[2,5,3]\n"
    "  %4 = attention %q, %k, %v, %m : f32[2,5,3]\n"
    "  %5 = attention %q, %k, %v, %fm : f32[2,5,3]\n"
    "  return %0, %1, %2, %3, %4, %5\n"
    "}\n"
    "func @att(%q: f32[2,3,5,8], %k: f32[2,3,6,8], %v: f32[2,3,6,4]) -> (a: f32[2,3,5,4], "
    "b: f32[2,3,5,4]) {\n"
    "  %r = iota {axis = 0} : f32[5,6]\n"
    "  %c = iota {axis = 1} : f32[5,6]\n"
    "  %m = lt %c, %r : bool[5,6]\n"
    "  %0 = attention %q, %k, %v, %m : f32[2,3,5,4]\n"
    "  %1 = attention %q, %k, %v {causal = true} : f32[2,3,5,4]\n"
    "  return %0, %1\n"
    "}\n";

static const char gemm_nnir[] =
    "module @t\n"
    "param @w : f32[129,65] = zeros\n"
    "param @b : f32[65] = zeros\n"
    "func @big(%x: f32[257,129], %c: f32[3,1,17,33], %d: f32[2,33,9], %e: f32[9,33]) -> "
    "(y: f32[257,65], z: f32[3,2,17,9], u: f32[257,65], t: f32[3,2,17,9], v: f32[257,65]) {\n"
    "  %0 = matmul %x, @w : f32[257,65]\n"
    "  %1 = add %0, @b : f32[257,65]\n"
    "  %2 = relu %1 : f32[257,65]\n"
    "  %3 = matmul %c, %d : f32[3,2,17,9]\n"
    "  %4 = matmul %x, @w : f32[257,65]\n"
    "  %5 = add @b, %4 : f32[257,65]\n"
    "  %6 = transpose %e {perm = [1, 0]} : f32[33,9]\n"
    "  %7 = matmul %c, %6 : f32[3,1,17,9]\n"
    "  %8 = add %7, %3 : f32[3,2,17,9]\n"
    "  %9 = matmul %x, @w : f32[257,65]\n"
    "  %10 = add %9, @b : f32[257,65]\n"
    "  %11 = tanh %10 : f32[257,65]\n"
    "  return %2, %3, %5, %8, %11\n"
    "}\n";

static void test_ops_gemm(void **state) {
  Spec sp = RED;
  check_module(gemm_nnir, &sp);
}

static void test_ops_linalg(void **state) {
  Spec sp = RED;
  check_module(linalg_nnir, &sp);
}

/* ----------------------------------------------------------------- vision */

static const char vision_nnir[] =
    "module @t\n"
    "param @c1.w : f32[16,3,3,3] = zeros\n"
    "param @c1.b : f32[16] = zeros\n"
    "param @g.w : f32[16,4,3,3] = zeros\n"
    "param @t.w : f32[16,8,3,3] = zeros\n"
    "param @t4.w : f32[16,8,4,4] = zeros\n"
    "param @c1d.w : f32[8,3,5] = zeros\n"
    "param @tg.w : f32[16,2,3,3] = zeros\n"
    "func @vision(%x8: f32[2,3,8,8], %x7: f32[2,3,7,7], %x7b: f32[2,16,7,7], %seq: f32[2,3,17]) "
    "-> (a: f32[2,16,4,4], b: f32[2,16,4,4], c: f32[2,8,8,8], d: f32[2,8,17], e: f32[2,8,7,7], "
    "f: f32[2,8,5,9], g: f32[2,8,8,8], h: f32[2,16,4,4], i: f32[2,8,8,8], j: f32[2,8,4,4], "
    "k: f32[2,4,8,8], l: f32[2,8,15,15], m: f32[2,8,6,6], n: f32[2,8,13,13]) {\n"
    "  %0 = conv2d %x8, @c1.w, @c1.b {stride = [2, 2], padding = [1, 1]} : f32[2,16,4,4]\n"
    "  %1 = conv2d %x7, @c1.w {stride = [2, 2], padding = [1, 1]} : f32[2,16,4,4]\n"
    "  %2 = conv2d %0, @g.w {groups = 4, padding = [1, 1]} : f32[2,16,4,4]\n"
    "  %3 = conv_transpose2d %0, @t.w {stride = [2, 2], padding = [1, 1], output_padding = [1, 1]} : f32[2,8,8,8]\n"
    "  %4 = conv_transpose2d %0, @t4.w {stride = [2, 2], padding = [1, 1]} : f32[2,8,8,8]\n"
    "  %5 = conv_transpose2d %x7b, @t.w {stride = [2, 2], padding = [1, 1]} : f32[2,8,13,13]\n"
    "  %6 = conv1d %seq, @c1d.w {padding = [4], dilation = [2]} : f32[2,8,17]\n"
    "  %7 = max_pool2d %3 {kernel = [2, 2]} : f32[2,8,4,4]\n"
    "  %8 = avg_pool2d %5 {kernel = [3, 3], stride = [2, 2], padding = [1, 1]} : f32[2,8,7,7]\n"
    "  %9 = upsample_nearest %7 {size = [5, 9]} : f32[2,8,5,9]\n"
    "  %10 = upsample_bilinear %7 {size = [8, 8], align_corners = true} : f32[2,8,8,8]\n"
    "  %11 = pixel_shuffle %0 {r = 2} : f32[2,4,8,8]\n"
    "  %12 = pixel_unshuffle %11 {r = 2} : f32[2,16,4,4]\n"
    "  %13 = upsample_bilinear %7 {size = [8, 8]} : f32[2,8,8,8]\n"
    "  %14 = conv_transpose2d %0, @tg.w {groups = 8, stride = [2, 2], dilation = [2, 2]} : f32[2,16,11,11]\n"
    "  %15 = max_pool2d %5 {kernel = [5, 5], stride = [1, 1], padding = [1, 1]} : f32[2,8,11,11]\n"
    "  %16 = avg_pool2d %5 {kernel = [2, 2], padding = [1, 1], count_include_pad = false} : f32[2,8,7,7]\n"
    "  %17 = max_pool2d %3 {kernel = [2, 3], stride = [2, 1]} : f32[2,8,4,6]\n"
    "  %18 = slice %14 {axis = 1, start = 0, end = 8} : f32[2,8,11,11]\n"
    "  %19 = pad %15 {pads = [0, 0, 0, 0, 2, 2, 2, 2]} : f32[2,8,15,15]\n"
    "  %20 = add %18, %15 : f32[2,8,11,11]\n"
    "  %21 = slice %20 {axis = 2, start = 0, end = 6} : f32[2,8,6,11]\n"
    "  %22 = slice %21 {axis = 3, start = 0, end = 6} : f32[2,8,6,6]\n"
    "  return %1, %2, %4, %6, %8, %9, %10, %12, %13, %7, %11, %19, %22, %5\n"
    "}\n";

static const char conv_nnir[] =
    "module @t\n"
    "func @conv(%x: f32[3,5,17,13], %w: f32[6,5,3,4], %b: f32[6], %h: f16[1,2,9,9], "
    "%hw: f16[2,2,3,3], %v: f32[2,4,33], %vw: f32[4,1,7]) -> (a: f32[3,6,6,3], "
    "c: f16[1,2,9,9], d: f32[2,4,17], e: f32[3,6,17,14], f: i32[3,5,6,7], g: i32[3,5,5,20]) {\n"
    "  %0 = conv2d %x, %w, %b {stride = [3, 4], padding = [2, 1], dilation = [2, 1]} : f32[3,6,6,3]\n"
    "  %1 = conv2d %h, %hw {padding = [1, 1]} : f16[1,2,9,9]\n"
    "  %2 = conv1d %v, %vw {groups = 4, stride = [2], padding = [3]} : f32[2,4,17]\n"
    "  %3 = conv2d %x, %w, %b {padding = [1, 2]} : f32[3,6,17,14]\n"
    "  %4 = cast %x : i32[3,5,17,13]\n"
    "  %5 = max_pool2d %4 {kernel = [3, 2], padding = [1, 1]} : i32[3,5,6,7]\n"
    "  %6 = upsample_nearest %4 {size = [5, 20]} : i32[3,5,5,20]\n"
    "  return %0, %1, %2, %3, %5, %6\n"
    "}\n";

/* f32 conv1d/conv2d with one group take im2col + SGEMM (cg_vision.c):
** batch 1, 3 and 5 (uneven sample chunks), 1 and 5 channels, bias or
** not, stride, padding wider than the kernel reach (whole col rows of
** zeros), dilation, an input that is a strided view (transpose) and a
** weight that is one (not row-major: the direct kernel); conv_transpose2d
** with one group (SGEMM + col2im) with stride, padding, dilation,
** output_padding and bias, and over a transposed input. */
static const char conv_gemm_nnir[] =
    "module @t\n"
    "func @convg(%a: f32[1,1,11,9], %wa: f32[3,1,5,5], %ba: f32[3], %x: f32[3,5,13,9], "
    "%w: f32[7,5,3,3], %b: f32[7], %s: f32[5,5,19], %ws: f32[4,5,3], %bs: f32[4], "
    "%t: f32[5,3,13,9], %wt: f32[5,7,3,3], %wtr: f32[5,4,3,3], %btr: f32[4], "
    "%wa2: f32[1,3,5,5]) -> (a: f32[1,3,7,5], b: f32[1,3,5,4], "
    "c: f32[3,7,5,3], d: f32[5,4,7], e: f32[5,4,23], f: f32[3,7,11,7], g: f32[3,5,11,7], "
    "h: f32[3,7,19,15], i: f32[3,4,28,23], j: f32[1,3,15,13], k: f32[3,4,15,11]) {\n"
    "  %0 = conv2d %a, %wa, %ba : f32[1,3,7,5]\n"
    "  %1 = conv2d %a, %wa {stride = [2, 2], padding = [1, 1]} : f32[1,3,5,4]\n"
    "  %2 = conv2d %x, %w, %b {stride = [3, 2], padding = [2, 1], dilation = [2, 3]} : f32[3,7,5,3]\n"
    "  %3 = conv1d %s, %ws, %bs {stride = [3], padding = [2], dilation = [2]} : f32[5,4,7]\n"
    "  %4 = conv1d %s, %ws {padding = [3]} : f32[5,4,23]\n"
    "  %5 = transpose %t {perm = [1, 0, 2, 3]} : f32[3,5,13,9]\n"
    "  %6 = conv2d %5, %w, %b : f32[3,7,11,7]\n"
    "  %7 = transpose %wt {perm = [1, 0, 2, 3]} : f32[7,5,3,3]\n"
    "  %8 = conv2d %x, %7 : f32[3,7,11,7]\n"
    "  %9 = slice %8 {axis = 1, start = 0, end = 5} : f32[3,5,11,7]\n"
    "  %10 = conv2d %x, %w, %b {padding = [4, 4]} : f32[3,7,19,15]\n"
    "  %11 = conv_transpose2d %x, %wtr, %btr {stride = [2, 3], padding = [1, 2], "
    "dilation = [2, 1], output_padding = [1, 0]} : f32[3,4,28,23]\n"
    "  %12 = conv_transpose2d %a, %wa2 : f32[1,3,15,13]\n"
    "  %13 = conv_transpose2d %5, %wtr {padding = [0, 0]} : f32[3,4,15,11]\n"
    "  return %0, %1, %2, %3, %4, %6, %9, %10, %11, %12, %13\n"
    "}\n";

static void test_ops_vision(void **state) {
  Spec sp = RED;
  check_module(vision_nnir, &sp);
  check_module(conv_nnir, &sp);
  check_module(conv_gemm_nnir, &sp);
}

/* ------------------------------------------------------- losses, metrics */

static const char loss_nnir[] =
    "module @t\n"
    "func @losses(%logits: f32[7,10], %labels: i32[7], %z: f32[7,3], %y: f32[7,3], "
    "%seqlog: f16[2,5,7], %seqlab: i64[2,5], %yb: f32[3]) -> (a: f32[], b: f32[], c: f32[], "
    "d: f32[], e: f32[], f: f32[], g: f32[], h: f32[], j: f16[], k: f32[], l: f32[]) {\n"
    "  %0 = cross_entropy %logits, %labels {label_smoothing = 0.1} : f32[]\n"
    "  %1 = log_softmax %logits : f32[7,10]\n"
    "  %2 = nll %1, %labels : f32[]\n"
    "  %3 = bce_with_logits %z, %y : f32[]\n"
    "  %4 = mse %z, %y : f32[]\n"
    "  %5 = l1 %z, %y : f32[]\n"
    "  %6 = huber %z, %y {delta = 0.5} : f32[]\n"
    "  %7 = soft_accuracy %logits, %labels : f32[]\n"
    "  %8 = soft_f1 %logits, %labels : f32[]\n"
    "  %10 = cross_entropy %seqlog, %seqlab : f16[]\n"
    "  %11 = mse %yb, %yb : f32[]\n"
    "  %12 = cross_entropy %logits, %labels : f32[]\n"
    "  return %0, %2, %3, %4, %5, %6, %7, %8, %10, %11, %12\n"
    "}\n"
    "func @metrics(%logits: f32[9,10], %labels: i32[9]) -> (a: f32[], b: f32[], c: f32[]) {\n"
    "  %0 = accuracy %logits, %labels : f32[]\n"
    "  %2 = f1 %logits, %labels : f32[]\n"
    "  %4 = top_k %logits, %labels {k = 3} : f32[]\n"
    "  return %0, %2, %4\n"
    "}\n";

static const char binary_loss_nnir[] =
    "module @t\n"
    "func @binary(%x: f32[11], %l: i32[11], %p: f32[11], %t: f32[11]) -> (a: f32[], b: f32[], "
    "c: f32[], d: f32[], e: f32[]) {\n"
    "  %0 = accuracy %x, %l : f32[]\n"
    "  %1 = f1 %x, %l : f32[]\n"
    "  %2 = soft_f1 %x, %l : f32[]\n"
    "  %3 = soft_accuracy %x, %l : f32[]\n"
    "  %4 = bce_with_logits %p, %t : f32[]\n"
    "  return %0, %1, %2, %3, %4\n"
    "}\n";

static void test_ops_loss(void **state) {
  Spec sp = RED;
  check_module(loss_nnir, &sp);
  sp.ihi = 2;
  check_module(binary_loss_nnir, &sp);
  sp.ihi = 12; /* labels out of range: both engines must fail */
  check_module(loss_nnir, &sp);
}


/* ------------------------------------------------------------------- scan */

static const char scan_nnir[] =
    "module @t\n"
    "param @w.x : f32[8,16] = zeros\n"
    "param @w.h : f32[16,16] = zeros\n"
    "func @forward(%h0: f32[4,16], %x: f32[4,10,8], %xr: f32[10,4,8], %bias: f32[16]) -> "
    "(h: f32[4,16], hs: f32[4,10,16], xs: f32[4,10,8]) {\n"
    "  %0:3 = scan %h0, %x, %xr {reverse = true, ncarry = 1, axes = [1, 0]} : f32[4,16], "
    "f32[4,10,16], f32[4,10,8] {\n"
    "  ^(%h: f32[4,16], %xt: f32[4,8], %xt.1: f32[4,8]):\n"
    "    %1 = matmul %xt, @w.x : f32[4,16]\n"
    "    %2 = matmul %h, @w.h : f32[4,16]\n"
    "    %3 = add %1, %2 : f32[4,16]\n"
    "    %4:2 = scan %3, %bias {axes = [0], ncarry = 1} : f32[4,16], f32[16,4] {\n"
    "    ^(%h.1: f32[4,16], %b: f32[]):\n"
    "      %5 = add %h.1, %b : f32[4,16]\n"
    "      %6 = add %5, %h : f32[4,16]\n"
    "      %7 = tanh %6 : f32[4,16]\n"
    "      %8 = sum %7 {axes = [1]} : f32[4]\n"
    "      yield %7, %8\n"
    "    }\n"
    "    %9 = add %xt, %xt.1 : f32[4,8]\n"
    "    yield %4#0, %4#0, %9\n"
    "  }\n"
    "  %10 = neg %0#0 : f32[4,16]\n"
    "  return %10, %0#1, %0#2\n"
    "}\n"
    "func @lstm(%h0: f32[3,5], %c0: f32[3,5], %xs: f32[7,3,4], %wx: f32[4,20], %wh: f32[5,20], "
    "%b: f32[20]) -> (h: f32[3,5], c: f32[3,5], hs: f32[7,3,5]) {\n"
    "  %0:3 = scan %h0, %c0, %xs {ncarry = 2, axes = [0]} : f32[3,5], f32[3,5], f32[7,3,5] {\n"
    "  ^(%h: f32[3,5], %c: f32[3,5], %x: f32[3,4]):\n"
    "    %1 = matmul %x, %wx : f32[3,20]\n"
    "    %2 = matmul %h, %wh : f32[3,20]\n"
    "    %3 = add %1, %2 : f32[3,20]\n"
    "    %4 = add %3, %b : f32[3,20]\n"
    "    %i = slice %4 {axis = 1, start = 0, end = 5} : f32[3,5]\n"
    "    %f = slice %4 {axis = 1, start = 5, end = 10} : f32[3,5]\n"
    "    %g = slice %4 {axis = 1, start = 10, end = 15} : f32[3,5]\n"
    "    %o = slice %4 {axis = 1, start = 15, end = 20} : f32[3,5]\n"
    "    %si = sigmoid %i : f32[3,5]\n"
    "    %sf = sigmoid %f : f32[3,5]\n"
    "    %tg = tanh %g : f32[3,5]\n"
    "    %so = sigmoid %o : f32[3,5]\n"
    "    %fc = mul %sf, %c : f32[3,5]\n"
    "    %ig = mul %si, %tg : f32[3,5]\n"
    "    %c2 = add %fc, %ig : f32[3,5]\n"
    "    %tc = tanh %c2 : f32[3,5]\n"
    "    %h2 = mul %so, %tc : f32[3,5]\n"
    "    yield %h2, %c2, %h2\n"
    "  }\n"
    "  return %0#0, %0#1, %0#2\n"
    "}\n"
    "func @swap(%a0: f32[3], %b0: f32[3]) -> (a: f32[3], b: f32[3], e: f32[5,3]) {\n"
    "  %0:3 = scan %a0, %b0 {ncarry = 2, length = 5} : f32[3], f32[3], f32[5,3] {\n"
    "  ^(%a: f32[3], %b: f32[3]):\n"
    "    %1 = add %a, %b : f32[3]\n"
    "    yield %b, %1, %a\n"
    "  }\n"
    "  return %0#0, %0#1, %0#2\n"
    "}\n";

static void test_ops_scan(void **state) {
  Spec sp = RED;
  check_module(scan_nnir, &sp);
}

/* ----------------------------------------------------------------- fusion */

/* The kernels of a module and the results of its functions. */
static void check_fused(const char *text, int want_kernels, const char *const *names) {
  Spec sp = RED;
  Lib L;
  bool ok = lib_build(&L, text, &sp, false);
  if (ok && L.nkernels != want_kernels)
    fprintf(stderr, "kernels: %s(want %d)\n", L.kernels, want_kernels);
  int bad = ok ? check_func(&L, L.m->funcs, &sp, 42) : 1;
  bool named = true;
  for (int i = 0; ok && names[i]; i++)
    if (!strstr(L.kernels, names[i])) {
      fprintf(stderr, "no kernel %s in: %s\n", names[i], L.kernels);
      named = false;
    }
  int nk = L.nkernels;
  lib_free(&L);
  assert_true(ok);
  assert_int_equal(bad, 0);
  assert_int_equal(nk, want_kernels);
  assert_true(named);
}

static const char layernorm_nnir[] =
    "module @t\n"
    "func @layernorm(%x: f32[6,257], %g: f32[257], %b: f32[257]) -> (y: f32[6,257]) {\n"
    "  %m = mean %x {axes = [1], keepdims = true} : f32[6,1]\n"
    "  %d = sub %x, %m : f32[6,257]\n"
    "  %d2 = mul %d, %d : f32[6,257]\n"
    "  %v = mean %d2 {axes = [1], keepdims = true} : f32[6,1]\n"
    "  %e = constant {value = 1e-05} : f32[]\n"
    "  %ve = add %v, %e : f32[6,1]\n"
    "  %r = rsqrt %ve : f32[6,1]\n"
    "  %n = mul %d, %r : f32[6,257]\n"
    "  %s = mul %n, %g : f32[6,257]\n"
    "  %y = add %s, %b : f32[6,257]\n"
    "  return %y\n"
    "}\n";

static void test_ops_fused_layernorm(void **state) {
  /* mean, x - mean (two uses), mean(d*d), and one loop for the rest */
  static const char *const names[] = {"_fused_mean_mul", "_fused_add_mul_mul_rsqrt_add", NULL};
  check_fused(layernorm_nnir, 4, names);
}

static const char mlp_nnir[] =
    "module @t\n"
    "func @mlp(%x: f32[17,33], %w: f32[33,65], %b: f32[65]) -> (y: f32[17,65]) {\n"
    "  %0 = matmul %x, %w : f32[17,65]\n"
    "  %1 = add %0, %b : f32[17,65]\n"
    "  %2 = relu %1 : f32[17,65]\n"
    "  return %2\n"
    "}\n";

static void test_ops_fused_mlp(void **state) {
  /* the bias and the relu are the SGEMM's epilogue: one kernel */
  static const char *const names[] = {"_fused_relu_add_matmul", NULL};
  check_fused(mlp_nnir, 1, names);
}

static const char softmax_fused_nnir[] =
    "module @t\n"
    "func @scaled(%x: f32[5,33], %s: f32[]) -> (y: f32[5,33], z: f32[5]) {\n"
    "  %0 = mul %x, %s : f32[5,33]\n"
    "  %1 = softmax %0 : f32[5,33]\n"
    "  %2 = exp %x : f32[5,33]\n"
    "  %3 = sum %2 {axes = [1]} : f32[5]\n"
    "  return %1, %3\n"
    "}\n";

static void test_ops_fused_softmax(void **state) {
  static const char *const names[] = {"_fused_softmax_mul", "_fused_sum_exp", NULL};
  check_fused(softmax_fused_nnir, 2, names);
}

/* ------------------------------------------------------- vector registers */

/* The assembly of function `name` (from its label to its end marker). */
static const char *asm_func(const char *text, const char *name, char *buf, size_t cap) {
  char label[128];
  snprintf(label, sizeof label, "\n%s:", name);
  const char *p = strstr(text, label);
  if (!p) return NULL;
  const char *e = strstr(p, ".Lfunc_end");
  size_t n = e ? (size_t)(e - p) : strlen(p);
  if (n >= cap) n = cap - 1;
  memcpy(buf, p, n);
  buf[n] = 0;
  return buf;
}

static bool packed(const char *code, const char *insn) {
  for (const char *p = strstr(code, insn); p; p = strstr(p + 1, insn)) {
    const char *eol = strchr(p, '\n');
    size_t n = eol ? (size_t)(eol - p) : strlen(p);
    char line[160];
    snprintf(line, sizeof line, "%.*s", (int)(n < 159 ? n : 159), p);
    if (strstr(line, "%ymm") || strstr(line, "%zmm") || strstr(line, "%xmm")) return true;
  }
  return false;
}

static const char vec_nnir[] =
    "module @t\n"
    "func @vec(%x: f32[64,256], %y: f32[64,256], %a: f32[64,64], %b: f32[64,64]) -> "
    "(s: f32[64,256], m: f32[64,64]) {\n"
    "  %0 = add %x, %y : f32[64,256]\n"
    "  %1 = matmul %a, %b : f32[64,64]\n"
    "  return %0, %1\n"
    "}\n";

static void test_ops_vector_registers(void **state) {
  Spec sp = RED;
  sp.par = -1;
  Lib L;
  bool ok = lib_build(&L, vec_nnir, &sp, true);
  assert_true(ok && L.asm_text);
  static char buf[1 << 18];
  const char *add = asm_func(L.asm_text, "k0_add", buf, sizeof buf);
  bool add_vec = add && packed(add, "vaddps");
  if (!add_vec) fprintf(stderr, "k0_add is not vectorised:\n%s\n", add ? add : "(missing)");
  bool mm_vec = false;
  const char *mm = asm_func(L.asm_text, "k1_matmul", buf, sizeof buf);
  mm_vec = mm && (packed(mm, "vfmadd") || packed(mm, "vmulps"));
  /* the kernel calls the SGEMM: its micro-kernel must use packed FMAs */
  if (!mm_vec && mm && strstr(mm, "nnc_sgemm_nn"))
    mm = asm_func(L.asm_text, "nnc_sgemm_nn_ukr", buf, sizeof buf),
    mm_vec = mm && packed(mm, "vfmadd") && strstr(mm, "ps");
  if (!mm_vec) fprintf(stderr, "k1_matmul is not vectorised\n");
  int bad = check_func(&L, L.m->funcs, &sp, 7);
  lib_free(&L);
  assert_true(add_vec);
  assert_true(mm_vec);
  assert_int_equal(bad, 0);
}

/* ------------------------------------------------------------- rules table */

static void test_ops_every_op_lowered(void **state) {
  for (int op = 0; op < IR_OP_COUNT; op++) {
    if (!cg_has_lowering((IrOp)op)) fprintf(stderr, "no lowering: %s\n", ir_op_info[op].name);
    assert_true(cg_has_lowering((IrOp)op));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ops_every_op_lowered),
      cmocka_unit_test(test_ops_unary),
      cmocka_unit_test(test_ops_range),
      cmocka_unit_test(test_ops_binary),
      cmocka_unit_test(test_ops_int),
      cmocka_unit_test(test_ops_cast),
      cmocka_unit_test(test_ops_sources),
      cmocka_unit_test(test_ops_reduce),
      cmocka_unit_test(test_ops_shape),
      cmocka_unit_test(test_ops_linalg),
      cmocka_unit_test(test_ops_gemm),
      cmocka_unit_test(test_ops_vision),
      cmocka_unit_test(test_ops_loss),
      cmocka_unit_test(test_ops_scan),
      cmocka_unit_test(test_ops_fused_layernorm),
      cmocka_unit_test(test_ops_fused_mlp),
      cmocka_unit_test(test_ops_fused_softmax),
      cmocka_unit_test(test_ops_vector_registers),
  };
  return cmocka_run_group_tests(tests, harness_setup, NULL);
}
