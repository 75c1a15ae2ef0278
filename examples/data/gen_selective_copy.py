#!/usr/bin/python3
"""Writes examples/data/selective_copy.npz, the data of
examples/mamba_copy.nn: the selective copying task of Gu & Dao, "Mamba:
Linear-Time Sequence Modeling with Selective State Spaces" (2023),
section 4.1.1, at length L = 256 with K = 16 tokens to copy.

Vocabulary (V = 16): 0 noise, 1..14 data, 15 marker.  Each sequence holds
K data tokens, drawn uniformly from 1..14 (repeats allowed), at K distinct
random positions among the first L - K; every other of those positions is
noise, and the last K positions are markers.  The target is the K data
tokens in the order they appear.

  x  i32[N, 256]  the input sequences
  y  i32[N, 16]   the data tokens in order

N = 16384 (a multiple of the batch, 32).  Deterministic: a fixed seed, and
the archive is written with fixed member timestamps, so every run gives a
byte-identical file.  Run from the repository root with Debian's python3
(numpy):

    /usr/bin/python3 examples/data/gen_selective_copy.py [OUT]
"""
import io
import os
import sys
import zipfile

import numpy as np

N = 16384   # samples
L = 256     # sequence length
K = 16      # data tokens to copy
V = 16      # vocabulary
NOISE, MARKER = 0, V - 1
SEED = 0


def generate(rng):
    x = np.full((N, L), NOISE, dtype=np.int32)
    x[:, L - K:] = MARKER
    y = rng.integers(1, MARKER, size=(N, K), dtype=np.int32)   # 1..14
    for n in range(N):
        pos = np.sort(rng.choice(L - K, size=K, replace=False))
        x[n, pos] = y[n]
    return x, y


def save_npz(path, arrays):
    """np.savez with fixed timestamps (deflated members), so the bytes
    depend on the arrays only."""
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w") as z:
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(a),
                                      allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, buf.getvalue(), compresslevel=9)
    os.replace(tmp, path)


def main():
    out = (sys.argv[1] if len(sys.argv) > 1
           else "examples/data/selective_copy.npz")
    x, y = generate(np.random.default_rng(SEED))
    # the definition, checked: the data tokens of x, in order, are y
    data = x[:, :L - K]
    assert ((data != NOISE).sum(axis=1) == K).all()
    assert (data[data != NOISE].reshape(N, K) == y).all()
    assert (x[:, L - K:] == MARKER).all()
    save_npz(out, {"x": x, "y": y})
    print("%s: x %s %s, y %s %s"
          % (out, x.dtype, list(x.shape), y.dtype, list(y.shape)))


if __name__ == "__main__":
    main()
