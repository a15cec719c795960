#!/usr/bin/env python3
"""Load time and peak memory of the ONNX frontend on a large model.

Generates a model of about SIZE_MB of float weights (tests/models/
gen_weights_model.py), then loads it with the frontend's load check
(the test_onnx_loadperf program given a path) under /usr/bin/time -v, and
prints load time and peak RSS against the file size. The frontend promises
a peak RSS of at most ~1.3 x the file size and a load well under a second.

usage: bench/load_memory.py [--build DIR] [--size-mb 400] [--keep PATH]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="kiln build folder")
    ap.add_argument("--size-mb", type=int, default=400)
    ap.add_argument("--keep", help="write the model here (reused when it exists)")
    args = ap.parse_args()

    prog = os.path.join(args.build, "tests", "test_onnx_loadperf")
    if not os.path.exists(prog):
        sys.exit(f"{prog} not found: build kiln first (ninja -C {args.build} test_onnx_loadperf)")
    tmp = None
    path = args.keep
    if not path:
        tmp = tempfile.TemporaryDirectory(prefix="kiln_load_")
        path = os.path.join(tmp.name, f"w{args.size_mb}.onnx")
    if not os.path.exists(path):
        gen = os.path.join(ROOT, "tests", "models", "gen_weights_model.py")
        subprocess.run([sys.executable, gen, path, str(args.size_mb)], check=True)
    size = os.path.getsize(path)
    run = subprocess.run(["/usr/bin/time", "-v", prog, path], capture_output=True, text=True)
    sys.stdout.write(run.stdout)
    if run.returncode != 0:
        sys.stderr.write(run.stderr)
        sys.exit(run.returncode)
    # /usr/bin/time reports the largest child's RSS: the loader's child process
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)
    if m:
        rss = int(m.group(1)) * 1024
        print(f"/usr/bin/time: peak RSS {rss / 2**20:.1f} MB for a {size / 2**20:.1f} MB file "
              f"({rss / size:.2f} x)")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
