#!/usr/bin/env bash
# Paired A/B of the typed-seam refactor on the SQLite path (issue 13;
# BENCHMARKS.md, "Paired A/B: the store seam on the SQLite path"): this
# tree's `rxsync run --once` against the build from before the refactor,
# in alternating pairs on the same fresh copies, by the pull bench's
# RXSYNC_BENCH_AGAINST.
#
#   bash benches/ab-seam.sh                     # N = 1,000 and 10,000, concurrency 16, 7 pairs each
#   RXSYNC_BENCH_LINKS=1000 RXSYNC_BENCH_ONCE_REPS=5 bash benches/ab-seam.sh
#
# Builds both in release (the other in its own worktree, RXSYNC_AB_DIR,
# default /tmp/ab, at RXSYNC_AB_BASE, default 9f45796: the commit before
# "store: one seam over two engines"). Run it on a quiet machine: it takes
# two release builds and about 10 minutes of measuring. The other build
# knows an older SQLite schema than this tree's templates, so its copies
# are taken back to its version first (RXSYNC_BENCH_AGAINST_SCHEMA, which
# this script reads off its worktree).
set -euo pipefail
cd "$(dirname "$0")/.."

base=${RXSYNC_AB_BASE:-9f45796}
dir=${RXSYNC_AB_DIR:-/tmp/ab}
want=$(git rev-parse --verify "$base^{commit}")

if [ ! -e "$dir" ]; then
  git worktree add --detach "$dir" "$want"
fi
have=$(git -C "$dir" rev-parse HEAD)
if [ "$have" != "$want" ]; then
  echo "error: $dir is at $have, not $base ($want); remove it (git worktree remove $dir) or set RXSYNC_AB_DIR" >&2
  exit 1
fi

cargo build --release --locked --manifest-path "$dir/Cargo.toml" --bin rxsync
schema=$(git -C "$dir" ls-files 'schemas/sqlite/*.sql' | wc -l)

echo "A/B: this tree ($(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ', with uncommitted changes')) against $base (SQLite schema $schema), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
RXSYNC_BENCH_ONLY=once \
RXSYNC_BENCH_AGAINST="$dir/target/release/rxsync" \
RXSYNC_BENCH_AGAINST_SCHEMA="$schema" \
RXSYNC_BENCH_LINKS="${RXSYNC_BENCH_LINKS:-1000,10000}" \
RXSYNC_BENCH_CONCURRENCY="${RXSYNC_BENCH_CONCURRENCY:-16}" \
RXSYNC_BENCH_ONCE_REPS="${RXSYNC_BENCH_ONCE_REPS:-7}" \
  cargo bench --bench pull
