# The test passes of .ci/run, on one throwaway PostgreSQL cluster
# (.ci/postgres.sh, sourced first: start_test_postgres, stop_test_postgres):
#
# 1. every test on SQLite, the #[ignore]d ones included (db_postgres's
#    tests use the cluster through RXSYNC_TEST_PG_URL);
# 2. the same store and integration tests on PostgreSQL
#    (RXSYNC_TEST_ENGINE=postgres: each store unit test and each TestEnv
#    gets a fresh database on the cluster). The #[ignore]d tests are not
#    run twice: they check outside oracles (oauthlib, fhir.resources,
#    Chromium, the FDA files) and db_postgres already ran against the
#    cluster, and CI's 2 cores must finish well inside 30 minutes.
#
# The cluster is stopped and removed when the calling script exits,
# however it exits (a failing pass stops the run: set -e in .ci/run).
run_test_passes() {
  trap stop_test_postgres EXIT
  start_test_postgres
  cargo test --all-targets --locked -- --include-ignored
  RXSYNC_TEST_ENGINE=postgres cargo test --lib --locked -- store::
  RXSYNC_TEST_ENGINE=postgres cargo test --test it --locked
}
