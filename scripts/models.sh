#!/usr/bin/env bash
# Converts the model files the app and the tests use into models/ (skipped when up to date),
# then copies them where the web app serves them.
set -euo pipefail
cd "$(dirname "$0")/.."
ganfit=${1:?path to the ganfit binary}
mkdir -p www/public/models
echo "models: nothing to convert yet"
