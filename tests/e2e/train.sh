#!/bin/sh
# Training end-to-end tests (tests/e2e/train.cmake):
#   train.sh PART NNC NNC_INTERP_TRAIN SRCDIR
# PART is one of
#   tiny       examples/mlp_tiny.nn trains on its CSV to a loss below 0.15
#              in 200 steps, and its eval reports the accuracy
#   threads    the weights after training are bit-identical at 1 and 2
#              threads (mlp_tiny; fashion_mlp and fashion_cnn when the data
#              is installed)
#   resume     a run killed (SIGKILL) after a --save-every checkpoint and
#              resumed gives the same file, bit for bit, as a run that was
#              never interrupted
#   interp     the native train_step's losses, rates and weights (params,
#              optimizer states, averages) after 30-40 steps match
#              @train_step in the reference interpreter on the same batches
#              (f32 tolerance): mlp_tiny (SGD, polyak) and
#              tests/e2e/tiny_adamw.nn (AdamW, clipping, EMA, a schedule)
#   malformed  a truncated IDX file and labels out of range: a clear
#              error, status 1, and the checkpoint left as it was
set -u
part=$1 nnc=$2 ref=$3 src=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fail() { echo "FAIL: $*"; exit 1; }
fm=/usr/share/datasets/fashion-mnist

build() { # build NAME: examples/NAME.nn -> ./NAME
  "$nnc" build "$src/examples/$1.nn" -o "$1" || fail "nnc build $1"
}
# The `step` metadata of a checkpoint.
ck_step() { head -c 4096 "$1" | tr ',' '\n' | sed -n 's/.*"step":"\([0-9]*\)".*/\1/p'; }
# The loss of the last train row of a CSV log.
last_loss() { grep '^train,' "$1" | tail -1 | cut -d, -f4; }

case $part in
tiny)
  build mlp_tiny
  (cd "$src" && "$tmp/mlp_tiny" train --steps 200 --log "$tmp/log.csv" \
     --save "$tmp/w.st") > out.txt 2>&1 || { cat out.txt; fail "train"; }
  cat out.txt
  [ "$(grep -c '^train,' log.csv)" = 200 ] || fail "expected 200 train rows"
  first=$(grep '^train,' log.csv | head -1 | cut -d, -f4)
  last=$(last_loss log.csv)
  echo "first loss $first, last $last"
  awk -v a="$first" -v b="$last" 'BEGIN { exit !(a > 0.5 && b < 0.15) }' ||
    fail "loss did not fall from > 0.5 to < 0.15"
  [ "$(ck_step w.st)" = 200 ] || fail "checkpoint step is not 200"
  # eval with the saved (polyak-averaged) weights on the training CSV
  (cd "$src" && "$tmp/mlp_tiny" eval --weights "$tmp/w.st" \
     --data x=examples/data/tiny.csv --data label=examples/data/tiny.csv) \
     > ev.txt 2>&1 || { cat ev.txt; fail "eval"; }
  cat ev.txt
  acc=$(sed -n 's/.*accuracy \([0-9.]*\).*/\1/p' ev.txt)
  awk -v a="$acc" 'BEGIN { exit !(a >= 0.9) }' || fail "eval accuracy $acc < 0.9"
  ;;
threads)
  build mlp_tiny
  for t in 1 2; do
    (cd "$src" && "$tmp/mlp_tiny" --threads $t train --steps 150 \
       --save "$tmp/tiny$t.st") > /dev/null || fail "mlp_tiny --threads $t"
  done
  cmp tiny1.st tiny2.st || fail "mlp_tiny: 1 and 2 threads differ"
  [ -r $fm/train-images-idx3-ubyte.gz ] || { echo "no $fm: skipped"; exit 77; }
  build fashion_mlp
  for t in 1 2; do
    ./fashion_mlp --threads $t train --steps 4 --save mlp$t.st > /dev/null ||
      fail "fashion_mlp --threads $t"
  done
  cmp mlp1.st mlp2.st || fail "fashion_mlp: 1 and 2 threads differ"
  # the convolutions' SGEMM paths (im2col, col2im, the weight gradient's
  # per-chunk sums) and the pools
  build fashion_cnn
  for t in 1 2; do
    ./fashion_cnn --threads $t train --steps 3 --batch-limit 3 --save cnn$t.st > /dev/null ||
      fail "fashion_cnn --threads $t"
  done
  cmp cnn1.st cnn2.st || fail "fashion_cnn: 1 and 2 threads differ"
  echo "bit-identical at 1 and 2 threads"
  ;;
resume)
  build mlp_tiny
  cd "$src" || exit 1
  "$tmp/mlp_tiny" train --steps 100000000 --save-every 50 --save "$tmp/ck.st" \
    > /dev/null 2>&1 &
  pid=$!
  i=0
  while [ ! -s "$tmp/ck.st" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
  sleep 0.2
  kill -KILL $pid
  wait $pid 2>/dev/null
  s=$(ck_step "$tmp/ck.st")
  [ -n "$s" ] && [ "$s" -gt 0 ] || fail "no checkpoint step after the kill"
  n=$((s + 137))
  echo "killed at a checkpoint of step $s; both runs end at step $n"
  "$tmp/mlp_tiny" train --resume "$tmp/ck.st" --steps $n --save "$tmp/res.st" \
    > "$tmp/r.txt" || fail "resume"
  "$tmp/mlp_tiny" train --steps $n --save "$tmp/full.st" > "$tmp/f.txt" ||
    fail "uninterrupted run"
  cmp "$tmp/res.st" "$tmp/full.st" || fail "resumed run differs"
  # the last epoch's running means, without the samples/s
  r=$(grep '^epoch' "$tmp/r.txt" | tail -1 | cut -d'|' -f1)
  f=$(grep '^epoch' "$tmp/f.txt" | tail -1 | cut -d'|' -f1)
  echo "resumed: $r"
  [ -n "$r" ] && [ "$r" = "$f" ] || fail "the last epoch lines differ: $f"
  ;;
interp)
  # model file, seed, steps (the train block's steps for tiny_adamw: its lr
  # uses total_steps)
  for spec in "examples/mlp_tiny.nn 7 30" "tests/e2e/tiny_adamw.nn 3 40"; do
    set -- $spec
    name=$(basename "$1" .nn)
    "$nnc" build "$src/$1" -o "$name" || fail "nnc build $1"
    ./$name init --seed $2 --save w0.st > /dev/null || fail "init"
    (cd "$src" && "$tmp/$name" train --resume "$tmp/w0.st" --steps $3 \
       --seed $2 --log "$tmp/log.csv" --save "$tmp/native.st") > /dev/null ||
      fail "$name: native train"
    "$ref" run "$src/$1" "$src/examples/data/tiny.csv" w0.st $3 $2 ref.st \
      > ref.txt || fail "$name: interpreter"
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "lr") c = i }
      $1 == "train" { print $3, $4, $c }' log.csv > nat.txt
    awk '{ print $2, $4, $6 }' ref.txt > int.txt
    echo "$name:"
    paste nat.txt int.txt | awk -v n=$3 '
      function abs(v) { return v < 0 ? -v : v }
      { if ($1 != $4 || abs($2 - $5) > 1e-5 + 1e-4 * abs($5) ||
            abs($3 - $6) > 1e-5 * abs($6)) bad++ }
      NR <= 3 || NR == n || bad == 1 {
        print "step " $1 ": native loss " $2 " lr " $3 ", interpreter " $5 " " $6 }
      END { if (NR != n) { print "rows: " NR; exit 1 }; exit bad > 0 }' ||
      fail "$name: losses or rates differ"
    "$ref" cmp native.st ref.st 1e-4 1e-6 || fail "$name: weights differ"
    rm -f log.csv native.st ref.st w0.st
  done
  ;;
malformed)
  build mlp_tiny
  ./mlp_tiny init --save ck.st > /dev/null || fail "init"
  cp ck.st ck0.st
  # a label of 5 for a model with 3 classes
  sed '3s/,2$/,5/' "$src/examples/data/tiny.csv" > bad.csv
  cmp -s bad.csv "$src/examples/data/tiny.csv" && fail "bad.csv unchanged"
  ./mlp_tiny train --data x=bad.csv --data label=bad.csv --resume ck.st \
    --save ck.st > out.txt 2> err.txt
  st=$?
  cat err.txt
  [ $st = 1 ] || fail "status $st for labels out of range"
  grep -q "outside \[0, 3)" err.txt || fail "no range message"
  cmp ck.st ck0.st || fail "checkpoint changed"
  # a truncated IDX: its header counts more images than the file holds
  if [ -r $fm/t10k-images-idx3-ubyte.gz ]; then
    build fashion_mlp
    ./fashion_mlp init --save f.st > /dev/null || fail "init"
    cp f.st f0.st
    gzip -dc $fm/t10k-images-idx3-ubyte.gz | head -c 100000 > trunc.idx
    ./fashion_mlp train --data image=trunc.idx --resume f.st --save f.st \
      > out.txt 2> err.txt
    st=$?
    cat err.txt
    [ $st = 1 ] || fail "status $st for a truncated IDX"
    grep -q "trunc.idx" err.txt || fail "the message does not name the file"
    cmp f.st f0.st || fail "checkpoint changed"
  fi
  ;;
*) fail "unknown part '$part'" ;;
esac
echo "ok: $part"
