#!/usr/bin/env python3
"""Writes an ONNX model made mostly of large float weights, for load-time and
memory checks of the frontend: a chain of MatMul+Add layers (1024x1024 f32
weights, 4 MiB each) reaching about the requested size.

usage: gen_weights_model.py OUT.onnx SIZE_MB
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build(size_mb, width=1024):
    layer_bytes = width * width * 4 + width * 4
    layers = max(1, (size_mb * 1024 * 1024) // layer_bytes)
    rng = np.random.default_rng(0)
    inits, nodes = [], []
    cur = "X"
    for i in range(layers):
        w = (rng.standard_normal((width, width), dtype=np.float32) / width).astype(np.float32)
        b = np.full((width,), 0.01 * (i % 7), dtype=np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        inits.append(numpy_helper.from_array(b, f"b{i}"))
        nodes.append(helper.make_node("MatMul", [cur, f"w{i}"], [f"m{i}"], name=f"matmul{i}"))
        nodes.append(helper.make_node("Add", [f"m{i}", f"b{i}"], [f"y{i}"], name=f"add{i}"))
        cur = f"y{i}"
    graph = helper.make_graph(
        nodes, "weights",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", width])],
        [helper.make_tensor_value_info(cur, TensorProto.FLOAT, ["N", width])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="kiln-gen-weights")
    return model


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    model = build(int(sys.argv[2]))
    onnx.save(model, sys.argv[1])


if __name__ == "__main__":
    main()
