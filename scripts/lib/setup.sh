# Shared by the scripts in scripts/: idempotent "ensure X is installed" steps.
# Each step does nothing when X is already there. Source it; don't run it.

export PATH="$PATH:$HOME/.cargo/bin:/usr/local/sbin:/usr/sbin:/sbin"
export DEBIAN_FRONTEND=noninteractive
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# apt_install PKG...: installs Debian packages (needs root or sudo).
apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "need root to install: $* (apt-get install -y $*)"
    sudo="sudo"
  fi
  say "installing Debian packages: $*"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "$@" >/dev/null
}

ensure_wasm_target() {
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown && return
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
}

# wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock.
ensure_wasm_bindgen() {
  local want have
  want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/,"",$3); print $3}' "$ROOT/Cargo.lock")
  have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
  [ "$have" = "$want" ] && return
  say "installing wasm-bindgen-cli $want (a few minutes, once)"
  # --locked fails here (its lockfile pins a webpki-roots the registry lacks): fall back.
  # --force: cargo may believe it is installed while the binary is gone.
  cargo install wasm-bindgen-cli --version "$want" --locked --force 2>/dev/null \
    || cargo install wasm-bindgen-cli --version "$want" --force
  have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
  [ "$have" = "$want" ] || die "wasm-bindgen-cli $want did not install (found: ${have:-none})"
}

ensure_npm_deps() {
  command -v npm >/dev/null || apt_install nodejs npm
  if [ ! -d "$ROOT/node_modules/playwright-core" ] || [ ! -x "$ROOT/node_modules/.bin/wasm-opt" ] \
     || [ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
    say "installing npm dependencies"
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

ensure_chromium() {
  command -v chromium >/dev/null && command -v chromedriver >/dev/null && return
  apt_install chromium chromium-driver
}

ensure_postgres() {
  [ -n "${DATABASE_URL:-}" ] && return
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && return
  apt_install postgresql
}

# The OpenAPI checker's virtualenv (PyPI openapi-core, with openapi-spec-validator), as the
# test harness uses it (tests/harness/src/openapi.rs keeps the same path and pin).
ensure_openapi_checker() {
  local venv="$ROOT/target/openapi-venv"
  [ -f "$venv/.installed" ] && return
  say "installing the OpenAPI checker (PyPI openapi-core) into target/openapi-venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "openapi-core==0.23.1"
  echo "openapi-core==0.23.1" > "$venv/.installed"
}

# Debian's nginx, the load balancer of the replica tests (tests/harness/src/nginx.rs). The
# package's own service is not started (the tests run nginx with their own configuration).
ensure_nginx() {
  [ -x /usr/sbin/nginx ] && return
  apt_install nginx
}

# The S3 test peer, s3s-fs from crates.io (tests/harness/src/s3.rs runs the same script).
ensure_s3_peer() {
  "$ROOT/scripts/install-s3s" >/dev/null
}

ensure_kubo() {
  "$ROOT/scripts/install-kubo" >/dev/null
}

# The demo app's own package (it links @cairn/client from pkg/; Vite comes from the root).
ensure_www_deps() {
  [ -e "$ROOT/www/node_modules/@cairn/client" ] && return
  say "linking the demo app to the package"
  (cd "$ROOT/www" && npm ci --no-audit --no-fund --loglevel=error)
}

# Builds the demo app (www/) into www/dist with Vite.
build_www() {
  ensure_www_deps
  say "building the demo app (www/dist)"
  (cd "$ROOT/www" && "$ROOT/node_modules/.bin/vite" build --emptyOutDir)
}
