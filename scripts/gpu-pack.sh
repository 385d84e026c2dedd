#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs into gpu-pack/ (gitignored), built here so that the GPU
# machine builds nothing: the release CLI, stripped and compressed, and the models `bench fit`
# loads, compressed, with the sample photo it fits. The device tool carries ignored paths of at
# most 64 MiB in all; the script prints the total.
#
#   make native models && scripts/gpu-pack.sh
#   then, with the device tool: run carry=["gpu-pack"] command="scripts/gpu-check.sh"
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
data="${GANFIT_DATA:-../shared/data}"
rm -rf gpu-pack && mkdir -p gpu-pack/models
strip -o gpu-pack/ganfit "$target/release/ganfit"
zstd -q -19 -T0 --rm gpu-pack/ganfit -o gpu-pack/ganfit.zst
for model in face_model.gfm texture_pca.bpk blazeface.bpk facemesh.bpk face_landmarks68.bpk \
    faceres.bpk; do
    zstd -q -19 -T0 "models/$model" -o "gpu-pack/models/$model.zst"
done
grep -E ' (face_model.gfm|texture_pca.bpk|blazeface.bpk|facemesh.bpk|face_landmarks68.bpk|faceres.bpk)$' \
    models/SHA256SUMS > gpu-pack/models/SHA256SUMS || true
cp "$data/samples/astronaut.png" gpu-pack/ 2>/dev/null || echo "no sample photo: bench fit will be skipped"
du -sh gpu-pack
