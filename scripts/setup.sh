#!/usr/bin/env bash
# Installs what the build and the test tiers need; safe to run again (each step checks first).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${WASM_BINDGEN_VERSION:?set by the Makefile from Cargo.lock}"
APT_PACKAGES=(chromium chromium-driver mesa-vulkan-drivers libvulkan1 xz-utils)

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi

# The CLI must match the wasm-bindgen crate exactly.
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
    echo "setup: installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# npm ci only when the lock file changed since the last install.
npm_ci() {
    local dir=$1
    local stamp="$dir/node_modules/.ganfit-lock"
    if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
        echo "setup: npm ci in $dir"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        cp "$dir/package-lock.json" "$stamp"
    fi
}
npm_ci www
# The Khronos glTF validator that tests/face_model.rs runs on exported GLB files.
npm_ci tests/gltf-validator
[ -f models/package-lock.json ] && npm_ci models
echo "setup: ok"
