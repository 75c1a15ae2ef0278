#!/usr/bin/env python3
"""Forward-pass benchmark: nnc beside PyTorch (CPU), same shapes and threads.

For the MLP, the LeNet-style CNN and the character GPT of examples/, at
their training batch sizes, it compiles the example with nnc to an object
file and header, links bench/forward/harness.c against it, times the
forward pass, times the same network written in PyTorch with the same
thread count in the same run, and prints the ratio.

    python3 bench/forward/bench_forward.py --nnc build-rel/nnc \
        --runtime build-rel/runtime [--threads 1,2] [--iters 30]

Ratio = PyTorch time / nnc time: above 1, nnc is faster.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def set_threads(torch, n):
    """torch's threads and its BLAS's: Debian's torch calls OpenBLAS through
    libblas.so.3, and the pthreads OpenBLAS keeps its own pool (all CPUs by
    default) whatever torch.set_num_threads says, so a "1-thread" torch
    Linear ran on 2 CPUs.  Returns a note on the BLAS threads."""
    import ctypes
    torch.set_num_threads(n)
    try:
        blas = ctypes.CDLL("libblas.so.3")
        blas.openblas_set_num_threads(n)
        return "OpenBLAS threads %d" % blas.openblas_get_num_threads()
    except (OSError, AttributeError):
        return "BLAS threads not set (not OpenBLAS)"


def torch_models(torch):
    nn = torch.nn
    F = torch.nn.functional

    class Mlp(nn.Module):  # examples/fashion_mlp.nn
        def __init__(self, hidden=1024):
            super().__init__()
            self.l1 = nn.Linear(784, hidden)
            self.l2 = nn.Linear(hidden, hidden)
            self.l3 = nn.Linear(hidden, 10)

        def forward(self, image):
            x = (image.float() / 255).reshape(image.shape[0], 784)
            return self.l3(F.relu(self.l2(F.relu(self.l1(x)))))

    class Cnn(nn.Module):  # examples/fashion_cnn.nn
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 32, 5, padding=2)
            self.c2 = nn.Conv2d(32, 64, 5, padding=2)
            self.fc = nn.Linear(64 * 7 * 7, 512)
            self.head = nn.Linear(512, 10)

        def forward(self, image):
            x = (image.float() / 255).reshape(image.shape[0], 1, 28, 28)
            x = F.max_pool2d(F.relu(self.c1(x)), 2)
            x = F.max_pool2d(F.relu(self.c2(x)), 2)
            x = x.reshape(x.shape[0], 64 * 7 * 7)
            return self.head(F.relu(self.fc(x)))

    class Block(nn.Module):  # examples/char_gpt.nn: block, attention written out
        def __init__(self, D, heads):
            super().__init__()
            self.heads = heads
            self.ln1 = nn.LayerNorm(D)
            self.qkv = nn.Linear(D, 3 * D)
            self.proj = nn.Linear(D, D)
            self.ln2 = nn.LayerNorm(D)
            self.fc1 = nn.Linear(D, 4 * D)
            self.fc2 = nn.Linear(4 * D, D)

        def forward(self, x, mask):
            B, T, D = x.shape
            d = D // self.heads
            q, k, v = self.qkv(self.ln1(x)).split(D, dim=-1)
            qh = q.reshape(B, T, self.heads, d).permute(0, 2, 1, 3)
            kh = k.reshape(B, T, self.heads, d).permute(0, 2, 1, 3)
            vh = v.reshape(B, T, self.heads, d).permute(0, 2, 1, 3)
            y = torch.softmax(qh @ kh.transpose(-1, -2) / d ** 0.5 + mask, dim=-1) @ vh
            h = x + self.proj(y.permute(0, 2, 1, 3).reshape(B, T, D))
            return h + self.fc2(F.gelu(self.fc1(self.ln2(h))))

    class Gpt(nn.Module):
        def __init__(self, V=256, T=64, D=128, heads=4, layers=4):
            super().__init__()
            self.tok = nn.Embedding(V, D)
            self.pos = nn.Parameter(torch.randn(T, D) * 0.02)
            self.blocks = nn.ModuleList([Block(D, heads) for _ in range(layers)])
            self.ln_f = nn.LayerNorm(D)
            self.head = nn.Linear(D, V, bias=False)
            self.register_buffer(
                "mask", torch.triu(torch.full((T, T), float("-inf")), diagonal=1))

        def forward(self, x):
            h = self.tok(x) + self.pos
            for b in self.blocks:
                h = b(h, self.mask)
            return self.head(self.ln_f(h))

    return [
        ("fashion_mlp", Mlp, lambda: torch.randint(0, 256, (128, 28, 28), dtype=torch.uint8)),
        ("fashion_cnn", Cnn, lambda: torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8)),
        ("char_gpt", Gpt, lambda: torch.randint(0, 2, (32, 64), dtype=torch.int32)),
    ]


def time_torch(torch, cls, make_input, threads, iters):
    set_threads(torch, threads)
    torch.manual_seed(1)
    model = cls().eval()
    x = make_input()
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        t = []
        for _ in range(iters):
            t0 = time.perf_counter()
            model(x)
            t.append((time.perf_counter() - t0) * 1e3)
    t.sort()
    return t[len(t) // 2]


def build_nnc(args, name, tmp):
    src = os.path.join(ROOT, "examples", name + ".nn")
    obj = os.path.join(tmp, name + ".o")
    subprocess.run([args.nnc, "build", src, "--emit=obj", "-o", obj], check=True)
    exe = os.path.join(tmp, name + "_harness")
    cc = os.environ.get("CC", "cc")
    cmd = [cc, "-O2", "-DMODEL=" + name, '-DMODEL_H="%s.h"' % name, "-I", tmp,
           "-I", os.path.join(ROOT, "runtime"),
           os.path.join(ROOT, "bench", "forward", "harness.c"), obj,
           os.path.join(args.runtime, "libnnrt.a"), "-fopenmp", "-lz", "-lm",
           "-o", exe]
    subprocess.run(cmd, check=True)
    return exe


def time_nnc(exe, threads, iters):
    out = subprocess.run([exe, str(threads), str(iters)], check=True,
                         capture_output=True, text=True).stdout
    m = re.search(r"median_ms=([0-9.]+)", out)
    g = re.search(r"gflops=([0-9.]+)", out)
    return float(m.group(1)), float(g.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nnc", default=os.path.join(ROOT, "build", "nnc"))
    ap.add_argument("--runtime", default=None,
                    help="folder of libnnrt.a (default: runtime/ next to --nnc)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--only", default=None, help="comma-separated example names")
    args = ap.parse_args()
    if args.runtime is None:
        args.runtime = os.path.join(os.path.dirname(os.path.abspath(args.nnc)), "runtime")
    import torch
    threads = [int(t) for t in args.threads.split(",")]
    print("torch %s, %d CPUs, iters %d (median of each), %s" % (
        torch.__version__, os.cpu_count(), args.iters, set_threads(torch, threads[0])))
    print("%-12s %5s %7s %12s %12s %10s %8s" % (
        "model", "batch", "threads", "nnc ms", "torch ms", "nnc GF/s", "ratio"))
    with tempfile.TemporaryDirectory() as tmp:
        for name, cls, make_input in torch_models(torch):
            if args.only and name not in args.only.split(","):
                continue
            exe = build_nnc(args, name, tmp)
            batch = make_input().shape[0]
            for t in threads:
                nms, gf = time_nnc(exe, t, args.iters)
                tms = time_torch(torch, cls, make_input, t, args.iters)
                print("%-12s %5d %7d %12.3f %12.3f %10.2f %8.2f" % (
                    name, batch, t, nms, tms, gf, tms / nms))
                sys.stdout.flush()


if __name__ == "__main__":
    main()
