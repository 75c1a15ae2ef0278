#!/usr/bin/python3
"""Writes examples/data/shapes.npz, the data of examples/unet.nn.

A semantic segmentation task: N = 1024 grey 32x32 images, each with one to
four non-overlapping shapes on a uniform background, and the class of every
pixel (0 background, 1 disc, 2 square, 3 triangle).

  x  f32[N, 1, 32, 32]  images in [0, 1], multiples of 1/255
  y  i32[N, 32, 32]     the class of every pixel

Discs have a radius in [3, 7); squares are axis-aligned with a side in
[6, 13]; triangles are equilateral, with a circumradius in [4, 9) and any
rotation.  A pixel belongs to a shape when its centre does.  Each image has
its own background level in [0, 0.3) and each shape its own level in
[0.55, 1), so the brightness does not tell the classes apart: only the
geometry does.  Gaussian noise (sigma 0.04) is added, then the values are
clipped to [0, 1] and rounded to 8 bits.

Deterministic: a fixed seed, and the archive is written with fixed member
timestamps, so every run gives a byte-identical file.  Run from the
repository root with Debian's python3 (numpy):

    /usr/bin/python3 examples/data/gen_shapes.py [OUT]
"""
import io
import os
import sys
import zipfile

import numpy as np

N = 1024    # samples (a multiple of the batch, 16)
S = 32      # image side
SEED = 0


def disc(rng, yy, xx):
    r = rng.uniform(3.0, 7.0)
    cy, cx = rng.uniform(r, S - r, size=2)
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def square(rng, yy, xx):
    side = int(rng.integers(6, 14))
    y0, x0 = rng.integers(0, S - side + 1, size=2)
    return (yy >= y0) & (yy < y0 + side) & (xx >= x0) & (xx < x0 + side)


def triangle(rng, yy, xx):
    r = rng.uniform(4.0, 9.0)
    cy, cx = rng.uniform(r, S - r, size=2)
    a = rng.uniform(0.0, 2.0 * np.pi) + np.array([0.0, 2.0, 4.0]) * np.pi / 3
    vy, vx = cy + r * np.sin(a), cx + r * np.cos(a)
    inside = np.ones_like(yy, dtype=bool)
    for i in range(3):
        j = (i + 1) % 3
        # the vertices go counter-clockwise in (x, y): inside is on the left
        cross = (vx[j] - vx[i]) * (yy - vy[i]) - (vy[j] - vy[i]) * (xx - vx[i])
        inside &= cross >= 0
    return inside


SHAPES = (disc, square, triangle)   # class k + 1 is SHAPES[k]


def generate(rng):
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float64) + 0.5
    x = np.empty((N, 1, S, S), dtype=np.float32)
    y = np.zeros((N, S, S), dtype=np.int32)
    for n in range(N):
        img = np.full((S, S), rng.uniform(0.0, 0.3))
        lab = y[n]
        for _ in range(int(rng.integers(1, 5))):
            k = int(rng.integers(0, len(SHAPES)))
            for _try in range(20):
                m = SHAPES[k](rng, yy, xx)
                # at least 6 pixels, apart from the other shapes (and not
                # touching them, so that every shape keeps its outline)
                grown = m.copy()
                grown[1:, :] |= m[:-1, :]
                grown[:-1, :] |= m[1:, :]
                grown[:, 1:] |= m[:, :-1]
                grown[:, :-1] |= m[:, 1:]
                if m.sum() >= 6 and not (lab[grown] != 0).any():
                    lab[m] = k + 1
                    img[m] = rng.uniform(0.55, 1.0)
                    break
        img += rng.normal(0.0, 0.04, size=img.shape)
        x[n, 0] = np.round(np.clip(img, 0.0, 1.0) * 255.0) / 255.0
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
    out = sys.argv[1] if len(sys.argv) > 1 else "examples/data/shapes.npz"
    x, y = generate(np.random.default_rng(SEED))
    save_npz(out, {"x": x, "y": y})
    frac = np.bincount(y.ravel(), minlength=4) / y.size
    print("%s: x %s %s, y %s %s, pixel classes %s"
          % (out, x.dtype, list(x.shape), y.dtype, list(y.shape),
             " ".join("%.3f" % f for f in frac)))


if __name__ == "__main__":
    main()
