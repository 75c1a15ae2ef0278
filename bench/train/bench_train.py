#!/usr/bin/env python3
"""Training-step benchmark: nnc beside PyTorch (CPU), same models, optimisers and threads.

For the MLP (examples/fashion_mlp.nn: 784-1024-1024-10, ReLU, AdamW, batch
128) and the LeNet-style CNN (examples/fashion_cnn.nn: conv 5x5 32, pool,
conv 5x5 64, pool, 512, 10; SGD with Nesterov momentum and a step-decay
schedule, batch 64), it times one full training step -- forward, loss,
backward, optimiser update -- of nnc's code (the object file and header
that `nnc build --emit=obj` writes, linked into bench/train/harness.c,
which calls the descriptor's train_step) and of the same network and
optimiser in PyTorch, with the same thread count, in the same run; and
the seconds per epoch of 60000 samples (floor(60000 / batch) steps, the
last partial batch dropped as nnc's `train` does, times the median step).

With --epoch MODEL:THREADS it also measures one real epoch on
Fashion-MNIST (/usr/share/datasets/fashion-mnist/, read with gzip and
numpy): PyTorch's loop over shuffled batches, and the nnc executable's
`train --epochs 1` (the training loop's own elapsed time from its --log
CSV: after the data is loaded, before the end-of-epoch evaluation).

Before timing, --check (on by default) makes sure both sides do the same
work: the nnc executable's `init` weights are loaded into the PyTorch
model, both train K steps on the same batch of Fashion-MNIST (the
executable with that batch as its whole data set, so every step sees it,
shuffled, and the mean loss and its gradient do not depend on the order),
and the K losses must agree within a relative 1e-2.

    /usr/bin/python3 bench/train/bench_train.py --nnc build-bench/nnc \
        [--threads 1,2] [--iters 20] [--epoch fashion_mlp:1] [--torch-only]

Ratio = PyTorch time / nnc time: above 1, nnc is faster.
"""
import argparse
import csv
import gzip
import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench", "forward"))
from bench_forward import set_threads, torch_models  # noqa: E402  (the same nn.Modules)

DATA = "/usr/share/datasets/fashion-mnist"
TRAIN_SAMPLES = 60000
BATCH = {"fashion_mlp": 128, "fashion_cnn": 64}


def warmup_cosine(step, warmup, total):
    """docs/language.md's warmup_cosine."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(max((step - warmup) / (total - warmup), 0), 1)))


def make_optimizer(torch, name, model, total_steps):
    """The train block's optimiser and schedule (stepped once per step).
    nnc decays only params of rank >= 2 (passes/optimizer.c: biases opt
    out), hence two groups."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    if name == "fashion_mlp":
        # adamw(lr: 1e-3, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.01)
        # lr 1e-3 * warmup_cosine(step, warmup: 100, total: total_steps)
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                 {"params": rest, "weight_decay": 0.0}],
                                lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
        return opt, torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: warmup_cosine(s, 100, total_steps))
    # sgd(lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 5e-4)
    # lr 0.05 * step_decay(step, every: 1000, gamma: 0.5)
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4},
                           {"params": rest, "weight_decay": 0.0}],
                          lr=0.05, momentum=0.9, nesterov=True)
    return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1000, gamma=0.5)


def torch_setup(torch, name, cls, threads, total_steps):
    set_threads(torch, threads)
    torch.manual_seed(1)
    model = cls().train()
    opt, sched = make_optimizer(torch, name, model, total_steps)
    F = torch.nn.functional

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        return loss

    step.model = model
    return step


def time_torch(torch, name, cls, threads, iters, max_s):
    B = BATCH[name]
    step = torch_setup(torch, name, cls, threads, TRAIN_SAMPLES // B)
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randint(0, 256, (B, 28, 28), dtype=torch.uint8, generator=g),
                torch.randint(0, 10, (B,), dtype=torch.int64, generator=g))
               for _ in range(4)]
    for i in range(3):
        step(*batches[i % 4])
    t, start = [], time.perf_counter()
    for i in range(iters):
        t0 = time.perf_counter()
        step(*batches[i % 4])
        t.append((time.perf_counter() - t0) * 1e3)
        if len(t) >= 5 and time.perf_counter() - start > max_s:
            break
    t.sort()
    return t[len(t) // 2]


def load_fashion():
    with gzip.open(os.path.join(DATA, "train-images-idx3-ubyte.gz"), "rb") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(os.path.join(DATA, "train-labels-idx1-ubyte.gz"), "rb") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return images, labels


def epoch_torch(torch, name, cls, threads):
    """Seconds of one real epoch (shuffled full batches; data in memory)."""
    images, labels = load_fashion()
    images, labels = torch.from_numpy(images.copy()), torch.from_numpy(labels)
    B = BATCH[name]
    step = torch_setup(torch, name, cls, threads, len(images) // B)
    spe = len(images) // B
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(1))
    t0 = time.perf_counter()
    for p in range(spe):
        idx = perm[p * B:(p + 1) * B]
        loss = step(images[idx], labels[idx])
    return time.perf_counter() - t0, float(loss)


def read_safetensors(path):
    with open(path, "rb") as f:
        b = f.read()
    n = int.from_bytes(b[:8], "little")
    head = json.loads(b[8:8 + n])
    types = {"F32": np.float32, "I64": np.int64, "I32": np.int32}
    out = {}
    for k, v in head.items():
        if k != "__metadata__":
            a, z = v["data_offsets"]
            out[k] = np.frombuffer(b[8 + n + a:8 + n + z], types[v["dtype"]]).reshape(v["shape"])
    return out


# nnc parameter -> (torch parameter, transposed): nnc's dense weights are
# [in, out], torch's [out, in]; convolutions are [O, I, kh, kw] in both.
PARAM_MAP = {
    "fashion_mlp": {"linear.%d.%s" % (i, k): ("l%d.%s" % (i + 1, t), k == "w")
                    for i in range(3) for k, t in (("w", "weight"), ("b", "bias"))},
    "fashion_cnn": {"conv.0.w": ("c1.weight", False), "conv.0.b": ("c1.bias", False),
                    "conv.1.w": ("c2.weight", False), "conv.1.b": ("c2.bias", False),
                    "fc.w": ("fc.weight", True), "fc.b": ("fc.bias", False),
                    "head.w": ("head.weight", True), "head.b": ("head.bias", False)},
}


def check_same(args, torch, name, cls, tmp, steps=5):
    """Max relative difference of K losses: nnc's `train` against PyTorch
    from the same weights on the same batch (1 thread each)."""
    exe = build_exe(args, name, tmp)
    B = BATCH[name]
    images, labels = load_fashion()
    img, lab = images[:B].copy(), labels[:B].astype(np.int32)
    # IDX files: --data keeps the train block's source kind (idx)
    files = {k: os.path.join(tmp, "%s_%s.idx" % (name, k)) for k in ("image", "label")}
    with open(files["image"], "wb") as f:
        f.write(struct.pack(">IIII", 0x803, B, 28, 28) + img.tobytes())
    with open(files["label"], "wb") as f:
        f.write(struct.pack(">II", 0x801, B) + lab.astype(np.uint8).tobytes())
    w = os.path.join(tmp, name + "_init.safetensors")
    log = os.path.join(tmp, name + "_check.csv")
    subprocess.run([exe, "init", "--save", w], check=True, capture_output=True)
    data = sum([["--data", "%s=%s" % kv, "--eval-data", "%s=%s" % kv]
                for kv in files.items()], [])
    subprocess.run([exe, "--threads", "1", "train", "--resume", w, "--steps", str(steps),
                    "--log", log] + data, check=True, capture_output=True)
    nnc = [float(r["loss"]) for r in csv.DictReader(open(log)) if r["phase"] == "train"]
    step = torch_setup(torch, name, cls, 1, steps)
    model = step.model
    params = dict(model.named_parameters())
    with torch.no_grad():
        for k, a in read_safetensors(w).items():
            if k in PARAM_MAP[name]:
                tk, tr = PARAM_MAP[name][k]
                params[tk].copy_(torch.from_numpy(a.T.copy() if tr else a.copy()))
    x, y = torch.from_numpy(img), torch.from_numpy(lab.astype(np.int64))
    ref = [float(step(x, y)) for _ in range(steps)]
    return max(abs(a - b) / max(abs(b), 1e-6) for a, b in zip(nnc, ref)), nnc, ref


def runtime_dir(args):
    return args.runtime or os.path.join(os.path.dirname(os.path.abspath(args.nnc)), "runtime")


def build_nnc(args, name, tmp):
    src = os.path.join(ROOT, "examples", name + ".nn")
    obj = os.path.join(tmp, name + ".o")
    subprocess.run([args.nnc, "build", src, "--emit=obj", "-o", obj], check=True)
    exe = os.path.join(tmp, name + "_train_harness")
    cc = os.environ.get("CC", "cc")
    cmd = [cc, "-O2", "-DMODEL=" + name, '-DMODEL_H="%s.h"' % name, "-I", tmp,
           "-I", os.path.join(ROOT, "runtime"),
           os.path.join(ROOT, "bench", "train", "harness.c"), obj,
           os.path.join(runtime_dir(args), "libnnrt.a"), "-fopenmp", "-lz", "-lm",
           "-o", exe]
    subprocess.run(cmd, check=True)
    return exe


def time_nnc(exe, threads, iters, max_s):
    """Median ms of train_step, or None when the model has no train_step."""
    r = subprocess.run([exe, str(threads), str(iters), str(max_s)],
                       capture_output=True, text=True)
    if r.returncode == 3:
        sys.stderr.write(r.stderr)
        return None
    if r.returncode:
        sys.stderr.write(r.stderr)
        raise SystemExit("%s failed (status %d)" % (exe, r.returncode))
    return float(re.search(r"median_ms=([0-9.]+)", r.stdout).group(1))


def build_exe(args, name, tmp):
    exe = os.path.join(tmp, name)
    if not os.path.exists(exe):
        env = dict(os.environ, NNC_RUNTIME_DIR=runtime_dir(args))
        subprocess.run([args.nnc, "build", os.path.join(ROOT, "examples", name + ".nn"),
                        "-o", exe], check=True, env=env)
    return exe


def epoch_nnc(args, name, threads, tmp):
    """Seconds of one real epoch of the executable's `train`, from its log."""
    exe = build_exe(args, name, tmp)
    log = os.path.join(tmp, name + ".csv")
    r = subprocess.run([exe, "--threads", str(threads), "train", "--epochs", "1",
                        "--log", log], capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write(r.stdout + r.stderr)
        return None, None
    rows = [row for row in csv.DictReader(open(log)) if row["phase"] == "train"]
    return float(rows[-1]["elapsed_s"]), float(rows[-1]["loss"])


def fmt(x, spec):
    return spec % x if x is not None else "%*s" % (len(spec % 0.0), "n/a")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nnc", default=os.path.join(ROOT, "build-bench", "nnc"))
    ap.add_argument("--runtime", default=None,
                    help="folder of libnnrt.a (default: runtime/ next to --nnc)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--max-seconds", type=float, default=30.0,
                    help="stop timing a configuration after this long (at least 5 steps)")
    ap.add_argument("--only", default=None, help="fashion_mlp, fashion_cnn")
    ap.add_argument("--epoch", default="fashion_mlp:1",
                    help="MODEL:THREADS of the measured real epoch ('' for none)")
    ap.add_argument("--torch-only", action="store_true", help="skip nnc")
    ap.add_argument("--no-check", dest="check", action="store_false",
                    help="skip the check that both sides compute the same losses")
    args = ap.parse_args()
    import torch
    threads = [int(t) for t in args.threads.split(",")]
    print("torch %s, %d CPUs, up to %d timed steps after 3 warm-up steps (median), "
          "load average %.2f, %s" % (torch.__version__, os.cpu_count(), args.iters,
                                     os.getloadavg()[0], set_threads(torch, threads[0])))
    models = {n: c for n, c, _ in torch_models(torch) if n in BATCH}
    with tempfile.TemporaryDirectory() as tmp:
        if args.check and not args.torch_only:
            for name, cls in models.items():
                if args.only and name not in args.only.split(","):
                    continue
                d, nnc, ref = check_same(args, torch, name, cls, tmp)
                print("check %s: 5 steps from the same weights on one batch, losses "
                      "nnc %s torch %s, max rel. difference %.1e" % (
                          name, " ".join("%.4f" % v for v in nnc),
                          " ".join("%.4f" % v for v in ref), d))
                if not d <= 1e-2:
                    raise SystemExit("check failed: nnc and PyTorch do not compute the same step")
        print("%-12s %7s %12s %12s %7s %12s %12s" % (
            "model", "threads", "nnc ms/step", "torch ms/step", "ratio",
            "nnc s/epoch", "torch s/epoch"))
        for name, cls in models.items():
            if args.only and name not in args.only.split(","):
                continue
            exe = None if args.torch_only else build_nnc(args, name, tmp)
            spe = TRAIN_SAMPLES // BATCH[name]
            for t in threads:
                nms = time_nnc(exe, t, args.iters, args.max_seconds) if exe else None
                tms = time_torch(torch, name, cls, t, args.iters, args.max_seconds)
                print("%-12s %7d %12s %12.3f %7s %12s %12.2f" % (
                    name, t, fmt(nms, "%.3f"), tms,
                    fmt(tms / nms if nms else None, "%.2f"),
                    fmt(nms * spe / 1e3 if nms else None, "%.2f"), tms * spe / 1e3))
                sys.stdout.flush()
        if args.epoch:
            name, t = args.epoch.split(":")
            t = int(t)
            print("\nmeasured epoch, %s, %d thread(s), %d steps of %d (Fashion-MNIST train set):"
                  % (name, t, TRAIN_SAMPLES // BATCH[name], BATCH[name]))
            if not args.torch_only:
                s, loss = epoch_nnc(args, name, t, tmp)
                print("  nnc    %s s (last loss %s; `train --epochs 1`, loop time from --log)"
                      % (fmt(s, "%.2f"), fmt(loss, "%.4f")))
            s, loss = epoch_torch(torch, name, models[name], t)
            print("  torch  %.2f s (last loss %.4f)" % (s, loss))


if __name__ == "__main__":
    main()
