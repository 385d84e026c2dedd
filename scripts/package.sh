#!/usr/bin/env bash
# Builds the npm package into www/npm/ (then `npm pack www/npm` makes the tarball): the
# `Fitter` API as ES modules with TypeScript declarations, the wasm engine, and the model files
# with their manifest. Needs `make wasm` (www/src/pkg) and `make models` (www/public/models).
set -euo pipefail
cd "$(dirname "$0")/../www"
[ -f src/pkg/ganfit_bg.wasm ] || { echo "package: src/pkg is missing (make wasm)" >&2; exit 1; }
[ -f public/models/manifest.json ] || { echo "package: public/models/manifest.json is missing (make models)" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' ../Cargo.toml | head -1)

rm -rf npm
npx tsc -p tsconfig.lib.json
# The worker is TypeScript in the app (Vite compiles it) and JavaScript in the package.
sed -i "s#new URL('./worker.ts', import.meta.url)#new URL('./worker.js', import.meta.url)#" npm/dist/lib/fitter.js
grep -q "new URL('./worker.js', import.meta.url)" npm/dist/lib/fitter.js || { echo "package: worker URL not rewritten" >&2; exit 1; }
mkdir -p npm/dist/pkg npm/models
cp src/pkg/ganfit.js src/pkg/ganfit.d.ts src/pkg/ganfit_bg.wasm src/pkg/ganfit_bg.wasm.d.ts npm/dist/pkg/
cp public/models/manifest.json npm/models/
for f in $(node -e 'const m = require("./public/models/manifest.json"); for (const f of Object.values(m.files)) console.log(f.name)'); do
    cp public/models/"$f" npm/models/
done
cp ../README.npm.md npm/README.md
fflate=$(node -p 'require("./package.json").dependencies.fflate')
cat > npm/package.json <<JSON
{
  "name": "ganfit",
  "version": "$version",
  "description": "3D face reconstruction from photos (GANFit-style) in the browser, on WebGPU",
  "type": "module",
  "main": "./dist/lib/index.js",
  "types": "./dist/lib/index.d.ts",
  "exports": {
    ".": { "types": "./dist/lib/index.d.ts", "import": "./dist/lib/index.js" },
    "./models/*": "./models/*",
    "./package.json": "./package.json"
  },
  "files": ["dist", "models", "README.md"],
  "sideEffects": false,
  "dependencies": { "fflate": "$fflate" },
  "license": "MIT"
}
JSON
echo "package: www/npm ($(du -sh npm | cut -f1)); \`npm pack ./www/npm\` makes the tarball"
