#!/usr/bin/env python3
"""Writes the hand-made seeds of the fuzz corpora (the others are copies of
small ONNX conformance files): models with initializers in every data field,
attributes of every kind and a subgraph, and tensors with typed fields.

usage: tests/fuzz/make_seeds.py   (writes into tests/fuzz/corpus_*)
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def model_with_weights():
    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "W")
    b = helper.make_tensor("B", TensorProto.FLOAT, [3], [0.5, 1.5, 2.5])          # float_data
    s = helper.make_tensor("S", TensorProto.INT64, [2], [3, 2])                    # int64_data
    h = helper.make_tensor("H", TensorProto.FLOAT16, [2], [15360, 16384])          # int32_data
    then_g = helper.make_graph([helper.make_node("Identity", ["Y"], ["o"])], "then", [],
                               [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)])
    else_g = helper.make_graph([helper.make_node("Neg", ["Y"], ["o"])], "else", [],
                               [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)],
                               [numpy_helper.from_array(np.ones(1, np.float32), "one")])
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["M"], name="mm"),
        helper.make_node("Add", ["M", "B"], ["Y"]),
        helper.make_node("Constant", [], ["C"], value=numpy_helper.from_array(np.array(True))),
        helper.make_node("If", ["C"], ["Z"], then_branch=then_g, else_branch=else_g),
        helper.make_node("Custom", ["Z", "", "S"], ["Q", ""], domain="com.example",
                         f=0.5, i=3, s="text", fs=[1.0, 2.0], is_=[1, 2], ss=["a", "b"],
                         t=numpy_helper.from_array(np.zeros(2, np.int8))),
    ]
    g = helper.make_graph(nodes, "weights",
                          [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 2]),
                           helper.make_tensor_value_info("B", TensorProto.FLOAT, [3])],
                          [helper.make_tensor_value_info("Q", TensorProto.FLOAT, None)],
                          initializer=[w, b, s, h],
                          value_info=[helper.make_tensor_value_info("M", TensorProto.FLOAT, ["N", 3])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])


def model_with_external_data():
    """W lies in w.bin (bytes 0..255), which the fuzz target provides."""
    w = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4])
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "w.bin"), ("offset", "16"), ("length", "16")):
        e = w.external_data.add()
        e.key, e.value = k, v
    g = helper.make_graph([helper.make_node("Add", ["X", "W"], ["Y"])], "ext",
                          [helper.make_tensor_value_info("X", TensorProto.FLOAT, [4])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [4])], initializer=[w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def tensors():
    return {
        "f32_raw.pb": numpy_helper.from_array(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), "x"),
        "f32_typed.pb": helper.make_tensor("x", TensorProto.FLOAT, [2], [1.0, -2.0]),
        "f64_typed.pb": helper.make_tensor("x", TensorProto.DOUBLE, [2], [1.0, -2.0]),
        "u32_typed.pb": helper.make_tensor("x", TensorProto.UINT32, [2], [1, 4000000000]),
        "i8_typed.pb": helper.make_tensor("x", TensorProto.INT8, [3], [-1, 0, 1]),
        "empty.pb": helper.make_tensor("x", TensorProto.FLOAT, [0, 4], []),
    }


def main():
    m = model_with_weights()
    with open(os.path.join(HERE, "corpus_model", "weights_attrs_subgraph.onnx"), "wb") as f:
        f.write(m.SerializeToString())
    with open(os.path.join(HERE, "corpus_model", "external_data.onnx"), "wb") as f:
        f.write(model_with_external_data().SerializeToString())
    for name, t in tensors().items():
        with open(os.path.join(HERE, "corpus_tensor", name), "wb") as f:
            f.write(t.SerializeToString())


if __name__ == "__main__":
    main()
