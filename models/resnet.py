"""ResNet-50 (torchvision layout) as torch.onnx.export writes it with the
BatchNorms kept: Conv -> BatchNormalization -> Relu, bottleneck blocks with a
strided 1x1 downsample, MaxPool stem, GlobalAveragePool -> Flatten -> Gemm.

size "full": blocks [3, 4, 6, 3], width 64, 224x224, 1000 classes (4.1 GMAC).
size "small": the same 50 layers at width 16 (a 16th of the MACs per pixel),
64x64, 100 classes (about 20 MMAC), for tests on the reference interpreter.
"""

import numpy as np

try:
    from . import common
except ImportError:  # run as a plain script from models/
    import common

CONFIGS = {
    "full": dict(blocks=[3, 4, 6, 3], width=64, image=224, classes=1000, batch=1),
    "small": dict(blocks=[3, 4, 6, 3], width=16, image=64, classes=100, batch=1),
}
DEFAULT_OPSET = 13


def _conv_bn(g, x, conv_scope, bn_scope, c_in, c_out, k, stride, pad, gain=1.0):
    with g.scope(conv_scope):
        y = g.conv(x, c_in, c_out, k, stride, pad)
    with g.scope(bn_scope):
        return g.batch_norm(y, c_out, gain)


def _bottleneck(g, x, c_in, planes, stride):
    """torchvision Bottleneck (v1.5: the stride sits on the 3x3 conv)."""
    c_out = planes * 4
    y = _conv_bn(g, x, "conv1", "bn1", c_in, planes, 1, 1, 0)
    y = g.op("Relu", [y])
    y = _conv_bn(g, y, "conv2", "bn2", planes, planes, 3, stride, 1)
    y = g.op("Relu", [y])
    # A small gain on the last BN of the branch, as trained ResNets have,
    # keeps the residual sum from growing block after block.
    y = _conv_bn(g, y, "conv3", "bn3", planes, c_out, 1, 1, 0, 0.3)
    if stride != 1 or c_in != c_out:
        with g.scope("downsample"):
            x = _conv_bn(g, x, "downsample.0", "downsample.1", c_in, c_out, 1, stride, 0)
    return g.op("Relu", [g.op("Add", [y, x])])


def build(size="small", opset=DEFAULT_OPSET, seed=0, dynamic=False, **overrides):
    """dynamic: the batch dim is symbolic ("batch_size"), as with dynamic_axes."""
    cfg = dict(CONFIGS[size], **overrides)
    g = common.Graph("resnet50", opset, seed)
    n = "batch_size" if dynamic else cfg["batch"]
    hw, w = cfg["image"], cfg["width"]
    x = g.input("input", common.FLOAT, [n, 3, hw, hw])
    x = _conv_bn(g, x, "conv1", "bn1", 3, w, 7, 2, 3)
    with g.scope("relu"):
        x = g.op("Relu", [x])
    with g.scope("maxpool"):
        x = g.op("MaxPool", [x], ceil_mode=0, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])
    c_in = w
    for li, nblocks in enumerate(cfg["blocks"]):
        layer = "layer%d" % (li + 1)
        planes = w * (2 ** li)
        with g.scope(layer):
            for bi in range(nblocks):
                stride = 2 if (bi == 0 and li > 0) else 1
                with g.scope("%s.%d" % (layer, bi)):
                    x = _bottleneck(g, x, c_in, planes, stride)
                c_in = planes * 4
    with g.scope("avgpool"):
        x = g.op("GlobalAveragePool", [x])
    x = g.op("Flatten", [x], axis=1)
    with g.scope("fc"):
        x = g.gemm_linear(x, c_in, cfg["classes"])
    g.output(x, "output", common.FLOAT, [n, cfg["classes"]])
    return g.model()


def sample_inputs(model, size="small", seed=1, **overrides):
    cfg = dict(CONFIGS[size], **overrides)
    rng = np.random.default_rng(seed)
    return [common.natural_image(rng, cfg["batch"], 3, cfg["image"])]
