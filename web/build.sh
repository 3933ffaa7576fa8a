#!/usr/bin/env bash
# Builds the demo page into web/dist/, servable by any static file server: the crate for
# wasm32-unknown-unknown (release), its JavaScript bindings by wasm-bindgen (--target web),
# the page, and the digits data with its licence. Needs the wasm32-unknown-unknown target
# and wasm-bindgen-cli of exactly the version in web/Cargo.lock (.ci/web-test installs both).
set -euo pipefail
cd "$(dirname "$0")"

want=$(sed -n '/^name = "wasm-bindgen"$/{n;s/^version = "\(.*\)"$/\1/p;}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
    echo "web/build.sh: needs wasm-bindgen-cli $want (found ${have:-none}):" \
        "cargo install wasm-bindgen-cli --version $want --no-default-features --locked" >&2
    exit 1
fi

cargo build --release --target wasm32-unknown-unknown
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
rm -rf dist
mkdir -p dist
wasm-bindgen --target web --no-typescript --out-dir dist/pkg \
    "$target_dir/wasm32-unknown-unknown/release/wgpu_loss_web.wasm"
cp www/index.html www/main.js www/style.css dist/
cp ../data/digits.csv.gz ../data/LICENSE-digits.md dist/
echo "web/build.sh: built $(pwd)/dist (serve it, e.g. python3 -m http.server -d web/dist)"
