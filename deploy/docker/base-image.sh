#!/usr/bin/env bash
# Makes the local base image the service images build FROM when no registry is
# reachable: Debian bookworm minbase with Debian's python3 (3.11) and the OpenMP runtime
# (libgomp1, which LightGBM loads: the trainer and evaluator need it). Production builds
# use the official python image instead (the Dockerfiles' BASE_IMAGE default).
# Imports only when the tag is missing: every import is a new image ID and would
# invalidate the cached layers above it.
set -euo pipefail

TAG="${BASE_IMAGE:-wavepod/base:bookworm-py311-omp}"
CACHE="${WAVEPOD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wavepod}"
TARBALL="$CACHE/base-bookworm-py311-omp.tar"
DOCKER=/usr/bin/docker

if "$DOCKER" image inspect "$TAG" >/dev/null 2>&1; then
  exit 0
fi
if [[ ! -f "$TARBALL" ]]; then
  command -v mmdebstrap >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
  echo "base-image.sh: building $TARBALL with mmdebstrap (about a minute)" >&2
  mkdir -p "$CACHE"
  mmdebstrap --quiet --format=tar --variant=minbase --include=python3,ca-certificates,libgomp1 bookworm \
    "$TARBALL.partial"
  mv "$TARBALL.partial" "$TARBALL"
fi
"$DOCKER" import --change 'CMD ["python3"]' "$TARBALL" "$TAG" >/dev/null
echo "base-image.sh: imported $TAG" >&2
