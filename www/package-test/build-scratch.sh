#!/usr/bin/env bash
# Packs www/npm into a tarball, installs it into a fresh Vite app (www/scratch), copies the
# package's models to the app's public folder as the package README says, and builds the app.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f npm/package.json ] || { echo "scratch: www/npm is missing (make package)" >&2; exit 1; }
rm -rf scratch ganfit-*.tgz
tarball=$(npm pack ./npm --pack-destination . 2>/dev/null | tail -1)
echo "scratch: packed $tarball ($(du -h "$tarball" | cut -f1))"
mkdir -p scratch
cp package-test/template/* scratch/
vite=$(node -p 'require("./package.json").devDependencies.vite')
cat > scratch/package.json <<JSON
{ "name": "ganfit-scratch-app", "private": true, "type": "module" }
JSON
(cd scratch && npm install --no-audit --no-fund --prefer-offline "../$tarball" "vite@$vite" >/dev/null)
mkdir -p scratch/public
cp -r scratch/node_modules/ganfit/models scratch/public/models
(cd scratch && npx vite build >/dev/null)
echo "scratch: built www/scratch/dist"
