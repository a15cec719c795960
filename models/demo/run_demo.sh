#!/usr/bin/env bash
# Runs the demo image classifier (models/demo/shapes.onnx) in kiln on each
# sample image and prints what kiln sees in it:
#
#   circle/input_0.pb  ->  circle    (p 0.999)  ok
#
# usage: models/demo/run_demo.sh [KILN]   (default: build/kiln of this checkout)
# Exits 1 if kiln fails or a sample is classified wrongly.
set -euo pipefail
demo="$(cd "$(dirname "$0")" && pwd)"
kiln="${1:-$demo/../../build/kiln}"
if [ ! -x "$kiln" ]; then
  echo "run_demo: no kiln binary at $kiln (build first: scripts/build.sh)" >&2
  exit 1
fi

echo "kiln runs models/demo/shapes.onnx, a small CNN that tells 5 shapes apart in 32x32 images:"
right=0
total=0
for dir in "$demo"/samples/*/; do
  label="$(basename "$dir")"
  sample="$label/input_0.pb"
  if ! out="$("$kiln" run "$demo/shapes.onnx" --input "image=$dir/input_0.pb" \
                 --labels "$demo/labels.txt" --top 1 2>&1)"; then
    echo "$sample: kiln failed:" >&2
    echo "$out" >&2
    exit 1
  fi
  # The top-1 line reads "  1. LABEL  score S  p P".
  top="$(printf '%s\n' "$out" | awk '$1 == "1." { print $2, $NF; exit }')"
  if [ -z "$top" ]; then
    echo "$sample: no top-1 line in kiln's output:" >&2
    echo "$out" >&2
    exit 1
  fi
  read -r guess prob <<<"$top"
  total=$((total + 1))
  if [ "$guess" = "$label" ]; then
    mark="ok"
    right=$((right + 1))
  else
    mark="WRONG (expected $label)"
  fi
  printf '  %-20s ->  %-9s (p %s)  %s\n' "$sample" "$guess" "$prob" "$mark"
done
echo "$right of $total samples classified correctly (images: models/demo/samples/*/image.png)"
[ "$right" -eq "$total" ]
