#!/usr/bin/env python3
"""kiln's CPU benchmark: kiln (--target cpu) against ONNX Runtime (CPU, all
graph optimizations, the same thread count), measured in the same run.

    python3 bench/run_bench.py [--kiln build/kiln] [--peak build/bench/kiln_fma_peak]
                               [--models resnet50,mobilenetv2,bert,gpt2] [--threads 1,2]
                               [--size full|small] [--repeat R] [--out FILE.md] [--schedules FILE.lua]
                               [--db FILE]

Writes a markdown table: median latency of each, their ratio (kiln / ORT,
lower is better), GFLOP/s and the fraction of the machine's fp32 peak (from
the FMA micro-benchmark bench/fma_peak.c), plus an fp32 GEMM 1024^3 row.
With --db (a records database from `kiln tune`) kiln also runs with the
tuned schedules, and the table gets their latency and ratio.
Timings on a shared machine are noisy: compare the ratios of one run.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def build_model(name, size, folder):
    path = os.path.join(folder, f"{name}.onnx")
    inputs = os.path.join(folder, f"{name}_inputs")
    subprocess.run([sys.executable, os.path.join(ROOT, "models", "build.py"), name, "--size", size,
                    "-o", path, "--inputs-dir", inputs], check=True, stdout=subprocess.DEVNULL)
    return path, inputs


def build_gemm(n, folder):
    path = os.path.join(folder, f"gemm{n}.onnx")
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array((rng.standard_normal((n, n)) * 0.05).astype(np.float32), "W")
    g = helper.make_graph([helper.make_node("MatMul", ["A", "W"], ["C"])], "gemm",
                          [helper.make_tensor_value_info("A", TensorProto.FLOAT, [n, n])],
                          [helper.make_tensor_value_info("C", TensorProto.FLOAT, [n, n])], [w])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    inputs = os.path.join(folder, f"gemm{n}_inputs")
    os.makedirs(inputs, exist_ok=True)
    a = numpy_helper.from_array(rng.standard_normal((n, n)).astype(np.float32), "A")
    with open(os.path.join(inputs, "input_0.pb"), "wb") as f:
        f.write(a.SerializeToString())
    return path, inputs


def _dims(vi):
    return [d.dim_value for d in vi.type.tensor_type.shape.dim]


def count_flops(path):
    """2 * multiply-adds of Conv, ConvTranspose, MatMul and Gemm nodes."""
    m = shape_inference.infer_shapes(onnx.load(path), data_prop=True)
    shapes = {vi.name: _dims(vi) for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output)}
    for t in m.graph.initializer:
        shapes[t.name] = list(t.dims)
    flops = 0
    for n in m.graph.node:
        if n.op_type == "Conv":
            w, y = shapes.get(n.input[1]), shapes.get(n.output[0])
            if w and y:
                flops += 2 * int(np.prod(y)) * int(np.prod(w[1:]))
        elif n.op_type in ("MatMul", "Gemm"):
            a, y = shapes.get(n.input[0]), shapes.get(n.output[0])
            if a and y:
                k = a[-1] if n.op_type == "MatMul" or not any(
                    at.name == "transA" and at.i for at in n.attribute) else a[0]
                flops += 2 * int(np.prod(y)) * k
    return flops


def kiln_median(kiln, path, inputs, threads, repeat, schedules, db=None):
    cmd = [kiln, "bench", path, "--target", "cpu", "--threads", str(threads), "--repeat", str(repeat),
           "--warmup", "2", "--json", "--inputs", inputs]
    if schedules:
        cmd += ["--schedules", schedules]
    if db:
        cmd += ["--db", db]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def ort_median(path, inputs, threads, repeat):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = {}
    for k, i in enumerate(sess.get_inputs()):
        t = onnx.TensorProto()
        with open(os.path.join(inputs, f"input_{k}.pb"), "rb") as f:
            t.ParseFromString(f.read())
        feed[i.name] = numpy_helper.to_array(t)
    for _ in range(2):
        sess.run(None, feed)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def peak_gflops(peak_bin, threads):
    out = subprocess.run([peak_bin, str(max(threads))], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build", "kiln"))
    ap.add_argument("--peak", default=os.path.join(ROOT, "build", "bench", "kiln_fma_peak"))
    ap.add_argument("--models", default="resnet50,mobilenetv2,bert,gpt2")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--size", default="full", choices=["full", "small"])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--gemm", type=int, default=1024, help="GEMM size (0: none)")
    ap.add_argument("--schedules", help="a Lua schedule script for kiln")
    ap.add_argument("--db", help="a records database of tuned schedules: adds tuned columns")
    ap.add_argument("--out", help="also write the table to this file")
    a = ap.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    peak = peak_gflops(a.peak, threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = []
        if a.gemm:
            work.append((f"gemm{a.gemm}",) + build_gemm(a.gemm, tmp))
        for name in [m for m in a.models.split(",") if m]:
            work.append((name,) + build_model(name, a.size, tmp))
        for name, path, inputs in work:
            flops = count_flops(path)
            for t in threads:
                k = kiln_median(a.kiln, path, inputs, t, a.repeat, a.schedules)
                o = ort_median(path, inputs, t, a.repeat)
                tuned = kiln_median(a.kiln, path, inputs, t, a.repeat, a.schedules, a.db)["median_ms"] if a.db else None
                gf = flops / (k["median_ms"] * 1e6) if flops else 0.0
                p = peak.get(f"gflops_{t}t", 0.0)
                rows.append((name, t, k["median_ms"], o, k["median_ms"] / o, gf, gf / p if p else 0.0,
                             k["compile_ms"], tuned))
                print(f"{name} {t}t: kiln {k['median_ms']:.2f} ms, ort {o:.2f} ms, ratio {k['median_ms'] / o:.2f}",
                      file=sys.stderr)
    lines = [f"fp32 peak (FMA micro-benchmark, {peak.get('isa')}): "
             + ", ".join(f"{t} thread(s) {peak.get(f'gflops_{t}t', 0):.1f} GFLOP/s" for t in threads), "",
             "| model | threads | kiln ms | ORT ms | kiln/ORT | kiln GFLOP/s | % of peak | kiln compile ms |"
             + (" kiln tuned ms | tuned/ORT |" if a.db else ""),
             "|---|---|---|---|---|---|---|---|" + ("---|---|" if a.db else "")]
    for r in rows:
        tuned = f" {r[8]:.2f} | {r[8] / r[3]:.2f} |" if r[8] is not None else ""
        lines.append(f"| {r[0]} | {r[1]} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:.1f} | {100 * r[6]:.0f}% | {r[7]:.0f} |"
                     + tuned)
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
