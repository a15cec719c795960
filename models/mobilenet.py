"""MobileNetV2 (torchvision layout) as torch.onnx.export writes it with the
BatchNorms kept: inverted residual blocks (1x1 expand, 3x3 depthwise conv
with group = channels, 1x1 linear projection), ReLU6 as Clip(x, 0, 6) with
Constant min/max inputs, residual Add when the shape is kept, then
GlobalAveragePool -> Flatten -> Gemm.

size "full": width 1.0, 224x224, 1000 classes (300 MMAC).
size "small": width 0.5, 64x64, 100 classes (about 6 MMAC).
"""

import numpy as np

try:
    from . import common
except ImportError:  # run as a plain script from models/
    import common

# expansion t, output channels c, repeats n, first stride s
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
            (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
CONFIGS = {
    "full": dict(width=1.0, image=224, classes=1000, batch=1),
    "small": dict(width=0.5, image=64, classes=100, batch=1),
}
DEFAULT_OPSET = 13


def _divisible(v, divisor=8):
    """torchvision's _make_divisible: round to a multiple of 8, never more
    than 10% below v."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _relu6(g, x):
    lo, hi = g.const(0.0), g.const(6.0)
    return g.op("Clip", [x, lo, hi])


def _conv_bn_act(g, x, c_in, c_out, k, stride, group=1, act=True):
    """Conv2dNormActivation: children 0 (conv), 1 (bn), 2 (ReLU6)."""
    with g.scope(g.child(0)):
        x = g.conv(x, c_in, c_out, k, stride, (k - 1) // 2, group)
    with g.scope(g.child(1)):
        x = g.batch_norm(x, c_out)
    if act:
        with g.scope(g.child(2)):
            x = _relu6(g, x)
    return x


def _inverted_residual(g, x, c_in, c_out, stride, t):
    hidden = int(round(c_in * t))
    y = x
    idx = 0
    with g.scope("conv"):
        if t != 1:
            with g.scope("conv.%d" % idx):
                y = _conv_bn_act(g, y, c_in, hidden, 1, 1)
            idx += 1
        with g.scope("conv.%d" % idx):
            y = _conv_bn_act(g, y, hidden, hidden, 3, stride, group=hidden)
        with g.scope("conv.%d" % (idx + 1)):
            y = g.conv(y, hidden, c_out, 1)
        with g.scope("conv.%d" % (idx + 2)):
            # The projection is linear; a smaller gain keeps residual sums tame.
            y = g.batch_norm(y, c_out, 0.5)
    if stride == 1 and c_in == c_out:
        y = g.op("Add", [x, y])
    return y


def build(size="small", opset=DEFAULT_OPSET, seed=0, dynamic=False, **overrides):
    """dynamic: the batch dim is symbolic ("batch_size"), as with dynamic_axes."""
    cfg = dict(CONFIGS[size], **overrides)
    g = common.Graph("mobilenetv2", opset, seed)
    n = "batch_size" if dynamic else cfg["batch"]
    hw, wm = cfg["image"], cfg["width"]
    x = g.input("input", common.FLOAT, [n, 3, hw, hw])
    c_in = _divisible(32 * wm)
    last = _divisible(1280 * max(1.0, wm))
    idx = 0
    with g.scope("features"):
        with g.scope("features.0"):
            x = _conv_bn_act(g, x, 3, c_in, 3, 2)
        for t, c, reps, s in SETTINGS:
            c_out = _divisible(c * wm)
            for i in range(reps):
                idx += 1
                with g.scope("features.%d" % idx):
                    x = _inverted_residual(g, x, c_in, c_out, s if i == 0 else 1, t)
                c_in = c_out
        with g.scope("features.%d" % (idx + 1)):
            x = _conv_bn_act(g, x, c_in, last, 1, 1)
    x = g.op("GlobalAveragePool", [x])
    x = g.op("Flatten", [x], axis=1)
    with g.scope("classifier", "classifier.1"):
        x = g.gemm_linear(x, last, cfg["classes"])
    g.output(x, "output", common.FLOAT, [n, cfg["classes"]])
    return g.model()


def sample_inputs(model, size="small", seed=1, **overrides):
    cfg = dict(CONFIGS[size], **overrides)
    rng = np.random.default_rng(seed)
    return [common.natural_image(rng, cfg["batch"], 3, cfg["image"])]
