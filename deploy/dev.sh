#!/usr/bin/env bash
# `npm run dev`: start the shared services (deploy/services.sh), then run the platform's processes
# with the services' addresses in their environment. One function per process.
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

PIDS=()

# start_process NAME SCRIPT: runs one platform process in the background, its output prefixed.
start_process() {
  local name=$1 script=$2
  [[ -f $REPO_ROOT/$script ]] || {
    echo "dev: $REPO_ROOT/$script does not exist" >&2
    exit 1
  }
  (cd "$REPO_ROOT" && exec node --import tsx "$script") > >(sed -u "s/^/[$name] /") 2>&1 &
  PIDS+=("$!")
}

# stop_all: SIGTERM every process (they hand their work over and exit), then wait for them.
stop_all() {
  trap - INT TERM
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
}

main() {
  start_services
  load_services_env
  ensure_master_key
  ensure_admin_token
  export SF_GATEWAY_PORT=${SF_GATEWAY_PORT:-8080}
  trap 'stop_all; exit 0' INT TERM
  start_process actor-host actors/main.ts
  start_process gateway gateway/main.ts
  start_process agent-worker agent-worker/main.ts
  echo "dev: NATS $NATS_URL, LiveKit $LIVEKIT_URL"
  echo "dev: gateway http://127.0.0.1:$SF_GATEWAY_PORT (try: curl http://127.0.0.1:$SF_GATEWAY_PORT/health/detailed); Ctrl-C stops everything"
  echo "dev: admin token $SF_ADMIN_TOKEN (try: curl -H \"Authorization: Bearer \$SF_ADMIN_TOKEN\" http://127.0.0.1:$SF_GATEWAY_PORT/api/v2/clients)"
  # When either process exits, stop the other and report the failure.
  local status=0
  wait -n || status=$?
  echo "dev: a process exited (status $status); stopping the rest" >&2
  stop_all
  exit "$status"
}

main "$@"
