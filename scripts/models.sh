#!/usr/bin/env bash
# Converts the model files the app and the tests use into models/ (skipped when up to date),
# then copies them where the web app serves them.
set -euo pipefail
cd "$(dirname "$0")/.."
ganfit=${1:?path to the ganfit binary}
mkdir -p www/public/models models

# The face networks (see models/README.md): converted from the npm packages `make setup`
# installs, again whenever a record is missing or older than its sources or the converter.
face_nets=(face_detector.bpk face_landmarks68.bpk face_resnet.bpk mobilefacenet.bpk)
face_sources=(tests/parity/package-lock.json tests/parity/vendor/human-models/.ganfit-integrity "$ganfit")
stale=0
for f in "${face_nets[@]}"; do
    [ -f "models/$f" ] || { stale=1; continue; }
    for s in "${face_sources[@]}"; do
        [ "models/$f" -nt "$s" ] || stale=1
    done
done
if ((stale)); then
    echo "models: converting the face networks"
    "$ganfit" nets convert --out models
else
    echo "models: face networks up to date"
fi
for f in "${face_nets[@]}"; do
    cp -p "models/$f" www/public/models/
done
