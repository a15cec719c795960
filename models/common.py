"""Shared pieces of the model builders: a small graph builder that names nodes,
values and weights the way torch.onnx.export does, seeded weight initialisers,
and tensor file helpers.

Only onnx and numpy are used, so the builders run wherever the tests run.
"""

import contextlib
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64
BOOL = TensorProto.BOOL

# What torch.onnx.export (TorchScript exporter) writes into a model.
PRODUCER_NAME = "pytorch"
PRODUCER_VERSION = "2.1.0"


class Graph:
    """Collects nodes, weights, inputs and outputs of one ONNX graph.

    Names follow the exporter: a node in module scope `encoder.layer.0.output`
    of type Add is `/encoder/layer.0/output/Add` (a second one `Add_1`), its
    output `/encoder/layer.0/output/Add_output_0`; a weight is the module path
    plus the parameter name (`encoder.layer.0.output.dense.bias`); a weight
    the exporter had to transform (a transposed Linear weight) is
    `onnx::MatMul_<n>`.
    """

    def __init__(self, name, opset, seed=0):
        self.name = name
        self.opset = opset
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.initializers = []
        self.inputs = []
        self.outputs = []
        self._scope = []
        self._used = {}
        self._anon = 1000

    # -- naming ---------------------------------------------------------
    @contextlib.contextmanager
    def scope(self, *parts):
        """Enters a module scope (`with g.scope("layer1", "layer1.0"):`)."""
        self._scope.extend(parts)
        try:
            yield
        finally:
            del self._scope[len(self._scope) - len(parts):]

    def param_name(self, leaf):
        """The dotted name of a parameter of the module in scope. Scope parts
        are written as the exporter shows them ("layer1", "layer1.0",
        "conv1"); a part that extends the one before it ("layer1.0" after
        "layer1") replaces it in the dotted path."""
        comps = []
        for part in self._scope:
            if comps and part.startswith(comps[-1] + "."):
                comps[-1] = part
            else:
                comps.append(part)
        return ".".join(comps + [leaf])

    def child(self, name):
        """The scope part of a numbered child of the module in scope
        ("features.0" -> "features.0.1"), as the exporter writes it."""
        return "%s.%s" % (self._scope[-1], name) if self._scope else str(name)

    def _node_name(self, op_type):
        base = "/" + "/".join(self._scope + [op_type]) if self._scope else "/" + op_type
        n = self._used.get(base, 0)
        self._used[base] = n + 1
        return base if n == 0 else "%s_%d" % (base, n)

    def anon_name(self, op_type):
        """A name for a weight the exporter derived (`onnx::MatMul_1003`)."""
        self._anon += 1
        return "onnx::%s_%d" % (op_type, self._anon)

    # -- building -------------------------------------------------------
    def input(self, name, elem_type, shape):
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def output(self, value, name, elem_type, shape):
        """Marks `value` as a graph output called `name` (adds an Identity
        when the names differ, as the exporter does for renamed outputs)."""
        if value != name:
            # Rename the producer's output instead of adding a node, which
            # is what the exporter ends up with.
            for node in self.nodes:
                for i, o in enumerate(node.output):
                    if o == value:
                        node.output[i] = name
                for i, x in enumerate(node.input):
                    if x == value:
                        node.input[i] = name
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def weight(self, name, array):
        """Adds an initializer and returns its name."""
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type, inputs, n_out=1, **attrs):
        """Adds a node; returns its output name (or list of names)."""
        name = self._node_name(op_type)
        outs = ["%s_output_%d" % (name, i) for i in range(n_out)]
        node = helper.make_node(op_type, list(inputs), outs, name=name, **attrs)
        self.nodes.append(node)
        return outs[0] if n_out == 1 else outs

    def const(self, value, dtype=np.float32):
        """A Constant node holding `value` (scalar or list), as the exporter
        writes for Python numbers and literal shapes."""
        arr = np.array(value, dtype=dtype)
        return self.op("Constant", [], value=numpy_helper.from_array(arr))

    def model(self):
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs,
                                  initializer=self.initializers)
        model = helper.make_model(graph, producer_name=PRODUCER_NAME,
                                  producer_version=PRODUCER_VERSION,
                                  opset_imports=[helper.make_opsetid("", self.opset)])
        # Older readers (and ONNX Runtime) want an IR version they know.
        model.ir_version = 8
        return model

    # -- common layers, exported the way torch writes them ---------------
    def dim(self, x, index):
        """Shape(x) -> Gather(index): one dimension as a 0-d int64 tensor."""
        shape = self.op("Shape", [x])
        return self.op("Gather", [shape, self.const(index, np.int64)], axis=0)

    def unsqueeze(self, x, axes):
        if self.opset >= 13:
            return self.op("Unsqueeze", [x, self.const(axes, np.int64)])
        return self.op("Unsqueeze", [x], axes=axes)

    def shape_of(self, parts):
        """Concat of 1-d pieces: a 0-d dimension value or a literal int list."""
        pieces = []
        for p in parts:
            if isinstance(p, str):
                pieces.append(self.unsqueeze(p, [0]))
            else:
                pieces.append(self.const(list(p), np.int64))
        return self.op("Concat", pieces, axis=0)

    def reduce_mean(self, x, axes, keepdims=1):
        if self.opset >= 18:
            return self.op("ReduceMean", [x, self.const(axes, np.int64)], keepdims=keepdims)
        return self.op("ReduceMean", [x], axes=axes, keepdims=keepdims)

    def layer_norm(self, x, hidden, eps):
        """nn.LayerNorm over the last axis: one LayerNormalization node at
        opset 17 and later, the decomposed form before it."""
        w = self.weight(self.param_name("weight"), layer_norm_weight(self.rng, hidden))
        b = self.weight(self.param_name("bias"), small_bias(self.rng, hidden))
        if self.opset >= 17:
            return self.op("LayerNormalization", [x, w, b], axis=-1, epsilon=eps)
        mean = self.reduce_mean(x, [-1])
        d = self.op("Sub", [x, mean])
        sq = self.op("Pow", [d, self.const(2.0)])
        var = self.reduce_mean(sq, [-1])
        std = self.op("Sqrt", [self.op("Add", [var, self.const(eps)])])
        y = self.op("Div", [d, std])
        return self.op("Add", [self.op("Mul", [y, w]), b])

    def linear(self, x, n_in, n_out, bias=True, std=None):
        """nn.Linear on an N-d input: MatMul with the transposed weight (a
        derived initializer) then Add with the bias first, as exported."""
        w = linear_weight(self.rng, n_out, n_in, std)
        wt = self.weight(self.anon_name("MatMul"), w.T)
        y = self.op("MatMul", [x, wt])
        if bias:
            b = self.weight(self.param_name("bias"), small_bias(self.rng, n_out))
            y = self.op("Add", [b, y])
        return y

    def gemm_linear(self, x, n_in, n_out):
        """nn.Linear on a 2-d input: Gemm with transB=1."""
        w = self.weight(self.param_name("weight"), linear_weight(self.rng, n_out, n_in))
        b = self.weight(self.param_name("bias"), small_bias(self.rng, n_out))
        return self.op("Gemm", [x, w, b], alpha=1.0, beta=1.0, transB=1)

    def conv(self, x, c_in, c_out, k, stride=1, pad=0, group=1, bias=False):
        w = he_normal(self.rng, (c_out, c_in // group, k, k))
        ins = [x, self.weight(self.param_name("weight"), w)]
        if bias:
            ins.append(self.weight(self.param_name("bias"), small_bias(self.rng, c_out)))
        return self.op("Conv", ins, dilations=[1, 1], group=group, kernel_shape=[k, k],
                       pads=[pad] * 4, strides=[stride, stride])

    def batch_norm(self, x, c, gain=1.0):
        gamma, beta, mean, var = bn_params(self.rng, c, gain)
        ins = [x] + [self.weight(self.param_name(n), a) for n, a in
                     (("weight", gamma), ("bias", beta), ("running_mean", mean),
                      ("running_var", var))]
        return self.op("BatchNormalization", ins, epsilon=1e-5, momentum=0.9)


# -- weight initialisers ---------------------------------------------------
# Random weights, scaled so that activations keep roughly unit variance
# through any depth: results stay finite and vary from input to input.

def he_normal(rng, shape, fan_in=None):
    """Kaiming normal for layers followed by ReLU: var = 2 / fan_in."""
    if fan_in is None:
        fan_in = int(np.prod(shape[1:]))
    return (rng.standard_normal(shape, dtype=np.float32) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def linear_weight(rng, n_out, n_in, std=None):
    """A [n_out, n_in] weight; default std 1/sqrt(n_in) keeps unit variance."""
    if std is None:
        std = 1.0 / np.sqrt(n_in)
    return (rng.standard_normal((n_out, n_in), dtype=np.float32) * std).astype(np.float32)


def small_bias(rng, n, std=0.02):
    return (rng.standard_normal(n, dtype=np.float32) * std).astype(np.float32)


def layer_norm_weight(rng, n):
    return (1.0 + rng.standard_normal(n, dtype=np.float32) * 0.05).astype(np.float32)


def bn_params(rng, c, gain=1.0):
    """BatchNorm with the statistics a trained net would have for He-init
    convolutions on unit-variance inputs: mean near 0, var near 1 (so the
    normalised output is near unit variance), gamma near `gain`."""
    gamma = (gain * (1.0 + 0.1 * rng.standard_normal(c))).astype(np.float32)
    beta = (0.05 * rng.standard_normal(c)).astype(np.float32)
    mean = (0.1 * rng.standard_normal(c)).astype(np.float32)
    var = rng.uniform(0.8, 1.25, c).astype(np.float32)
    return gamma, beta, mean, var


# -- sample inputs ---------------------------------------------------------

def natural_image(rng, batch, channels, size):
    """An image-like tensor, ImageNet-normalised: smooth colour regions plus
    fine noise, so convolutions see structure rather than white noise."""
    coarse = rng.uniform(0.0, 1.0, (batch, channels, 8, 8))
    reps = -(-size // 8)
    img = np.kron(coarse, np.ones((1, 1, reps, reps)))[:, :, :size, :size]
    img = np.clip(img + 0.05 * rng.standard_normal(img.shape), 0.0, 1.0)
    mean = np.array([0.485, 0.456, 0.406] * (channels // 3 + 1))[:channels]
    std = np.array([0.229, 0.224, 0.225] * (channels // 3 + 1))[:channels]
    img = (img - mean[None, :, None, None]) / std[None, :, None, None]
    return img.astype(np.float32)


def save_tensors(folder, model, arrays, prefix="input"):
    """Writes arrays as <prefix>_K.pb, named after the graph's inputs (or
    outputs when prefix is "output"), in graph order."""
    os.makedirs(folder, exist_ok=True)
    values = model.graph.input if prefix == "input" else model.graph.output
    names = [v.name for v in values]
    inits = {t.name for t in model.graph.initializer}
    if prefix == "input":
        names = [n for n in names if n not in inits]
    if len(names) != len(arrays):
        raise ValueError("model has %d %ss, got %d arrays" % (len(names), prefix, len(arrays)))
    paths = []
    for k, (name, arr) in enumerate(zip(names, arrays)):
        path = os.path.join(folder, "%s_%d.pb" % (prefix, k))
        with open(path, "wb") as f:
            f.write(numpy_helper.from_array(np.asarray(arr), name).SerializeToString())
        paths.append(path)
    return paths


def load_tensor(path):
    t = TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def save_model(model, path):
    onnx.save(model, path)


def check_model(model):
    """onnx.checker with full, strict shape inference on a ModelProto or a
    model file; raises on a malformed graph."""
    onnx.checker.check_model(model, full_check=True)
    if isinstance(model, str):
        onnx.shape_inference.infer_shapes_path(model, model + ".inferred", strict_mode=True)
        os.remove(model + ".inferred")
    else:
        onnx.shape_inference.infer_shapes(model, strict_mode=True)
