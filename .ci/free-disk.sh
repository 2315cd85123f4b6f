#!/usr/bin/env bash
# Keeps a build machine's caches from filling its disk, run by .ci/run before the build.
#
# Pants garbage-collects its local store only from pantsd, and CI runs --no-pantsd, so
# ~/.cache/pants/lmdb_store grows with every run (50 GB after a few weeks here, and a
# compose test then failed with ENOSPC). The store is a cache: above its limit, or when
# the disk runs short, it is removed and the next run rebuilds what it needs (named
# caches, which hold downloaded wheels, are kept). BuildKit's cache is trimmed likewise.
#
#   WAVEPOD_CI_PANTS_STORE_GB  largest Pants store kept (default 20)
#   WAVEPOD_CI_MIN_FREE_GB     free space a run needs (default 25)
#   WAVEPOD_CI_BUILD_CACHE_GB  BuildKit cache kept when a daemon is up (default 3)
set -uo pipefail

store="${PANTS_LOCAL_STORE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pants/lmdb_store}"
max_store_gb="${WAVEPOD_CI_PANTS_STORE_GB:-20}"
min_free_gb="${WAVEPOD_CI_MIN_FREE_GB:-25}"
build_cache_gb="${WAVEPOD_CI_BUILD_CACHE_GB:-3}"

gib() { echo $(($1 / 1024 / 1024)); }  # KiB -> GiB
free_gb() { gib "$(df -Pk "${1:-$HOME}" | awk 'NR == 2 {print $4}')"; }

echo "free-disk: $(free_gb) GB free before"
if [[ -n "${DOCKER_HOST:-}" ]] && docker info >/dev/null 2>&1; then
  # (The client warns that its legacy builder is deprecated; the prune itself works.)
  docker builder prune --force --keep-storage "${build_cache_gb}GB" >/dev/null 2>&1 ||
    echo "free-disk: could not trim BuildKit's cache" >&2
  docker image prune --force >/dev/null
fi
if [[ -d "$store" ]]; then
  store_gb="$(gib "$(du -sk "$store" | cut -f1)")"
  if ((store_gb > max_store_gb || $(free_gb) < min_free_gb)); then
    echo "free-disk: removing Pants' local store ($store_gb GB; no pantsd here to collect it)"
    rm -rf "$store"
  fi
fi
free="$(free_gb)"
echo "free-disk: $free GB free after"
((free >= min_free_gb)) || echo "free-disk: warning: less than $min_free_gb GB free; the image and compose tests may fail" >&2
