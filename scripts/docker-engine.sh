#!/usr/bin/env bash
# A local Docker engine for the container tests, on a machine with no image registry.
#   scripts/docker-engine.sh up     install docker.io if missing, start dockerd (no bridge, host
#                                   network), and make the python:3.11-slim stand-in if missing
#   scripts/docker-engine.sh down   stop the dockerd that `up` started, by its PID
# State lives in ${MODELPORT_DOCKER_STATE:-/tmp/modelport-docker}.
set -euo pipefail
state=${MODELPORT_DOCKER_STATE:-/tmp/modelport-docker}
base=${MODELPORT_BASE_IMAGE:-python:3.11-slim}
mkdir -p "$state"

install() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if ((${#missing[@]})); then
    echo "installing ${missing[*]} ..." >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

start() {
  if docker info >/dev/null 2>&1; then return; fi
  echo "starting dockerd ..." >&2
  dockerd --bridge=none --iptables=false --ip6tables=false >"$state/dockerd.log" 2>&1 &
  echo $! >"$state/dockerd.pid"
  for _ in $(seq 1 100); do
    docker info >/dev/null 2>&1 && return
    sleep 0.2
  done
  echo "dockerd did not start; see $state/dockerd.log" >&2
  exit 1
}

mirror() {  # the Debian mirror this machine's apt uses
  grep -hoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | awk '{print $2}' | grep -v security | head -n 1
}

stand_in() {
  if docker image inspect "$base" >/dev/null 2>&1; then return; fi
  local root="$state/rootfs"
  echo "making a stand-in for $base with debootstrap ..." >&2
  rm -rf "$root"
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$root" "$(mirror)" >"$state/debootstrap.log" 2>&1
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null 2>&1
  fi
  ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
  rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/pip.conf"
  rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
  tar -C "$root" -c . | docker import - "$base" >/dev/null
  rm -rf "$root"
}

down() {
  if [[ -f "$state/dockerd.pid" ]]; then
    local pid
    pid=$(cat "$state/dockerd.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    rm -f "$state/dockerd.pid"
    umount /run/docker/netns/default 2>/dev/null || true
  fi
}

case "${1:-}" in
  up) install; start; stand_in ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
