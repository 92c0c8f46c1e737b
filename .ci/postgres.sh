# A throwaway PostgreSQL cluster for the tests: initdb in a temporary
# folder, owned by an unprivileged user (PostgreSQL refuses to run as root),
# listening only on 127.0.0.1 at a free port, with a password (scram) for
# the role `rxsync`. Sourced by .ci/run; also runnable by hand:
#
#   . .ci/postgres.sh && start_test_postgres   # exports RXSYNC_TEST_PG_URL
#   ... cargo test --test it db_ -- --include-ignored ...
#   stop_test_postgres                         # stops it, removes the folder
#
# start_test_postgres sets no trap of its own: the caller does (.ci/run
# traps EXIT). The binaries are Debian's (/usr/lib/postgresql/N/bin), or
# whatever pg_ctl is on PATH.

# pg_bin: the folder of initdb and pg_ctl (the newest Debian one first).
pg_bin() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  command -v pg_ctl >/dev/null 2>&1 && { dirname "$(command -v pg_ctl)"; return 0; }
  return 1
}

# as_owner CMD...: runs CMD as the cluster's owner (rxsync-ci when root).
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u rxsync-ci -- "$@"
  else
    "$@"
  fi
}

start_test_postgres() {
  local bin port password
  bin=$(pg_bin) || { echo "error: PostgreSQL's initdb was not found (install Debian's postgresql)" >&2; return 1; }
  if [ "$(id -u)" = 0 ] && ! id rxsync-ci >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin rxsync-ci
  fi
  RXSYNC_TEST_PG_DIR=$(mktemp -d /tmp/rxsync-pg.XXXXXX)
  export RXSYNC_TEST_PG_DIR
  chmod 700 "$RXSYNC_TEST_PG_DIR"
  [ "$(id -u)" = 0 ] && chown rxsync-ci "$RXSYNC_TEST_PG_DIR"
  password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  printf '%s\n' "$password" > "$RXSYNC_TEST_PG_DIR/pw"
  [ "$(id -u)" = 0 ] && chown rxsync-ci "$RXSYNC_TEST_PG_DIR/pw"
  as_owner "$bin/initdb" -D "$RXSYNC_TEST_PG_DIR/data" -U rxsync --pwfile="$RXSYNC_TEST_PG_DIR/pw" \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C >"$RXSYNC_TEST_PG_DIR/initdb.log" 2>&1 \
    || { cat "$RXSYNC_TEST_PG_DIR/initdb.log" >&2; return 1; }
  rm -f "$RXSYNC_TEST_PG_DIR/pw"
  # A free port: try a few at random until the server starts on one.
  for _ in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 20000))
    if as_owner "$bin/pg_ctl" -D "$RXSYNC_TEST_PG_DIR/data" -l "$RXSYNC_TEST_PG_DIR/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $RXSYNC_TEST_PG_DIR -c max_connections=200 -c fsync=off" \
      start >/dev/null 2>&1; then
      export RXSYNC_TEST_PG_URL="postgres://rxsync:$password@127.0.0.1:$port/postgres"
      echo "started a throwaway PostgreSQL ($("$bin/postgres" --version)) on 127.0.0.1:$port in $RXSYNC_TEST_PG_DIR" >&2
      return 0
    fi
  done
  echo "error: could not start PostgreSQL (see $RXSYNC_TEST_PG_DIR/server.log):" >&2
  cat "$RXSYNC_TEST_PG_DIR/server.log" >&2 || true
  return 1
}

stop_test_postgres() {
  local bin
  [ -n "${RXSYNC_TEST_PG_DIR:-}" ] && [ -d "$RXSYNC_TEST_PG_DIR" ] || return 0
  bin=$(pg_bin) || true
  if [ -n "$bin" ] && [ -f "$RXSYNC_TEST_PG_DIR/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$RXSYNC_TEST_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$RXSYNC_TEST_PG_DIR"
  unset RXSYNC_TEST_PG_DIR RXSYNC_TEST_PG_URL
}
