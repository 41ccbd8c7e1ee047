#!/bin/sh
# The image's entrypoint: the first argument chooses the process, the rest is passed on.
#   gateway             gateway/main.ts       HTTP/WS on SF_GATEWAY_PORT (the image sets 8080)
#   actor-host          actors/main.ts        metrics on SF_METRICS_PORT (default 9464)
#   worker              agent-worker/main.ts  metrics on SF_METRICS_PORT (default 9465)
#   sidekick ARGS...    the operator CLI, actors/cli/sidekick/main.ts; in a checkout without it,
#                       `sidekick NAME ARGS...` runs the one-shot script actors/cli/NAME.ts
#                       (rotate-keys, reembed)
# Each process reads its configuration from the environment (gateway/config.ts, actors/config.ts,
# agent-worker/config.ts) and hands its work over on SIGTERM; tini (PID 1) forwards the signal.
set -eu
# The app's root: this file is <root>/deploy/docker/entrypoint.sh (/app in the image).
cd "$(dirname "$0")/../.."

run() {
  exec node --import tsx "$@"
}

usage() {
  echo "usage: <image> gateway | actor-host | worker | sidekick COMMAND [ARGS...]" >&2
  exit 2
}

[ $# -gt 0 ] || usage
command=$1
shift
case $command in
  gateway) run gateway/main.ts "$@" ;;
  actor-host | actors) run actors/main.ts "$@" ;;
  worker | agent-worker)
    # glibc malloc for the worker (glibc reads it, not our code; the dev supervisor sets the same,
    # WORKER_MALLOC_ENV in actors/runtime/process_env.ts): at most 2 arenas instead of 8 per core.
    # The LiveKit FFI's native threads spread the voice sessions' allocations over many arenas that
    # keep what was freed: with 10 sessions open the worker's native memory measured 112-154 MiB
    # with 2 arenas, 184-185 without (bench/voice.ts, docs/capacity.md). An operator's own wins.
    MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}
    export MALLOC_ARENA_MAX
    run agent-worker/main.ts "$@"
    ;;
  sidekick)
    if [ -f actors/cli/sidekick/main.ts ]; then run actors/cli/sidekick/main.ts "$@"; fi
    [ $# -gt 0 ] || {
      names=""
      for file in actors/cli/*.ts; do
        name=${file##*/}
        names="$names $(printf '%s' "${name%.ts}" | tr '_' '-')"
      done
      echo "sidekick: commands:$names" >&2
      exit 2
    }
    name=$(printf '%s' "$1" | tr '-' '_')
    shift
    case $name in
      *[!a-z0-9_]*) usage ;;
    esac
    [ -f "actors/cli/$name.ts" ] || {
      echo "sidekick: no command \"$name\" (actors/cli/$name.ts)" >&2
      exit 2
    }
    run "actors/cli/$name.ts" "$@"
    ;;
  -h | --help | help) usage ;;
  *)
    # Anything else runs as given (a shell for debugging, say).
    exec "$command" "$@"
    ;;
esac
