#!/usr/bin/env bash
# The renderer's GPU check, one command on a GPU machine (well under 10 minutes; it builds
# nothing): the self-test (every op's backward against the CPU reference, the scatter stress
# cases, run-to-run bitwise equality), `bench raster` on the GPU with the CPU reference of the
# same machine in the same run, and `bench fit` at 160² and 224² when the pack holds the models.
# Prepare the pack here first: `make native models && scripts/gpu-pack.sh`.
set -uo pipefail
cd "$(dirname "$0")/.."
pack=gpu-pack
out="${OUT:-/tmp}/gpu-check"
mkdir -p "$out" /tmp/gpu-check-bin/models
zstd -q -d -f "$pack/ganfit.zst" -o /tmp/gpu-check-bin/ganfit && chmod +x /tmp/gpu-check-bin/ganfit
for f in "$pack"/models/*.zst; do
    [ -e "$f" ] && zstd -q -d -f "$f" -o "/tmp/gpu-check-bin/models/$(basename "$f" .zst)"
done
cp "$pack/models/SHA256SUMS" /tmp/gpu-check-bin/models/ 2>/dev/null || true
ganfit=/tmp/gpu-check-bin/ganfit
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

echo "== devices"; "$ganfit" devices | tee "$out/devices.txt"
echo "== selftest"; timeout 120 "$ganfit" selftest --device gpu 2>&1 | tee "$out/selftest.txt"
echo "== bench raster"
timeout 240 "$ganfit" bench raster --device gpu --device cpu --repeat 5 2>&1 | tee "$out/raster.txt"
if [ -e "$pack/astronaut.png" ] && [ -e /tmp/gpu-check-bin/models/face_model.gfm ]; then
    echo "== bench fit"
    timeout 180 "$ganfit" bench fit --device gpu --resolution 160 --resolution 224 --repeat 3 \
        --models /tmp/gpu-check-bin/models --photo "$pack/astronaut.png" 2>&1 | tee "$out/fit.txt"
else
    echo "== bench fit skipped: no models or photo in $pack"
fi
echo "== summary"
grep -E "^selftest|FAILED" "$out/selftest.txt"
grep -E "^\| (Gpu|Cpu) .*512x512 batch 4" "$out/raster.txt"
grep -E "stage: .*ms/iteration|whole fit" "$out/fit.txt" 2>/dev/null || true
