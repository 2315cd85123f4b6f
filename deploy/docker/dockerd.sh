#!/usr/bin/env bash
# A private Docker daemon for building and running wavepod images on machines that run
# none (CI, our build machines): no registry, no bridge network, state in a cache dir so
# layers stay cached between runs.
#
#   eval "$(deploy/docker/dockerd.sh start)"   # starts it if needed, prints DOCKER_HOST
#   deploy/docker/dockerd.sh stop
set -euo pipefail

STATE="${WAVEPOD_DOCKER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wavepod/docker}"
SOCKET="$STATE/docker.sock"
PIDFILE="$STATE/dockerd.pid"
# Short (it holds unix sockets) and one per state dir, so two daemons never share it.
EXEC_ROOT="/tmp/wavepod-dockerd-$(echo "$STATE" | md5sum | cut -c1-8)"
# Debian's client has BuildKit built in; other clients on these machines lack buildx.
DOCKER=/usr/bin/docker

ready() { "$DOCKER" -H "unix://$SOCKET" info >/dev/null 2>&1; }

case "${1:-}" in
  start)
    if ! ready; then
      if ! command -v dockerd >/dev/null || [[ ! -x "$DOCKER" ]]; then
        echo "dockerd.sh: installing docker.io" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null 2>&1 || {
          apt-get update -qq >/dev/null
          DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
        }
      fi
      mkdir -p "$STATE/data" "$EXEC_ROOT"
      nohup dockerd --storage-driver=overlay2 --iptables=false --bridge=none \
        --data-root "$STATE/data" --exec-root "$EXEC_ROOT" --pidfile "$PIDFILE" \
        -H "unix://$SOCKET" >"$STATE/dockerd.log" 2>&1 &
      for _ in $(seq 1 60); do ready && break; sleep 0.5; done
      ready || { echo "dockerd.sh: daemon did not start, see $STATE/dockerd.log" >&2; exit 1; }
      # Tells the caller it owns this daemon (and should stop it).
      echo "export WAVEPOD_DOCKERD_STARTED=1"
    fi
    echo "export DOCKER_HOST=unix://$SOCKET"
    ;;
  stop)
    if [[ -f "$PIDFILE" ]]; then
      pid="$(cat "$PIDFILE")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    fi
    # --network=host containers leave this mount behind.
    umount "$EXEC_ROOT/netns/default" 2>/dev/null || true
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
