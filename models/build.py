#!/usr/bin/env python3
"""Builds a model of a standard architecture as an ONNX file, with sample
inputs.

    python3 models/build.py NAME [--size small|full] -o OUT.onnx [--inputs-dir DIR]
                            [--opset N] [--seed S] [--dynamic] [--batch N] [--seq N]
                            [--set KEY=VALUE ...] [--check]

NAME is one of resnet50, mobilenetv2, bert, gpt2, demo. The same seed gives
the same file. --inputs-dir writes input_K.pb (ONNX TensorProto) in the
order of the graph's inputs, ready for `kiln run MODEL --inputs DIR`.
--dynamic makes the batch (and sequence) dims of the graph's inputs and
outputs symbolic, as torch.onnx.export's dynamic_axes does; --batch and
--seq (BERT, GPT-2) change the size's batch and sequence length; --set
changes any other entry of the size's config (e.g. --set causal=trilu for
gpt2, --set layers=4).
"demo" copies the committed demo model (models/demo/shapes.onnx; --size and
--opset do not apply) and writes the circle sample as its input.
"""

import argparse
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import onnx  # noqa: E402

import bert  # noqa: E402
import common  # noqa: E402
import gpt2  # noqa: E402
import mobilenet  # noqa: E402
import resnet  # noqa: E402

ARCHS = {"resnet50": resnet, "mobilenetv2": mobilenet, "bert": bert, "gpt2": gpt2}
NAMES = sorted(ARCHS) + ["demo"]
DEMO_DIR = os.path.join(HERE, "demo")
DEMO_MODEL = os.path.join(DEMO_DIR, "shapes.onnx")


def demo_samples():
    """(label, folder) of each committed demo sample, in label order."""
    with open(os.path.join(DEMO_DIR, "labels.txt")) as f:
        labels = [line.strip() for line in f if line.strip()]
    out = []
    for label in labels:
        folder = os.path.join(DEMO_DIR, "samples", label)
        if os.path.exists(os.path.join(folder, "input_0.pb")):
            out.append((label, folder))
    return out


def _value(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_sets(items):
    """["KEY=VALUE", ...] -> {KEY: int, float or str}."""
    out = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise ValueError("--set wants KEY=VALUE, got %r" % item)
        out[key] = _value(val)
    return out


def _overrides(batch=None, seq=None, sets=None):
    out = dict(sets or {})
    if batch:
        out["batch"] = batch
    if seq:
        out["seq"] = seq
    return out


def build_model(name, size="small", opset=None, seed=0, dynamic=False, batch=None, seq=None,
                sets=None):
    """The ModelProto of NAME at SIZE (the demo is read from its file)."""
    if name == "demo":
        return onnx.load(DEMO_MODEL)
    mod = ARCHS[name]
    over = _overrides(batch, seq, sets)
    unknown = sorted(set(over) - set(mod.CONFIGS[size]))
    if unknown:
        raise ValueError("%s has no setting %s (it has: %s)" % (
            name, ", ".join(unknown), ", ".join(sorted(mod.CONFIGS[size]))))
    return mod.build(size, opset or mod.DEFAULT_OPSET, seed, dynamic=dynamic, **over)


def sample_inputs(name, model, size="small", seed=1, batch=None, seq=None, sets=None):
    """A list of input arrays in graph-input order."""
    if name == "demo":
        return [common.load_tensor(os.path.join(demo_samples()[0][1], "input_0.pb"))]
    return ARCHS[name].sample_inputs(model, size, seed, **_overrides(batch, seq, sets))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", choices=NAMES)
    ap.add_argument("--size", choices=["small", "full"], default="small")
    ap.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    ap.add_argument("--inputs-dir", help="folder for sample inputs input_K.pb")
    ap.add_argument("--opset", type=int, help="ONNX opset (13..17; default per model)")
    ap.add_argument("--seed", type=int, default=0, help="weight seed (inputs use seed+1)")
    ap.add_argument("--dynamic", action="store_true", help="symbolic batch/sequence dims")
    ap.add_argument("--batch", type=int, help="batch size (default per size)")
    ap.add_argument("--seq", type=int, help="sequence length for bert and gpt2")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="change an entry of the size's config")
    ap.add_argument("--check", action="store_true", help="run onnx.checker with shape inference")
    args = ap.parse_args(argv)

    if args.opset is not None and not 13 <= args.opset <= 17:
        ap.error("--opset must be within 13..17")
    try:
        sets = parse_sets(args.set)
    except ValueError as e:
        ap.error(str(e))
    if args.name == "demo":
        shutil.copyfile(DEMO_MODEL, args.output)
        model = onnx.load(args.output)
    else:
        try:
            model = build_model(args.name, args.size, args.opset, args.seed, args.dynamic,
                                args.batch, args.seq, sets)
        except ValueError as e:
            ap.error(str(e))
        onnx.save(model, args.output)
    if args.check:
        common.check_model(model)
    if args.inputs_dir:
        common.save_tensors(args.inputs_dir, model,
                            sample_inputs(args.name, model, args.size, args.seed + 1,
                                          args.batch, args.seq, sets))
    n_params = sum(int(_numel(t)) for t in model.graph.initializer)
    print("%s (%s): %d nodes, %d weights (%.1fM values), opset %d -> %s" % (
        args.name, args.size, len(model.graph.node), len(model.graph.initializer),
        n_params / 1e6, model.opset_import[0].version, args.output))
    return 0


def _numel(t):
    n = 1
    for d in t.dims:
        n *= d
    return n


if __name__ == "__main__":
    sys.exit(main())
