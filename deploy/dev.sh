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

# run_actor_host: the actor host (tenant actors, platform store), in the foreground.
run_actor_host() {
  [[ -f $REPO_ROOT/actors/main.ts ]] || {
    echo "dev: $REPO_ROOT/actors/main.ts does not exist" >&2
    exit 1
  }
  cd "$REPO_ROOT"
  exec node --import tsx actors/main.ts
}

main() {
  start_services
  load_services_env
  echo "dev: NATS $NATS_URL, LiveKit $LIVEKIT_URL; starting the actor host (Ctrl-C stops it)"
  run_actor_host
}

main "$@"
