#!/usr/bin/env bash
# `npm run dev`: install what is missing (npm dependencies; deploy/services.sh builds or installs
# the services), start the shared services, then hand over to the supervisor, which runs the
# platform's processes with the services' addresses in their environment and seeds a demo tenant.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE_DIR=$(realpath -m "${SF_STATE_DIR:-$REPO_ROOT/.sidekick/services}") # as in services.sh

start_services() {
  bash "$REPO_ROOT/deploy/services.sh" up
}

# load_services_env: export what `services.sh up` wrote (NATS_URL, SF_DATABASE_URL, LIVEKIT_*).
load_services_env() {
  # shellcheck source=/dev/null # written by services.sh up
  source "$STATE_DIR/services.env"
}

# ensure_master_key: the credential envelope's master key for this checkout (the one secret the
# platform takes from its environment), made once and kept, readable only by its owner.
ensure_master_key() {
  if [[ -n ${SF_MASTER_KEYS:-} ]]; then return; fi
  local file="$REPO_ROOT/.sidekick/master.key"
  if [[ ! -s $file ]]; then
    mkdir -p "$(dirname "$file")"
    (umask 077 && head -c 32 /dev/urandom | base64 > "$file")
  fi
  SF_MASTER_KEYS="dev:$(cat "$file")"
  export SF_MASTER_KEYS
}

# ensure_admin_token: the embedded default's admin token (the admin API and, later, /admin),
# made once per checkout and printed, since there is no Supabase Auth in the embedded setup.
ensure_admin_token() {
  if [[ -n ${SF_ADMIN_TOKEN:-} ]]; then return; fi
  local file="$REPO_ROOT/.sidekick/admin.token"
  if [[ ! -s $file ]]; then
    mkdir -p "$(dirname "$file")"
    (umask 077 && head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' > "$file")
  fi
  SF_ADMIN_TOKEN=$(cat "$file")
  export SF_ADMIN_TOKEN
}

# ensure_node: Node 20 or newer, and the npm dependencies installed from package-lock.json
# (again when the lock file is newer than the install).
ensure_node() {
  command -v node >/dev/null || {
    echo "dev: Node.js 20 or newer is needed (https://nodejs.org); node is not on PATH" >&2
    exit 1
  }
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  ((major >= 20)) || {
    echo "dev: Node.js 20 or newer is needed; this is $(node --version)" >&2
    exit 1
  }
  local stamp=$REPO_ROOT/node_modules/.package-lock.json
  if [[ ! -f $stamp || $REPO_ROOT/package-lock.json -nt $stamp ]]; then
    echo "dev: installing the npm dependencies (npm ci)"
    (cd "$REPO_ROOT" && npm ci --no-audit --no-fund)
  fi
  # npm ci applies it as well ("postinstall"); again here for a checkout installed before a fix was
  # added (idempotent, and it fails when a fix no longer fits the installed version).
  node "$REPO_ROOT/deploy/patch_dependencies.mjs"
}

# build_assets: the console's stylesheet (Tailwind, compiled from the templates' classes).
build_assets() {
  (cd "$REPO_ROOT" && npm run --silent build)
}

main() {
  ensure_node
  build_assets
  start_services
  load_services_env
  ensure_master_key
  ensure_admin_token
  export SF_GATEWAY_PORT=${SF_GATEWAY_PORT:-8080}
  # The platform and the demo tenant use embedded PGlite under ./.sidekick (platform/,
  # tenants/demo/); set SF_PLATFORM_DATABASE_URL to keep the platform on PostgreSQL instead.
  export SF_DATA_DIR=${SF_DATA_DIR:-./.sidekick}
  echo "dev: NATS $NATS_URL, LiveKit $LIVEKIT_URL, data in $SF_DATA_DIR"
  # The supervisor (actors/cli/dev/run_dev.ts) runs the actor host, the gateway and the agent
  # worker, restarts one that exits (backoff 1 s doubling to 30 s), seeds the demo tenant once
  # and prints the addresses, the admin token, the demo API key and curl commands. Ctrl-C stops all.
  cd "$REPO_ROOT"
  exec node --import tsx actors/cli/dev/run_dev.ts
}

main "$@"
