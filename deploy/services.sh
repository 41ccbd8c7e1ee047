#!/usr/bin/env bash
# Shared development services for Sidekick Forge, on loopback only:
#   nats      nats-server with JetStream   127.0.0.1:4222 (monitor 8222)    deploy/nats/nats-dev.conf
#   postgres  PostgreSQL, its own cluster   127.0.0.1:54329                  settings below
#   livekit   livekit-server --dev          127.0.0.1:7880 (WebRTC udp 7882) deploy/livekit/livekit-dev.yaml
#
# Usage: deploy/services.sh [up|down|status|env]
#   up      install what is missing, start what is not running, wait until each is ready,
#           print the addresses and write them to <state dir>/services.env (the default)
#   down    stop what `up` started
#   status  one line per service; exits 3 when one is not running
#   env     print the `export` lines of services.env
#
# Versions and the binary cache come from deploy/versions.env. nats-server and livekit-server are
# built with `go install` into <cache root>/<tool>-<version>/; PostgreSQL comes from apt-get, and
# so do Chromium and ChromeDriver (/usr/bin/chromium), which the console's browser tests drive
# through playwright-core (no browser is ever downloaded by a test tool).
# State (data, logs, pid files) lives in $SF_STATE_DIR, by default <repo>/.sidekick/services.
set -euo pipefail
shopt -s inherit_errexit # so that die() inside "$(...)" stops the script too

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPLOY_DIR=$REPO_ROOT/deploy
STATE_DIR=$(realpath -m "${SF_STATE_DIR:-$REPO_ROOT/.sidekick/services}")
LOG_DIR=$STATE_DIR/logs
RUN_DIR=$STATE_DIR/run
SERVICES_ENV=$STATE_DIR/services.env

SERVICES=(nats postgres livekit)
START_TIMEOUT_S=60
STOP_TIMEOUT_S=20
POLL_INTERVAL_S=0.1
LOCK_TIMEOUT_S=1800 # a cold livekit-server build takes a few minutes on two cores

# Ports; the nats and livekit ones must match their config files.
NATS_PORT=4222
NATS_MONITOR_PORT=8222
PG_PORT=54329 # not 5432, so it never clashes with a system PostgreSQL
LIVEKIT_PORT=7880

# Debian's browser for tests/helpers/browser.ts (playwright-core launches this path).
CHROMIUM_BIN=/usr/bin/chromium
CHROMEDRIVER_BIN=/usr/bin/chromedriver

NATS_CONF=$DEPLOY_DIR/nats/nats-dev.conf
LIVEKIT_CONF=$DEPLOY_DIR/livekit/livekit-dev.yaml
NATS_MODULE=github.com/nats-io/nats-server/v2
LIVEKIT_MODULE=github.com/livekit/livekit-server/cmd/server

PG_ROLE=sidekick
PG_PASSWORD=sidekick
PG_DATABASE=sidekick
# Server settings, given on the command line so that they hold for existing clusters too.
PG_SETTINGS=(
  -c listen_addresses=127.0.0.1
  -c "port=$PG_PORT"
  -c unix_socket_directories= # TCP only: no socket directory to own or to outgrow
  -c max_connections=200      # several test processes, each with its own pool
)

log() { printf 'services: %s\n' "$*" >&2; }

die() {
  log "error: $*"
  exit 1
}

# show_log_tail FILE: the end of a service's log, for error messages.
show_log_tail() {
  [[ -f $1 ]] || return 0
  printf '    --- last lines of %s ---\n' "$1" >&2
  tail -n 40 "$1" | sed 's/^/    /' >&2
}

# ---------------------------------------------------------------------------------------------
# Versions and binaries

load_versions() {
  local file=$DEPLOY_DIR/versions.env key value cache_root=""
  [[ -f $file ]] || die "$file is missing"
  while IFS='=' read -r key value; do
    [[ -z $key || $key == \#* ]] && continue
    # shellcheck disable=SC2016 # the literal text ${HOME} is what we replace
    value=${value//'${HOME}'/$HOME}
    case $key in
      NATS_SERVER_VERSION) NATS_SERVER_VERSION=$value ;;
      LIVEKIT_SERVER_VERSION) LIVEKIT_SERVER_VERSION=$value ;;
      POSTGRES_MAJOR) POSTGRES_MAJOR=$value ;;
      SF_CACHE_ROOT) cache_root=$value ;;
      *) die "$file: unknown key $key" ;;
    esac
  done <"$file"
  for key in NATS_SERVER_VERSION LIVEKIT_SERVER_VERSION POSTGRES_MAJOR; do
    [[ -n ${!key:-} ]] || die "$file: $key is not set"
  done
  CACHE_ROOT=${SF_CACHE_ROOT:-$cache_root}
  [[ -n $CACHE_ROOT ]] || die "$file: SF_CACHE_ROOT is not set"
  NATS_BIN=$CACHE_ROOT/nats-server-$NATS_SERVER_VERSION/nats-server
  LIVEKIT_BIN=$CACHE_ROOT/livekit-server-$LIVEKIT_SERVER_VERSION/server
  PG_BIN=/usr/lib/postgresql/$POSTGRES_MAJOR/bin
}

find_go() {
  if command -v go >/dev/null; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    echo /usr/local/go/bin/go
  else
    die "Go is needed to build nats-server and livekit-server once; install it (https://go.dev/dl) or put it on PATH"
  fi
}

# lock_or_wait FD WHAT: take an exclusive flock on FD, saying so when someone else holds it.
lock_or_wait() {
  local fd=$1 what=$2
  if ! flock -n "$fd"; then
    log "waiting for another run that is $what"
    flock -w "$LOCK_TIMEOUT_S" "$fd" || die "gave up waiting after ${LOCK_TIMEOUT_S}s for another run that is $what"
  fi
}

# ensure_go_binary TOOL VERSION MODULE BINARY: build MODULE@VERSION into
# $CACHE_ROOT/TOOL-VERSION/BINARY unless it is there. A lock in the cache makes concurrent
# callers (from any checkout) wait for one build; the binary appears by an atomic rename.
ensure_go_binary() {
  local tool=$1 version=$2 module=$3 binary=$4
  local dir=$CACHE_ROOT/$tool-$version
  [[ -x $dir/$binary ]] && return 0

  mkdir -p "$CACHE_ROOT"
  exec 8>"$CACHE_ROOT/$tool-$version.lock"
  lock_or_wait 8 "building $tool $version"
  if [[ ! -x $dir/$binary ]]; then
    local go build_log tmp
    go=$(find_go)
    build_log=$LOG_DIR/build-$tool-$version.log
    tmp=$(mktemp -d "$CACHE_ROOT/.$tool-$version.XXXXXX")
    log "building $tool $version with $("$go" env GOVERSION) (once per machine; takes a few minutes)"
    if ! GOBIN=$tmp "$go" install "$module@$version" >"$build_log" 2>&1; then
      rm -rf "$tmp"
      show_log_tail "$build_log"
      die "go install $module@$version failed"
    fi
    mkdir -p "$dir"
    mv "$tmp/$binary" "$dir/$binary"
    rm -rf "$tmp"
    log "cached $dir/$binary"
  fi
  exec 8>&-
}

# apt_install WHY PACKAGE...: install Debian packages with apt-get (as root; one install at a time
# on the machine, under the cache's apt lock). WHY says what needs them, for the messages.
apt_install() {
  local why=$1
  shift
  local install="apt-get install -y --no-install-recommends $*"
  ((EUID == 0)) || die "missing $* ($why); install with: sudo $install"
  command -v apt-get >/dev/null || die "missing $* ($why) and no apt-get to install them with"
  mkdir -p "$CACHE_ROOT"
  exec 8>"$CACHE_ROOT/apt.lock"
  lock_or_wait 8 "installing packages"
  local apt_log=$LOG_DIR/apt-get.log
  log "installing $* with apt-get ($why)"
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; } >"$apt_log" 2>&1; then
    show_log_tail "$apt_log"
    die "$install failed"
  fi
  exec 8>&-
}

# ensure_apt_packages: PostgreSQL (and curl, for the readiness probes) from Debian, when missing.
ensure_apt_packages() {
  local missing=()
  [[ -x $PG_BIN/postgres ]] || missing+=("postgresql-$POSTGRES_MAJOR")
  command -v curl >/dev/null || missing+=(curl)
  ((${#missing[@]} > 0)) || return 0
  apt_install "the shared services need them" "${missing[@]}"
  [[ -x $PG_BIN/postgres ]] || die "$PG_BIN/postgres is still missing after installing postgresql-$POSTGRES_MAJOR"
}

# ensure_chromium: Debian's Chromium and ChromeDriver for the console's browser tests, when
# missing. Test tools never download a browser of their own (that fails on a closed network).
ensure_chromium() {
  local missing=()
  [[ -x $CHROMIUM_BIN ]] || missing+=(chromium)
  [[ -x $CHROMEDRIVER_BIN ]] || missing+=(chromium-driver)
  ((${#missing[@]} > 0)) || return 0
  apt_install "the console's browser tests drive $CHROMIUM_BIN" "${missing[@]}"
  [[ -x $CHROMIUM_BIN ]] || die "$CHROMIUM_BIN is still missing after installing chromium"
}

# chromium_version: what $CHROMIUM_BIN says of itself ("Chromium 156.0.8078.108 built on Debian …").
chromium_version() {
  local version
  version=$("$CHROMIUM_BIN" --version 2>/dev/null) || die "$CHROMIUM_BIN --version failed"
  echo "${version%% built on*}"
}

# ---------------------------------------------------------------------------------------------
# Processes

pid_file() { echo "$RUN_DIR/$1.pid"; }
log_file() { echo "$LOG_DIR/$1.log"; }

# running_pid SERVICE: print the pid from SERVICE's pid file if that process is alive and runs
# SERVICE's binary (so a recycled pid is not mistaken for it); fail otherwise.
running_pid() {
  local file pid exe
  file=$(pid_file "$1")
  [[ -f $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ $exe == "$(realpath -m "$("${1}_exe")")" ]] || return 1
  echo "$pid"
}

# spawn SERVICE COMMAND...: start COMMAND in its own session so that it outlives this script,
# with output appended to SERVICE's log; the pid goes to SERVICE's pid file and SPAWNED_PID.
# Without job control, setsid, nohup and setpriv all exec in place, so $! is the server itself.
spawn() {
  local service=$1
  shift
  printf '\n=== %s: %s\n' "$(date -Is)" "$*" >>"$(log_file "$service")"
  (cd / && exec setsid nohup "$@" </dev/null >>"$(log_file "$service")" 2>&1 8>&- 9>&-) &
  SPAWNED_PID=$!
  echo "$SPAWNED_PID" >"$(pid_file "$service")"
}

# port_in_use PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_ready SERVICE PID: poll SERVICE's readiness probe until it passes, PID dies, or the
# deadline passes.
wait_ready() {
  local service=$1 pid=$2
  local deadline=$((SECONDS + START_TIMEOUT_S))
  until "${service}_ready"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      show_log_tail "$(log_file "$service")"
      die "$service exited while starting"
    fi
    if ((SECONDS >= deadline)); then
      kill -KILL "$pid" 2>/dev/null || true # a half-started server is of no use to anyone
      rm -f "$(pid_file "$service")"
      show_log_tail "$(log_file "$service")"
      die "$service was not ready within ${START_TIMEOUT_S}s"
    fi
    sleep "$POLL_INTERVAL_S"
  done
}

# stop_service SERVICE: signal the process that `up` started and wait for it to exit.
stop_service() {
  local service=$1 pid
  if ! pid=$(running_pid "$service"); then
    rm -f "$(pid_file "$service")"
    if "${service}_ready"; then
      log "$service: left running (not started by this checkout)"
    else
      log "$service: not running"
    fi
    return 0
  fi
  kill "-$("${service}_stop_signal")" "$pid"
  local deadline=$((SECONDS + STOP_TIMEOUT_S))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "$service (pid $pid) did not exit within ${STOP_TIMEOUT_S}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 5))
      while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || die "$service (pid $pid) survived SIGKILL"
        sleep "$POLL_INTERVAL_S"
      done
      break
    fi
    sleep "$POLL_INTERVAL_S"
  done
  rm -f "$(pid_file "$service")"
  log "$service: stopped (pid $pid)"
}

# up_service SERVICE: make SERVICE run and answer; prints how it was found.
up_service() {
  local service=$1 pid port
  if pid=$(running_pid "$service"); then
    wait_ready "$service" "$pid"
    echo "already running (pid $pid)"
    return 0
  fi
  rm -f "$(pid_file "$service")"
  if "${service}_ready"; then
    "${service}_check_foreign"
    echo "already running (not started by this checkout, left alone by down)"
    return 0
  fi
  for port in $("${service}_ports"); do
    if port_in_use "$port"; then
      die "$service: port $port is taken by another program: $(port_owner "$port")"
    fi
  done
  "${service}_start"
  wait_ready "$service" "$SPAWNED_PID"
  "${service}_after_start"
  echo "started (pid $SPAWNED_PID)"
}

port_owner() {
  if command -v ss >/dev/null; then
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:.*' | head -n 1 || echo "unknown"
  else
    echo "unknown (install iproute2 for details)"
  fi
}

# ---------------------------------------------------------------------------------------------
# nats

nats_exe() { echo "$NATS_BIN"; }
nats_ports() { echo "$NATS_PORT $NATS_MONITOR_PORT"; }
nats_stop_signal() { echo TERM; }
nats_address() { echo "nats://127.0.0.1:$NATS_PORT (monitor http://127.0.0.1:$NATS_MONITOR_PORT)"; }

nats_ready() {
  curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$NATS_MONITOR_PORT/healthz?js-enabled-only=true" 2>/dev/null
}

nats_start() {
  mkdir -p "$STATE_DIR/nats"
  spawn nats env "SF_NATS_STORE_DIR=$STATE_DIR/nats" "$NATS_BIN" -c "$NATS_CONF"
}

nats_after_start() { :; }
# nats_check_foreign: a server this checkout did not start must at least be our version.
nats_check_foreign() {
  local varz
  varz=$(curl -fsS --max-time 2 "http://127.0.0.1:$NATS_MONITOR_PORT/varz")
  [[ $varz =~ \"version\":\ *\"([^\"]*)\" ]] || die "nats on port $NATS_PORT: no version in /varz"
  [[ v${BASH_REMATCH[1]} == "$NATS_SERVER_VERSION" ]] ||
    die "nats on port $NATS_PORT is v${BASH_REMATCH[1]}, not $NATS_SERVER_VERSION; stop it first"
}

# ---------------------------------------------------------------------------------------------
# postgres

postgres_exe() { echo "$PG_BIN/postgres"; }
postgres_ports() { echo "$PG_PORT"; }
postgres_stop_signal() { echo INT; } # "fast" shutdown: SIGTERM would wait for clients to leave
postgres_address() { database_url; }

database_url() { echo "postgres://$PG_ROLE:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DATABASE"; }

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

postgres_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 1 2>/dev/null; }

# postgres_base_dir: <state dir>/postgres, owned by the postgres user. When that user cannot
# reach the state dir (a checkout under /root, say), the cluster lives under
# /var/lib/sidekick-forge instead and <state dir>/postgres is a symlink to it.
postgres_base_dir() {
  local link=$STATE_DIR/postgres
  if [[ ! -e $link ]]; then
    if as_postgres test -x "$STATE_DIR"; then
      mkdir "$link"
    else
      local elsewhere
      elsewhere=/var/lib/sidekick-forge/postgres-$(printf '%s' "$STATE_DIR" | cksum | cut -d' ' -f1)
      mkdir -p "$elsewhere"
      ln -s "$elsewhere" "$link"
    fi
    chown postgres:postgres "$(realpath "$link")"
    chmod 700 "$(realpath "$link")"
  fi
  realpath "$link"
}

postgres_start() {
  id postgres >/dev/null 2>&1 || die "there is no postgres user; reinstall postgresql-$POSTGRES_MAJOR"
  local data
  data=$(postgres_base_dir)/data
  if [[ ! -f $data/PG_VERSION ]]; then
    log "postgres: creating a cluster in $data"
    if ! (cd / && as_postgres "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust \
      --encoding=UTF8 --locale=C) >>"$(log_file postgres)" 2>&1; then
      show_log_tail "$(log_file postgres)"
      die "initdb failed"
    fi
  elif [[ $(<"$data/PG_VERSION") != "$POSTGRES_MAJOR" ]]; then
    die "$data holds a PostgreSQL $(<"$data/PG_VERSION") cluster, not $POSTGRES_MAJOR; remove it to start afresh"
  fi
  spawn postgres setpriv --reuid=postgres --regid=postgres --init-groups -- \
    "$PG_BIN/postgres" -D "$data" "${PG_SETTINGS[@]}"
}

# postgres_after_start: the sidekick role (CREATEDB, so suites can make scratch databases) and
# database, created once.
postgres_after_start() {
  "$PG_BIN/psql" -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres >/dev/null <<SQL
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', '$PG_ROLE', '$PG_PASSWORD')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_ROLE') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', '$PG_DATABASE', '$PG_ROLE')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DATABASE') \gexec
SQL
  postgres_check_foreign
}

postgres_check_foreign() {
  "$PG_BIN/psql" -qtA -d "$(database_url)" -c 'select 1' >/dev/null 2>&1 ||
    die "postgres on port $PG_PORT does not accept $(database_url)"
}

# ---------------------------------------------------------------------------------------------
# livekit

livekit_exe() { echo "$LIVEKIT_BIN"; }
livekit_ports() { echo "$LIVEKIT_PORT"; } # and udp 7882, which /dev/tcp cannot probe
livekit_stop_signal() { echo TERM; }
livekit_address() { echo "ws://127.0.0.1:$LIVEKIT_PORT (API key $(livekit_key))"; }

livekit_ready() { curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$LIVEKIT_PORT/" 2>/dev/null; }

livekit_start() { spawn livekit "$LIVEKIT_BIN" --dev --bind 127.0.0.1 --config "$LIVEKIT_CONF"; }

livekit_after_start() { :; }
# livekit_check_foreign: a server this checkout did not start must accept our API key; we ask
# it to list rooms with a token signed by our secret.
livekit_check_foreign() {
  local entry now header payload signature status
  entry=$(livekit_key_entry)
  now=$(date +%s)
  header=$(printf '{"alg":"HS256","typ":"JWT"}' | base64url)
  payload=$(printf '{"iss":"%s","sub":"services.sh","nbf":%d,"exp":%d,"video":{"roomList":true}}' \
    "${entry%%:*}" "$now" $((now + 60)) | base64url)
  signature=$(printf '%s.%s' "$header" "$payload" |
    openssl dgst -sha256 -hmac "${entry#*: }" -binary | base64url)
  status=$(curl -sS --max-time 2 -o /dev/null -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $header.$payload.$signature" -H 'Content-Type: application/json' \
    -d '{}' "http://127.0.0.1:$LIVEKIT_PORT/twirp/livekit.RoomService/ListRooms")
  [[ $status == 200 ]] ||
    die "the server on port $LIVEKIT_PORT refuses the key in $LIVEKIT_CONF (HTTP $status); is it livekit-server?"
}

base64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

# The first entry under `keys:` in the LiveKit config: "<key>: <secret>".
livekit_key_entry() {
  local entry
  entry=$(awk '/^keys:/ { in_keys = 1; next }
    in_keys && /^[^[:space:]#]/ { exit }
    in_keys && /^[[:space:]]+[^[:space:]#]/ { sub(/^[[:space:]]+/, ""); print; exit }' "$LIVEKIT_CONF")
  [[ $entry == *": "?* ]] || die "$LIVEKIT_CONF: no \"keys:\" entry of the form \"<key>: <secret>\""
  echo "$entry"
}
livekit_key() {
  local entry
  entry=$(livekit_key_entry)
  echo "${entry%%:*}"
}

# ---------------------------------------------------------------------------------------------
# Commands

env_lines() {
  local key_entry name value
  key_entry=$(livekit_key_entry)
  local -A vars=(
    [NATS_URL]="nats://127.0.0.1:$NATS_PORT"
    [SF_DATABASE_URL]="$(database_url)"
    [LIVEKIT_URL]="ws://127.0.0.1:$LIVEKIT_PORT"
    [LIVEKIT_API_KEY]="${key_entry%%:*}"
    [LIVEKIT_API_SECRET]="${key_entry#*: }"
    [SF_NATS_SERVER_BIN]="$NATS_BIN"
    [SF_LIVEKIT_SERVER_BIN]="$LIVEKIT_BIN"
  )
  for name in NATS_URL SF_DATABASE_URL LIVEKIT_URL LIVEKIT_API_KEY LIVEKIT_API_SECRET \
    SF_NATS_SERVER_BIN SF_LIVEKIT_SERVER_BIN; do
    value=${vars[$name]}
    [[ $value != *"'"* ]] || die "$name contains a single quote: $value"
    printf "export %s='%s'\n" "$name" "$value"
  done
}

cmd_up() {
  mkdir -p "$LOG_DIR" "$RUN_DIR"
  exec 9>"$STATE_DIR/services.lock"
  lock_or_wait 9 "starting or stopping the services in $STATE_DIR"

  ensure_apt_packages
  ensure_chromium
  ensure_go_binary nats-server "$NATS_SERVER_VERSION" "$NATS_MODULE" nats-server
  ensure_go_binary livekit-server "$LIVEKIT_SERVER_VERSION" "$LIVEKIT_MODULE" server

  local service outcome
  for service in "${SERVICES[@]}"; do
    outcome=$(up_service "$service")
    printf '%-9s %s  %s\n' "$service" "$("${service}_address")" "$outcome"
  done

  printf '%-9s %s  %s\n' chromium "$CHROMIUM_BIN" "$(chromium_version)"

  env_lines >"$SERVICES_ENV.tmp"
  mv "$SERVICES_ENV.tmp" "$SERVICES_ENV"
  printf '%-9s %s\n' env "$SERVICES_ENV" state "$STATE_DIR"
}

cmd_down() {
  mkdir -p "$RUN_DIR"
  exec 9>"$STATE_DIR/services.lock"
  lock_or_wait 9 "starting or stopping the services in $STATE_DIR"
  local i
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
    stop_service "${SERVICES[i]}"
  done
  rm -f "$SERVICES_ENV"
}

cmd_status() {
  local service pid all_running=true
  for service in "${SERVICES[@]}"; do
    if pid=$(running_pid "$service"); then
      if "${service}_ready"; then
        printf '%-9s running (pid %s)  %s\n' "$service" "$pid" "$("${service}_address")"
      else
        printf '%-9s running (pid %s) but not answering  %s\n' "$service" "$pid" "$(log_file "$service")"
        all_running=false
      fi
    elif "${service}_ready"; then
      printf '%-9s running (not started by this checkout)  %s\n' "$service" "$("${service}_address")"
    else
      printf '%-9s stopped\n' "$service"
      all_running=false
    fi
  done
  $all_running || return 3
}

main() {
  load_versions
  case ${1:-up} in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) env_lines ;;
    -h | --help | help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' ;;
    *) die "unknown command \"$1\"; use up, down, status or env" ;;
  esac
}

main "$@"
