#!/usr/bin/env bash
# Packs what scripts/gpu-train.sh needs into gpu-train-pack/ (gitignored): the release CLI,
# stripped and compressed, and a training pack of the texture corpus (lossless PNG + masks, at
# most MAX textures, so that everything fits the device tool's 64 MiB carry: 3,000 textures at
# 64 texels high take 36 MB, the CLI 13 MB). A checkpoint to resume from (59 MB for the shipped
# generator's shape, most of it Adam's moments) does not fit beside them, so a run on the GPU
# machine starts fresh. The corpus is research-use data: it travels to the device machine for
# training and is never committed.
#
#   make native && scripts/gpu-train-pack.sh CORPUS [RESOLUTION=64] [MAX=3000]
#   then, with the device tool: run carry=["gpu-train-pack"] command="scripts/gpu-train.sh 8"
set -euo pipefail
cd "$(dirname "$0")/.."
corpus="${1:?usage: gpu-train-pack.sh CORPUS [RESOLUTION] [MAX]}"
resolution="${2:-64}"
max="${3:-3000}"
target="${CARGO_TARGET_DIR:-target}"
rm -rf gpu-train-pack && mkdir -p gpu-train-pack
strip -o gpu-train-pack/ganfit "$target/release/ganfit"
zstd -q -19 -T0 --rm gpu-train-pack/ganfit -o gpu-train-pack/ganfit.zst
"$target/release/ganfit" texture pack --corpus "$corpus" --out gpu-train-pack/corpus \
    --resolution "$resolution" --max "$max"
du -sh gpu-train-pack
