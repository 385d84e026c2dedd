#!/usr/bin/env bash
# Converts the model files the app and the tests use into models/ (skipped when up to date),
# then copies them where the web app serves them.
set -euo pipefail
cd "$(dirname "$0")/.."
ganfit=${1:?path to the ganfit binary}
data=${GANFIT_DATA:-../shared/data}
models=${GANFIT_MODELS:-models}
mkdir -p "$models" www/public/models

# ICT-FaceKit: from the data folder's archive, else from a clone of the upstream repository
# at the commit whose files models/ict-facekit.sha256 pins (the converter checks them all).
ict_commit=da5f95a607f5e6b37755b38d3385d7f2853732e5
face_model="$models/face_model.gfm"
ict_source="$data/ict-facekit.tar.xz"
if [ ! -f "$ict_source" ]; then
    ict_source="${GANFIT_CACHE:-$HOME/.cache/ganfit}/ICT-FaceKit"
    if [ "$(git -C "$ict_source" rev-parse HEAD 2>/dev/null)" != "$ict_commit" ]; then
        echo "models: $data/ict-facekit.tar.xz not found; cloning ICT-FaceKit at ${ict_commit:0:10}"
        rm -rf "$ict_source"
        git clone --quiet https://github.com/ICT-VGL/ICT-FaceKit "$ict_source"
        git -C "$ict_source" checkout --quiet "$ict_commit"
    fi
fi
# Stale: missing, older than its source or the checksum list, or written by another
# converter revision or format version (`model info --check` fails then).
if [ ! -f "$face_model" ] || [ "$ict_source" -nt "$face_model" ] || [ models/ict-facekit.sha256 -nt "$face_model" ] \
    || ! "$ganfit" model info --check "$face_model" >/dev/null 2>&1; then
    "$ganfit" model convert --source "$ict_source" --out "$face_model"
else
    echo "models: $face_model is up to date"
fi
cp "$face_model" www/public/models/

# The face networks (see models/README.md): converted from the npm packages `make setup`
# installs, again whenever a record is missing or older than its sources or the converter.
face_nets=(face_detector.bpk face_landmarks68.bpk face_resnet.bpk faceres.bpk blazeface.bpk facemesh.bpk)
face_sources=(tests/parity/package-lock.json tests/parity/vendor/human-models/.ganfit-integrity "$ganfit")
stale=0
for f in "${face_nets[@]}"; do
    [ -f "$models/$f" ] || { stale=1; continue; }
    for s in "${face_sources[@]}"; do
        [ "$models/$f" -nt "$s" ] || stale=1
    done
done
# The page's faceres is stored as f16 (half the download; within cosine 0.999 of the f32
# record, `f16_records_stay_close_to_f32` in tests/nets.rs); native code keeps f32.
page_faceres="$models/f16/faceres.bpk"
if ((stale)) || [ ! -f "$page_faceres" ] || [ "$page_faceres" -ot "$models/faceres.bpk" ]; then
    echo "models: converting the face networks"
    "$ganfit" nets convert --out "$models"
    "$ganfit" nets convert --out "$models/f16" --f16 --only faceres
else
    echo "models: face networks up to date"
fi
rm -f "$models/mobilefacenet.bpk" www/public/models/mobilefacenet.bpk
# The native loaders check every model file against this list (`io::read_model_file`), as the
# page checks its manifest.
(cd "$models" && sha256sum -- *.gfm *.bpk > SHA256SUMS)
echo "models: $models/SHA256SUMS"
# The browser finds faces with BlazeFace and the face mesh (a face the mesh refuses gets a
# canonical face posed by BlazeFace's keypoints); it never runs face-api's SSD detector or 68-point
# network (evaluation and `--eyes face-api` only) or the ResNet (the evaluation's judge). It
# fetches faceres only for a fit that switches the identity terms on.
for f in blazeface.bpk facemesh.bpk; do
    cp -p "$models/$f" www/public/models/
done
cp -p "$page_faceres" www/public/models/faceres.bpk
rm -f www/public/models/face_detector.bpk www/public/models/face_resnet.bpk www/public/models/face_landmarks68.bpk

# Texture models, when trained or built: the GAN's generator and the masked PCA model.
textures=()
for f in texture_gan.bpk texture_pca.bpk; do
    if [ -f "$models/$f" ]; then
        cp -p "$models/$f" www/public/models/
        textures+=("$f")
    else
        rm -f "www/public/models/$f"
    fi
done
((${#textures[@]})) || { echo "models: no texture model (texture_gan.bpk or texture_pca.bpk) in $models" >&2; exit 1; }

# manifest.json: what the web app and the npm package fetch, with sizes and SHA-256 (checked
# before use and kept with the Cache API copies).
entry() { # role file
    local path="www/public/models/$2"
    [ -f "$path" ] || return 0
    printf '    "%s": { "name": "%s", "size": %s, "sha256": "%s" }' "$1" "$2" "$(stat -c %s "$path")" "$(sha256sum "$path" | cut -d' ' -f1)"
}
# The texture model a fit uses when none is named: the rule lives in the library
# (TextureChoice::preferred_in), so the page and the CLI pick the same one.
preferred=$("$ganfit" texture default --models www/public/models)
{
    echo '{'
    echo "  \"texture\": \"$preferred\","
    echo '  "files": {'
    entries=()
    for pair in face_model:face_model.gfm blazeface:blazeface.bpk facemesh:facemesh.bpk \
        faceres:faceres.bpk texture_gan:texture_gan.bpk texture_pca:texture_pca.bpk; do
        line=$(entry "${pair%%:*}" "${pair#*:}")
        [ -n "$line" ] && entries+=("$line")
    done
    (IFS=$'\n'; printf '%s' "${entries[0]}"; for e in "${entries[@]:1}"; do printf ',\n%s' "$e"; done)
    printf '\n  }\n}\n'
} > www/public/models/manifest.json
echo "models: www/public/models/manifest.json (texture: $preferred)"
