#!/bin/sh
# gemm.sh — fp32 GEMM throughput of kiln's default CPU schedule against the
# machine's FMA peak, at 1 and 2 threads (or the counts given).
#
#   bench/gemm.sh BUILD_DIR [M N K] [THREADS...]
#
# Builds a one-node MatMul model (A of M x K an input, B of K x N a
# constant: weights, as in a real model), runs `kiln bench` on it and
# kiln_fma_peak, and prints GFLOP/s (from the best and the median run) and
# the share of the peak. On a shared machine the numbers move: the best
# of several runs is the one to compare with the peak.
set -eu
build=${1:?usage: bench/gemm.sh BUILD_DIR [M N K] [THREADS...]}
shift
m=1024 n=1024 k=1024
if [ $# -ge 3 ]; then m=$1 n=$2 k=$3; shift 3; fi
threads=${*:-1 2}
dir=$(mktemp -d /tmp/kiln_gemm_XXXXXX)
trap 'rm -rf "$dir"' EXIT

python3 - "$dir/mm.onnx" "$m" "$n" "$k" <<'EOF'
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
path, m, n, k = sys.argv[1], *map(int, sys.argv[2:5])
w = np.random.default_rng(0).standard_normal((k, n), dtype=np.float32)
g = helper.make_graph([helper.make_node("MatMul", ["A", "W"], ["Y"])], "gemm",
                      [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])],
                      [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])],
                      [numpy_helper.from_array(w, "W")])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
EOF

max=1
for t in $threads; do [ "$t" -gt "$max" ] && max=$t; done
peak=$("$build/bench/kiln_fma_peak" "$max")
echo "peak: $peak"
for t in $threads; do
    out=$("$build/kiln" bench "$dir/mm.onnx" --threads "$t" --repeat 20 --json | tail -1)
    python3 - "$out" "$peak" "$t" "$m" "$n" "$k" <<'EOF'
import json, sys
r, peak, t = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
m, n, k = map(int, sys.argv[4:7])
flop = 2.0 * m * n * k
best, med = flop / r["min_ms"] / 1e6, flop / r["median_ms"] / 1e6
p = peak.get("gflops_%st" % t, 0.0)
share = " (%.0f%% of the peak %.1f)" % (100 * best / p, p) if p else ""
print("gemm %dx%dx%d, %s thread(s): %.1f GFLOP/s best, %.1f median%s" % (m, n, k, t, best, med, share))
EOF
done
