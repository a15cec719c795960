#!/usr/bin/env python3
"""Runs a model end to end in kiln and in ONNX Runtime and compares outputs.

    compare_ort.py NAME [--size small|full] --kiln PATH [--opset N] [--dynamic]
                   [--batch N] [--seq N] [--set KEY=VALUE ...] [--tol 1e-4]
                   [--keep DIR] [--ort-only] [--kiln-arg ARG ...]

Builds NAME (resnet50, mobilenetv2, bert, gpt2, demo) with models/build.py
into a temporary folder, writes sample inputs there as input_K.pb (images
for the CNNs, valid token ids with padding for BERT and GPT-2; the demo uses
each committed sample), runs

    KILN run MODEL --inputs IN_DIR --outputs OUT_DIR [KILN_ARGS]

and ONNX Runtime (CPU provider, default session options) on the same inputs,
and compares each output.

The error measure is the normalised maximum error

    err = max |kiln - ort| / max |ort|

over all elements of an output (the denominator is 1 when the reference is
all zeros). It does not blow up on the many near-zero elements that a
per-element relative error chokes on, yet scales with the output's range.
An output passes when err <= --tol (default 1e-4), its shape and dtype
match, and non-finite values (inf, nan) sit at the same places with the same
values; integer and bool outputs must match exactly. The maximum absolute
error is reported as well.

Prints one line per model ("model.bert.small: PASS ...") and exits 0 when all
outputs match, 1 on a mismatch or a kiln failure (kiln's own message, which
names the node and op, is shown), 2 on a usage or set-up error.
With --ort-only it builds, checks the graph with onnx.checker and shape
inference, runs ONNX Runtime and checks the outputs are sane (finite, not all
equal), without kiln.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "models"))

import build  # noqa: E402  (models/build.py)
import common  # noqa: E402  (models/common.py)


def normalized_error(got, ref):
    """(normalised max error, max abs error, reason or None) of one output."""
    if got.shape != ref.shape:
        return np.inf, np.inf, "shape %s, expected %s" % (list(got.shape), list(ref.shape))
    if got.dtype != ref.dtype:
        return np.inf, np.inf, "dtype %s, expected %s" % (got.dtype, ref.dtype)
    if got.size == 0:
        return 0.0, 0.0, None
    if not np.issubdtype(ref.dtype, np.floating):
        bad = int(np.count_nonzero(got != ref))
        return (0.0, 0.0, None) if bad == 0 else (np.inf, np.inf, "%d elements differ" % bad)
    g64, r64 = got.astype(np.float64), ref.astype(np.float64)
    finite = np.isfinite(r64)
    same_special = (np.isnan(g64) & np.isnan(r64)) | (g64 == r64)
    if not np.all(finite | same_special):
        n = int(np.count_nonzero(~(finite | same_special)))
        return np.inf, np.inf, "%d non-finite reference values not matched" % n
    if not np.all(np.isfinite(g64[finite])):
        n = int(np.count_nonzero(~np.isfinite(g64[finite])))
        return np.inf, np.inf, "%d non-finite values where the reference is finite" % n
    diff = np.abs(g64[finite] - r64[finite])
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = float(np.abs(r64[finite]).max()) if diff.size else 0.0
    return max_abs / (scale if scale > 0 else 1.0), max_abs, None


def run_ort(model_path, feeds):
    import onnxruntime as ort
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    t0 = time.perf_counter()
    outs = sess.run(None, feeds)
    return outs, time.perf_counter() - t0


def run_kiln(kiln, model_path, in_dir, out_dir, extra, timeout):
    cmd = [kiln, "run", model_path, "--inputs", in_dir, "--outputs", out_dir] + extra
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - t0, "timed out after %d s" % timeout
    except OSError as e:
        return None, 0.0, "cannot run %s: %s" % (kiln, e)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        msg = (p.stderr.decode(errors="replace") + p.stdout.decode(errors="replace")).strip()
        return None, dt, "kiln exited %d: %s" % (p.returncode, msg[-2000:] or "(no message)")
    return p, dt, None


def input_sets(args, model, work):
    """[(label, folder of input_K.pb)] for the model; the demo has one per
    committed sample, the others one generated set."""
    if args.name == "demo":
        return build.demo_samples()
    folder = os.path.join(work, "inputs")
    common.save_tensors(folder, model, build.sample_inputs(
        args.name, model, args.size, args.seed + 1, args.batch, args.seq,
        build.parse_sets(args.set)))
    return [(None, folder)]


def load_feeds(model, folder):
    inits = {t.name for t in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    return {n: common.load_tensor(os.path.join(folder, "input_%d.pb" % k))
            for k, n in enumerate(names)}


def sanity(outs, names):
    """Reasons an ONNX Runtime result looks degenerate (empty when fine)."""
    bad = []
    for n, o in zip(names, outs):
        if np.issubdtype(o.dtype, np.floating):
            if not np.all(np.isfinite(o)):
                bad.append("%s has non-finite values" % n)
            elif o.size > 1 and float(o.max()) == float(o.min()):
                bad.append("%s is constant (%g)" % (n, float(o.max())))
    return bad


def check_demo_label(label, outs):
    """The demo must classify its own samples right."""
    if label is None:
        return None
    with open(os.path.join(build.DEMO_DIR, "labels.txt")) as f:
        labels = [line.strip() for line in f if line.strip()]
    top = labels[int(np.argmax(outs[0].reshape(-1)))]
    return None if top == label else "sample %s classified as %s" % (label, top)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", choices=build.NAMES)
    ap.add_argument("--size", choices=["small", "full"], default="small")
    ap.add_argument("--kiln", help="path of the kiln binary")
    ap.add_argument("--opset", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dynamic", action="store_true",
                    help="symbolic batch/sequence dims in the graph's inputs and outputs")
    ap.add_argument("--batch", type=int, help="batch size of the inputs (default per size)")
    ap.add_argument("--seq", type=int, help="sequence length of bert and gpt2 inputs")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                    help="change an entry of the model's config (models/build.py --set)")
    ap.add_argument("--tol", type=float, default=1e-4, help="normalised max error allowed")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds allowed per kiln run")
    ap.add_argument("--keep", help="build in this folder and keep it")
    ap.add_argument("--ort-only", action="store_true", help="check the model in ONNX Runtime only")
    ap.add_argument("--kiln-arg", action="append", default=[], help="extra argument for kiln run")
    ap.add_argument("--test-name", help="name printed on the result line")
    args = ap.parse_args(argv)
    if not args.ort_only and not args.kiln:
        ap.error("--kiln PATH is required (or --ort-only)")
    title = args.test_name or ("model.demo" if args.name == "demo" else "model.%s.%s%s" % (
        args.name, args.size, ".opset%d" % args.opset if args.opset else "")
        + (".dynamic" if args.dynamic else "") + "".join("." + kv for kv in args.set))

    work = args.keep or tempfile.mkdtemp(prefix="kiln-model-")
    os.makedirs(work, exist_ok=True)
    try:
        return compare(args, title, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def compare(args, title, work):
    t0 = time.perf_counter()
    sets = build.parse_sets(args.set)
    model = build.build_model(args.name, args.size, args.opset, args.seed, args.dynamic,
                              args.batch, args.seq, sets)
    model_path = os.path.join(work, "model.onnx")
    common.save_model(model, model_path)
    t_build = time.perf_counter() - t0
    out_names = [o.name for o in model.graph.output]
    sets = input_sets(args, model, work)
    if args.ort_only:
        common.check_model(model if model.ByteSize() < 2**31 - 1 else model_path)
    worst, worst_abs, t_kiln, t_ort, problems, compared = 0.0, 0.0, 0.0, 0.0, [], 0
    for si, (label, in_dir) in enumerate(sets):
        tag = "" if len(sets) == 1 else "[%s] " % (label or si)
        ref, dt = run_ort(model_path, load_feeds(model, in_dir))
        t_ort += dt
        problems += [tag + p for p in sanity(ref, out_names)]
        if args.name == "demo":
            p = check_demo_label(label, ref)
            if p:
                problems.append("onnxruntime: " + p)
        if args.ort_only:
            continue
        out_dir = os.path.join(work, "outputs%d" % si)
        os.makedirs(out_dir, exist_ok=True)
        _, dt, err = run_kiln(args.kiln, model_path, in_dir, out_dir, args.kiln_arg, args.timeout)
        t_kiln += dt
        if err:
            problems.append(tag + err)
            break
        for k, (name, r) in enumerate(zip(out_names, ref)):
            path = os.path.join(out_dir, "output_%d.pb" % k)
            if not os.path.exists(path):
                problems.append("%s%s: kiln wrote no %s" % (tag, name, os.path.basename(path)))
                continue
            e, a, why = normalized_error(common.load_tensor(path), r)
            compared += 1
            worst, worst_abs = max(worst, e), max(worst_abs, a)
            if why or e > args.tol:
                problems.append("%s%s: %s" % (tag, name, why or "err %.3g > tol %.3g (max abs %.3g)"
                                              % (e, args.tol, a)))

    status = "FAIL" if problems else "PASS"
    if args.ort_only:
        stats = ", ".join("%s %s mean %.3g std %.3g" % (n, list(r.shape), float(np.mean(r)),
                                                          float(np.std(r)))
                          for n, r in zip(out_names, ref))
        print("%s: %s (onnxruntime only) %d nodes, build %.1f s, ort %.2f s; %s" % (
            title, status, len(model.graph.node), t_build, t_ort, stats))
    elif compared == 0:
        print("%s: FAIL no output compared (kiln %.2f s)" % (title, t_kiln))
    else:
        print("%s: %s %d output(s) x %d input set(s), max normalised err %.3g (tol %.0e), "
              "max abs err %.3g, kiln %.2f s, onnxruntime %.2f s" % (
                  title, status, len(out_names), len(sets), worst, args.tol, worst_abs,
                  t_kiln, t_ort))
    for p in problems:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ImportError, OSError, ValueError) as e:
        print("compare_ort: %s" % e, file=sys.stderr)
        sys.exit(2)
