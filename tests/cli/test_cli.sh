#!/usr/bin/env bash
# The kiln command end to end: exit codes, messages, input/output files.
# usage: test_cli.sh KILN ONNX_TESTS_DIR
set -u
KILN=$1
CASES=$2
. "$(dirname "$0")/expect.sh"

expect 2 "usage" -- "$KILN"
expect 2 "unknown command" -- "$KILN" frobnicate
expect 0 "kiln [0-9]" -- "$KILN" --version
expect 1 "kiln: .*nonexistent.onnx" -- "$KILN" run "$TMP/nonexistent.onnx"
head -c 100 /dev/urandom >"$TMP/garbage.onnx"
expect 1 "kiln: .*garbage.onnx" -- "$KILN" run "$TMP/garbage.onnx"
: >"$TMP/empty.onnx"
expect 1 "kiln: " -- "$KILN" run "$TMP/empty.onnx"

RELU=$CASES/test_relu
# check: a passing case, then the same case with wrong expected values
expect 0 "^pass" -- "$KILN" check "$RELU"
cp -r "$RELU" "$TMP/relu_bad"
cp "$RELU/test_data_set_0/input_0.pb" "$TMP/relu_bad/test_data_set_0/output_0.pb"
expect 1 "worst at \[[0-9,]+\]: got .* expected" -- "$KILN" check "$TMP/relu_bad"

# run: inputs from a folder, outputs to a folder, then fed back as .npy
expect 0 "ran on target ref" -- "$KILN" run "$RELU/model.onnx" --inputs "$RELU/test_data_set_0" --outputs "$TMP/out" --npy
[ -f "$TMP/out/output_0.pb" ] && [ -f "$TMP/out/output_0.npy" ] && ok || bad "run did not write outputs"
mkdir -p "$TMP/rerun"
cp "$TMP/out/output_0.pb" "$TMP/rerun/output_0.pb"
cp "$RELU/test_data_set_0/input_0.pb" "$TMP/rerun/input_0.pb"
cp "$RELU/model.onnx" "$TMP/rerun/model.onnx"
mkdir -p "$TMP/rerun/test_data_set_0" && mv "$TMP/rerun/"*.pb "$TMP/rerun/test_data_set_0/"
expect 0 "^pass" -- "$KILN" check "$TMP/rerun"
expect 0 "random input" -- "$KILN" run "$RELU/model.onnx"
expect 1 "no input of that name" -- "$KILN" run "$RELU/model.onnx" --input nosuch="$TMP/out/output_0.npy"
expect 1 "target 'gpu' is not available" -- "$KILN" run "$RELU/model.onnx" --target gpu

# --target cpu, and Lua schedule scripts: a broken script fails with its file and line
expect 0 "ran on target cpu" -- "$KILN" run "$RELU/model.onnx" --target cpu --inputs "$RELU/test_data_set_0"
printf 'function schedule.elemwise(s)\n  s:split(s.axis.nosuch, 4)\nend\n' >"$TMP/bad.lua"
expect 1 "bad.lua:2: " -- "$KILN" run "$RELU/model.onnx" --target cpu --schedules "$TMP/bad.lua"
printf 'function schedule.elemwise(s\n' >"$TMP/syntax.lua"
expect 1 "syntax.lua:[0-9]+: " -- "$KILN" run "$RELU/model.onnx" --target cpu --schedules "$TMP/syntax.lua"
expect 1 "needs --target cpu" -- "$KILN" run "$RELU/model.onnx" --schedules "$TMP/bad.lua"
expect 0 "median [0-9.]+ ms" -- "$KILN" bench "$RELU/model.onnx" --repeat 2 --warmup 0 --json
expect 0 "profile: [0-9.]+ ms per run in 1 steps" -- "$KILN" bench "$RELU/model.onnx" --repeat 2 --profile

# inspect and conformance
expect 0 "Relu" -- "$KILN" inspect "$RELU/model.onnx"
expect 0 "-- loop IR" -- "$KILN" inspect "$RELU/model.onnx" --kernels
expect 0 "define void @kiln_k0" -- "$KILN" inspect "$RELU/model.onnx" --kernels --llvm
expect 0 "conformance \(target ref\): [0-9]+ cases .* [1-9][0-9]* passed" -- "$KILN" conformance "$CASES" --filter test_relu

# graph passes
expect 0 "fold_constants +-O0" -- "$KILN" inspect --passes
expect 0 "Relu" -- "$KILN" inspect "$RELU/model.onnx" --after fold_constants
expect 2 "no pass is named 'nosuch'" -- "$KILN" inspect "$RELU/model.onnx" --after nosuch
expect 2 "no pass is named 'nosuch'" -- "$KILN" run "$RELU/model.onnx" --target cpu --disable-pass nosuch
expect 0 "ran on target cpu" -- "$KILN" run "$RELU/model.onnx" --target cpu -O0 --verify-passes
printf 'graph "t" {\n  opset 17\n  input %%x : f32[2,8]\n  const %%one : f32[] = {1}\n  %%a = Identity(%%x)\n  %%b = Mul(%%a, %%one)\n  %%c = Relu(%%b)\n  output %%c : f32[2,8]\n}\n' >"$TMP/t.kir"
expect 0 "nodes: +1 \(1 op types\)" -- "$KILN" inspect "$TMP/t.kir" --after simplify --no-graph
expect 0 "nodes: +3 \(3 op types\)" -- "$KILN" inspect "$TMP/t.kir" --after fold_constants --no-graph
expect 1 "need an ONNX model" -- "$KILN" inspect "$TMP/t.kir" --kernels

# tuning into a records database, and using it
CONV=$CASES/test_basic_conv_with_padding
expect 0 "[0-9]+ tasks, [0-9]+ schedules" -- "$KILN" tune "$CONV/model.onnx" --list
expect 2 "--db FILE is required" -- "$KILN" tune "$CONV/model.onnx"
expect 0 "model \(sum of weight x kernel time\): default" -- "$KILN" tune "$CONV/model.onnx" --db "$TMP/t.db" --trials 3 --batch 3 --plot "$TMP/curve.svg"
if grep -q "<svg" "$TMP/curve.svg" 2>/dev/null; then ok; else bad "tune --plot wrote no svg"; fi
expect 0 "in 0.0 s" -- "$KILN" tune "$CONV/model.onnx" --db "$TMP/t.db" --trials 3 --batch 3
expect 0 "records: 1 kernel\(s\) tuned" -- "$KILN" run "$CONV/model.onnx" --target cpu --db "$TMP/t.db"
expect 0 "records: 0 kernel\(s\) tuned, 0 from a declared fallback, 1 untuned" -- "$KILN" bench "$CONV/model.onnx" --threads 2 --repeat 1 --db "$TMP/t.db"
expect 0 "records: 0 kernel\(s\) tuned, 1 from a declared fallback" -- "$KILN" bench "$CONV/model.onnx" --threads 2 --repeat 1 --db "$TMP/t.db" --db-fallback runtime.threads
expect 0 "records +[1-9]" -- "$KILN" db stats "$TMP/t.db"
expect 1 "not a kiln records database" -- "$KILN" run "$CONV/model.onnx" --target cpu --db "$TMP/garbage.onnx"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
