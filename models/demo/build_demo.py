#!/usr/bin/env python3
"""Builds the demo model: a small CNN that tells five shapes apart in 32x32
colour images (circle, square, triangle, cross, star), trained here with
numpy, then written as models/demo/shapes.onnx with one sample image per
class (samples/LABEL/input_0.pb and a PNG to look at) and labels.txt.

    python3 models/demo/build_demo.py [--out-dir models/demo] [--steps N]

The run is seeded and single-threaded, so it gives the same file again on
the same machine (a different BLAS or CPU may round differently). The
network, as torch.onnx.export would write it:

    image [1,3,32,32] -> Conv 3x3 (3->8) -> Relu -> MaxPool 2
      -> Conv 3x3 (8->16) -> Relu -> MaxPool 2 -> Conv 3x3 (16->32) -> Relu
      -> GlobalAveragePool -> Flatten -> Gemm (32->5) -> logits [1,5]

Training (Adam, 1500 steps of 32 images from 4000 drawn ones) takes about
half a minute and reaches about 98% on 1000 held-out images.

Inputs are RGB in [0, 1]; shapes have random size, position, rotation and
colours on a random background, with noise.
"""

import argparse
import os
import sys
import time
import zlib
import struct

# One BLAS thread: the same sums in the same order on every run.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

LABELS = ["circle", "square", "triangle", "cross", "star"]
SIZE = 32
SUPER = 4  # supersampling per axis for anti-aliased edges
CHANNELS = [3, 8, 16, 32]


# -- the data ----------------------------------------------------------------

def _polygon_mask(px, py, verts):
    """Even-odd rule: which points (px, py) lie inside the polygon."""
    inside = np.zeros(px.shape, bool)
    n = len(verts)
    for i in range(n):
        x0, y0 = verts[i]
        x1, y1 = verts[(i + 1) % n]
        crosses = (y0 > py) != (y1 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            xi = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (px < xi)
    return inside


def _regular(n, r, angle, inner=None):
    """Vertices of a regular n-gon (or an n-pointed star with inner radius)."""
    pts = []
    steps = 2 * n if inner else n
    for i in range(steps):
        a = angle + 2 * np.pi * i / steps
        rad = r if (inner is None or i % 2 == 0) else inner
        pts.append((rad * np.cos(a), rad * np.sin(a)))
    return pts


def _shape_mask(label, px, py, r, angle):
    """px, py: coordinates relative to the shape's centre."""
    if label == "circle":
        return px * px + py * py <= r * r
    if label == "square":
        return _polygon_mask(px, py, _regular(4, r * 1.15, angle + np.pi / 4))
    if label == "triangle":
        return _polygon_mask(px, py, _regular(3, r * 1.2, angle - np.pi / 2))
    if label == "star":
        return _polygon_mask(px, py, _regular(5, r * 1.25, angle - np.pi / 2, inner=r * 0.5))
    if label == "cross":
        c, s = np.cos(angle), np.sin(angle)
        u, v = c * px + s * py, -s * px + c * py
        w = r * 0.33
        return ((np.abs(u) <= r) & (np.abs(v) <= w)) | ((np.abs(v) <= r) & (np.abs(u) <= w))
    raise ValueError(label)


def _colours(rng):
    """A background and a foreground colour that differ clearly in brightness."""
    while True:
        bg, fg = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        if abs(bg.mean() - fg.mean()) > 0.25:
            return bg, fg


def draw(rng, label):
    """One [3, 32, 32] float32 image of `label`."""
    r = rng.uniform(6.0, 12.0)
    cx, cy = rng.uniform(r + 1, SIZE - r - 1, 2)
    angle = rng.uniform(-0.35, 0.35)
    coords = (np.arange(SIZE * SUPER) + 0.5) / SUPER
    py, px = np.meshgrid(coords - cy, coords - cx, indexing="ij")
    mask = _shape_mask(label, px, py, r, angle).astype(np.float32)
    cover = mask.reshape(SIZE, SUPER, SIZE, SUPER).mean(axis=(1, 3))
    bg, fg = _colours(rng)
    img = bg[:, None, None] * (1 - cover) + fg[:, None, None] * cover
    img += rng.normal(0, 0.03, img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def dataset(rng, n):
    y = rng.integers(0, len(LABELS), n)
    x = np.stack([draw(rng, LABELS[k]) for k in y])
    return x, y


# -- the network, forward and backward in numpy --------------------------------

def _im2col(x):
    """[N, C, H, W] -> [N*H*W, C*9] for a 3x3 convolution with padding 1."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))  # N C H W 3 3
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, c * 9)


def _col2im(dcols, shape):
    n, c, h, w = shape
    d = dcols.reshape(n, h, w, c, 3, 3).transpose(0, 3, 1, 2, 4, 5)
    dxp = np.zeros((n, c, h + 2, w + 2), np.float32)
    for i in range(3):
        for j in range(3):
            dxp[:, :, i:i + h, j:j + w] += d[:, :, :, :, i, j]
    return dxp[:, :, 1:-1, 1:-1]


def init_params(rng):
    p = {}
    for i in range(3):
        cin, cout = CHANNELS[i], CHANNELS[i + 1]
        p["conv%d.weight" % (i + 1)] = (rng.standard_normal((cout, cin, 3, 3)) *
                                        np.sqrt(2.0 / (cin * 9))).astype(np.float32)
        p["conv%d.bias" % (i + 1)] = np.zeros(cout, np.float32)
    p["fc.weight"] = (rng.standard_normal((len(LABELS), CHANNELS[3])) *
                      np.sqrt(1.0 / CHANNELS[3])).astype(np.float32)
    p["fc.bias"] = np.zeros(len(LABELS), np.float32)
    return p


def forward(p, x):
    """Logits and the cache the backward pass needs."""
    cache = []
    for i in range(3):
        w, b = p["conv%d.weight" % (i + 1)], p["conv%d.bias" % (i + 1)]
        n, c, h, wd = x.shape
        cols = _im2col(x)
        y = (cols @ w.reshape(w.shape[0], -1).T + b).reshape(n, h, wd, -1).transpose(0, 3, 1, 2)
        a = np.maximum(y, 0)
        if i < 2:
            blocks = a.reshape(n, a.shape[1], h // 2, 2, wd // 2, 2)
            out = blocks.max(axis=(3, 5))
            cache.append((x.shape, cols, a, blocks, out))
            x = out
        else:
            cache.append((x.shape, cols, a, None, None))
            x = a
    feat = x.mean(axis=(2, 3))
    logits = feat @ p["fc.weight"].T + p["fc.bias"]
    return logits, (cache, x.shape, feat)


def backward(p, logits, y, state):
    cache, last_shape, feat = state
    n = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    loss = -np.log(prob[np.arange(n), y] + 1e-12).mean()
    d = prob
    d[np.arange(n), y] -= 1
    d /= n
    g = {"fc.weight": d.T @ feat, "fc.bias": d.sum(axis=0)}
    dx = (d @ p["fc.weight"])[:, :, None, None] * np.ones(last_shape, np.float32) / (
        last_shape[2] * last_shape[3])
    for i in reversed(range(3)):
        in_shape, cols, a, blocks, out = cache[i]
        if blocks is not None:
            hit = blocks == out[:, :, :, None, :, None]
            da = (hit * dx[:, :, :, None, :, None]).reshape(a.shape)
        else:
            da = dx
        dy = da * (a > 0)
        cout = dy.shape[1]
        dy2 = dy.transpose(0, 2, 3, 1).reshape(-1, cout)
        w = p["conv%d.weight" % (i + 1)]
        g["conv%d.weight" % (i + 1)] = (dy2.T @ cols).reshape(w.shape)
        g["conv%d.bias" % (i + 1)] = dy2.sum(axis=0)
        if i > 0:
            dx = _col2im(dy2 @ w.reshape(cout, -1), in_shape)
    return loss, g


def train(rng, steps, batch, log):
    p = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    x_all, y_all = dataset(rng, 4000)
    lr, b1, b2 = 3e-3, 0.9, 0.999
    for step in range(1, steps + 1):
        idx = rng.integers(0, len(y_all), batch)
        logits, state = forward(p, x_all[idx])
        loss, g = backward(p, logits, y_all[idx], state)
        rate = lr * (0.1 if step > 0.8 * steps else 1.0)
        for k in p:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v[k] = b2 * v[k] + (1 - b2) * g[k] * g[k]
            mh, vh = m[k] / (1 - b1 ** step), v[k] / (1 - b2 ** step)
            p[k] = (p[k] - rate * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)
        if step % 200 == 0 or step == steps:
            log("step %d loss %.3f" % (step, loss))
    return p


def accuracy(p, x, y):
    logits, _ = forward(p, x)
    return float((logits.argmax(axis=1) == y).mean())


# -- the ONNX file -------------------------------------------------------------

def to_onnx(p):
    nodes, inits = [], []
    for k, arr in p.items():
        inits.append(numpy_helper.from_array(arr, k))
    x = "image"
    for i in range(3):
        conv = "/conv%d/Conv" % (i + 1)
        nodes.append(helper.make_node(
            "Conv", [x, "conv%d.weight" % (i + 1), "conv%d.bias" % (i + 1)], [conv + "_output_0"],
            name=conv, dilations=[1, 1], group=1, kernel_shape=[3, 3], pads=[1, 1, 1, 1],
            strides=[1, 1]))
        relu = "/relu%d/Relu" % (i + 1)
        nodes.append(helper.make_node("Relu", [conv + "_output_0"], [relu + "_output_0"], name=relu))
        x = relu + "_output_0"
        if i < 2:
            pool = "/pool%d/MaxPool" % (i + 1)
            nodes.append(helper.make_node("MaxPool", [x], [pool + "_output_0"], name=pool,
                                          ceil_mode=0, kernel_shape=[2, 2], pads=[0, 0, 0, 0],
                                          strides=[2, 2]))
            x = pool + "_output_0"
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["/gap/GlobalAveragePool_output_0"],
                                  name="/gap/GlobalAveragePool"))
    nodes.append(helper.make_node("Flatten", ["/gap/GlobalAveragePool_output_0"],
                                  ["/Flatten_output_0"], name="/Flatten", axis=1))
    nodes.append(helper.make_node("Gemm", ["/Flatten_output_0", "fc.weight", "fc.bias"], ["logits"],
                                  name="/fc/Gemm", alpha=1.0, beta=1.0, transB=1))
    graph = helper.make_graph(
        nodes, "shapes",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, len(LABELS)])],
        initializer=inits)
    model = helper.make_model(graph, producer_name="pytorch", producer_version="2.1.0",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    model.doc_string = ("Classifies a 32x32 RGB image (values in [0, 1]) as one of: %s. "
                        "Output: logits in that order." % ", ".join(LABELS))
    onnx.checker.check_model(model, full_check=True)
    return model


def write_png(path, img):
    """[3, H, W] in [0, 1] as an 8-bit RGB PNG, scaled up 4x to look at."""
    rgb = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0)
    rgb = rgb.repeat(4, axis=0).repeat(4, axis=1)
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[r].tobytes() for r in range(h))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xffffffff)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
           chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


def write_samples(p, out_dir, rng):
    """One clearly classified sample per label (the first drawn that the
    trained net gets right with probability > 0.9)."""
    for k, label in enumerate(LABELS):
        while True:
            img = draw(rng, label)
            logits, _ = forward(p, img[None])
            z = np.exp(logits[0] - logits[0].max())
            if z.argmax() == k and z[k] / z.sum() > 0.9:
                break
        folder = os.path.join(out_dir, "samples", label)
        os.makedirs(folder, exist_ok=True)
        t = numpy_helper.from_array(img[None], "image")
        with open(os.path.join(folder, "input_0.pb"), "wb") as f:
            f.write(t.SerializeToString())
        write_png(os.path.join(folder, "image.png"), img)


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", default=here)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    p = train(rng, args.steps, args.batch, lambda s: print(s, flush=True))
    x_test, y_test = dataset(np.random.default_rng(args.seed + 1), 1000)
    acc = accuracy(p, x_test, y_test)
    os.makedirs(args.out_dir, exist_ok=True)
    model = to_onnx(p)
    onnx.save(model, os.path.join(args.out_dir, "shapes.onnx"))
    with open(os.path.join(args.out_dir, "labels.txt"), "w") as f:
        f.write("\n".join(LABELS) + "\n")
    write_samples(p, args.out_dir, np.random.default_rng(args.seed + 2))
    print("held-out accuracy %.1f%% on %d images; wrote %s (%d bytes) in %.0f s" % (
        100 * acc, len(y_test), os.path.join(args.out_dir, "shapes.onnx"),
        model.ByteSize(), time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
