# Installing the Debian packages .ci/run needs, or stopping with a message
# that names them and the command to run: never half-way with a permission
# error. Sourced by .ci/run (and by tests/it/ci_script.rs with stand-ins
# for id, sudo and apt-get on PATH).

# install_debian_packages PACKAGE...: as root directly; otherwise through
# sudo when it works without a password, or asks for one at a terminal.
install_debian_packages() {
  local as_root
  local fix="apt-get update && apt-get install -y $*"
  if [ "$(id -u)" = 0 ]; then
    as_root=""
  elif command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
    as_root="sudo -E"
    fix="sudo apt-get update && sudo apt-get install -y $*"
  else
    {
      echo "error: the tests need the Debian package(s): $*"
      echo "Installing them needs root, and this user is not root and has no working sudo."
      echo "Ask an administrator to run (or run as root):"
      echo "  $fix"
      echo "then run bash .ci/run again."
    } >&2
    exit 1
  fi
  echo "installing the Debian package(s) $* ($([ -n "$as_root" ] && echo "through sudo" || echo "as root"))" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! $as_root apt-get update -qq || ! $as_root apt-get install -y -qq "$@" >/dev/null; then
    {
      echo "error: could not install the Debian package(s): $* (see apt-get's message above)."
      echo "Install them with:"
      echo "  $fix"
      echo "then run bash .ci/run again."
    } >&2
    exit 1
  fi
}
