#!/usr/bin/env bash
# Texture-GAN training on the GPU machine, one command (it builds nothing): `ganfit texture
# train` for MINUTES (default 8) on its 16 CPU cores (burn's CPU backend is multi-threaded) or,
# with DEVICE=gpu, on its GPU; writes the checkpoint, the generator and the log under
# $OUT/gpu-train, for this machine to evaluate (`ganfit texture eval --gan`) and to resume
# (`ganfit texture train --resume .../gan.bpk.ckpt --minutes TOTAL`).
# Prepare the pack here first: `make native && scripts/gpu-train-pack.sh CORPUS`.
set -uo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-8}"
device="${DEVICE:-cpu}"
pack=gpu-train-pack
out="${OUT:-/tmp}/gpu-train"
mkdir -p "$out" /tmp/gpu-train-bin
zstd -q -d -f "$pack/ganfit.zst" -o /tmp/gpu-train-bin/ganfit && chmod +x /tmp/gpu-train-bin/ganfit
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
nproc | sed 's/^/cores: /' | tee "$out/log.txt"
timeout $(( minutes * 60 + 120 )) /tmp/gpu-train-bin/ganfit texture train \
    --corpus "$pack/corpus" --out "$out/gan.bpk" --minutes "$minutes" --device "$device" \
    --channels "${CHANNELS:-128}" --full-channel-levels "${FULL_LEVELS:-2}" \
    --min-channels "${MIN_CHANNELS:-16}" --batch "${BATCH:-32,32,32,16,16}" \
    2>&1 | tee -a "$out/log.txt"
ls -la "$out" "$out/gan.bpk.ckpt" 2>/dev/null | tail -20
