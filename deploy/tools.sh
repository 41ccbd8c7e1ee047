#!/usr/bin/env bash
# Tools that validate the deployment files (tests/deploy/*.test.ts run this script), installed
# once per machine into the same cache as deploy/services.sh's binaries and reused after that:
#   helm      helm.sh/helm/v3 built with `go install`               <cache root>/helm-<version>/helm
#   compose   the Docker CLI's compose plugin (github.com/docker/compose/v2), built with `go build`
#             from the module's source (`go install` refuses the module: its go.mod has `exclude`
#             directives)                                           <cache root>/docker-compose-<version>/docker-compose
#   promtool  from Debian's `prometheus` package, unpacked rather than installed (installing it
#             would also start a Prometheus service); `prometheus` comes along
#                                                                   <cache root>/prometheus-<version>/{promtool,prometheus}
#
# Usage: deploy/tools.sh TOOL...   install what is missing, then print one line per TOOL: its path
#
# Concurrent callers wait for one install (a lock per tool in the cache); each binary appears by an
# atomic rename, so a half-built one is never used. The cache root is SF_CACHE_ROOT from the
# environment or deploy/versions.env, as for deploy/services.sh.
set -euo pipefail
shopt -s inherit_errexit

HELM_VERSION=v3.22.0
COMPOSE_VERSION=v2.40.3
# Debian bookworm's prometheus; promtool checks rules and configs of Prometheus 2.x and 3.x alike.
PROMETHEUS_DEB_VERSION=2.42.0+ds-5+deb12u1

HELM_MODULE=helm.sh/helm/v3
COMPOSE_MODULE=github.com/docker/compose/v2

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCK_TIMEOUT_S=1800 # a cold build of compose takes several minutes on two cores

log() { printf 'tools: %s\n' "$*" >&2; }

die() {
  log "error: $*"
  exit 1
}

show_log_tail() {
  [[ -f $1 ]] || return 0
  printf '    --- last lines of %s ---\n' "$1" >&2
  tail -n 40 "$1" | sed 's/^/    /' >&2
}

cache_root() {
  local from_file
  if [[ -n ${SF_CACHE_ROOT:-} ]]; then
    echo "$SF_CACHE_ROOT"
    return
  fi
  from_file=$(sed -n 's/^SF_CACHE_ROOT=//p' "$REPO_ROOT/deploy/versions.env")
  [[ -n $from_file ]] || die "deploy/versions.env does not set SF_CACHE_ROOT"
  # shellcheck disable=SC2016 # the literal text ${HOME} is what we replace
  echo "${from_file//'${HOME}'/$HOME}"
}

CACHE_ROOT=$(cache_root)

find_go() {
  if command -v go >/dev/null; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    echo /usr/local/go/bin/go
  else
    die "Go is needed to build helm and docker compose once; install it (https://go.dev/dl) or put it on PATH"
  fi
}

# locked DIR FILE BUILDER: unless DIR/FILE exists, take the cache lock of DIR and run BUILDER TMP,
# which leaves its files in TMP; TMP then becomes DIR. Prints DIR/FILE.
locked() {
  local dir=$1 file=$2 builder=$3
  if [[ ! -x $dir/$file ]]; then
    mkdir -p "$CACHE_ROOT"
    exec 8>"$dir.lock"
    if ! flock -n 8; then
      log "waiting for another run that is installing $(basename "$dir")"
      flock -w "$LOCK_TIMEOUT_S" 8 || die "gave up waiting for the lock $dir.lock"
    fi
    if [[ ! -x $dir/$file ]]; then
      local tmp
      tmp=$(mktemp -d "$dir.tmp.XXXXXX")
      chmod 755 "$tmp"
      if ! "$builder" "$tmp"; then
        rm -rf "$tmp"
        die "installing $(basename "$dir") failed"
      fi
      [[ -x $tmp/$file ]] || die "installing $(basename "$dir") left no $file"
      rm -rf "$dir"
      mv "$tmp" "$dir"
      log "cached $dir/$file"
    fi
    exec 8>&-
  fi
  echo "$dir/$file"
}

build_helm() {
  local out=$1 go build_log=$1.log
  go=$(find_go)
  log "building helm $HELM_VERSION with $("$go" env GOVERSION) (once per machine; takes a few minutes)"
  if ! GOBIN=$out "$go" install "$HELM_MODULE/cmd/helm@$HELM_VERSION" >"$build_log" 2>&1; then
    show_log_tail "$build_log"
    return 1
  fi
  rm -f "$build_log"
}

# build_compose: `go install` refuses a module whose go.mod has exclude directives, so the module's
# source (from the Go module proxy, like any dependency) is built as the main module instead.
build_compose() {
  local out=$1 go build_log=$1.log src modcache
  go=$(find_go)
  log "building docker compose $COMPOSE_VERSION with $("$go" env GOVERSION) (once per machine; takes several minutes)"
  {
    src=$("$go" mod download -json "$COMPOSE_MODULE@$COMPOSE_VERSION" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') &&
      [[ -n $src ]] &&
      modcache=$(mktemp -d "$out/../compose-src.XXXXXX") &&
      cp -r "$src/." "$modcache" &&
      chmod -R u+w "$modcache" &&
      (cd "$modcache" && "$go" build -trimpath \
        -ldflags "-s -w -X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" \
        -o "$out/docker-compose" ./cmd)
  } >"$build_log" 2>&1 || {
    [[ -n ${modcache:-} ]] && rm -rf "$modcache"
    show_log_tail "$build_log"
    return 1
  }
  rm -rf "$modcache" "$build_log"
}

# build_prometheus: promtool and prometheus out of Debian's package, which is downloaded (as any
# user) and unpacked, never installed.
build_prometheus() {
  local out=$1 deb_dir
  command -v apt-get >/dev/null || {
    log "promtool comes from Debian's prometheus package, and there is no apt-get here"
    return 1
  }
  deb_dir=$(mktemp -d "$out/../prometheus-deb.XXXXXX")
  chmod 777 "$deb_dir" # apt-get download runs as the _apt user where it can
  log "downloading Debian's prometheus $PROMETHEUS_DEB_VERSION for promtool"
  if ! (cd "$deb_dir" && apt-get download -q "prometheus=$PROMETHEUS_DEB_VERSION") >"$out.log" 2>&1; then
    # The package lists may be missing or stale on a fresh machine: refresh once (root only).
    if ((EUID == 0)) && apt-get update -q >>"$out.log" 2>&1 &&
      (cd "$deb_dir" && apt-get download -q "prometheus=$PROMETHEUS_DEB_VERSION") >>"$out.log" 2>&1; then
      :
    else
      show_log_tail "$out.log"
      rm -rf "$deb_dir"
      log "apt-get download prometheus=$PROMETHEUS_DEB_VERSION failed (as a non-root user, run apt-get update first)"
      return 1
    fi
  fi
  dpkg-deb -x "$deb_dir"/prometheus_*.deb "$deb_dir/root" &&
    mv "$deb_dir/root/usr/bin/promtool" "$deb_dir/root/usr/bin/prometheus" "$out/" &&
    rm -rf "$deb_dir" "$out.log"
}

tool_path() {
  case $1 in
    helm) locked "$CACHE_ROOT/helm-$HELM_VERSION" helm build_helm ;;
    compose) locked "$CACHE_ROOT/docker-compose-$COMPOSE_VERSION" docker-compose build_compose ;;
    promtool) locked "$CACHE_ROOT/prometheus-$PROMETHEUS_DEB_VERSION" promtool build_prometheus ;;
    prometheus)
      local dir
      dir=$(dirname "$(tool_path promtool)")
      echo "$dir/prometheus"
      ;;
    *) die "unknown tool \"$1\"; use helm, compose, promtool or prometheus" ;;
  esac
}

main() {
  (($# > 0)) || die "usage: deploy/tools.sh helm|compose|promtool|prometheus..."
  local tool
  for tool in "$@"; do tool_path "$tool"; done
}

main "$@"
