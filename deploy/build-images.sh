#!/usr/bin/env bash
# Builds wavepod's service images for real on this machine: a private Docker daemon,
# the local base image, Pants packaging the PEX and the image. Cached between runs.
#
#   deploy/build-images.sh                        # every service image
#   deploy/build-images.sh services/gateway:image # one
#   deploy/build-images.sh --changed-since=origin/main  # only images a change affects
#   (other --flags go to Pants, e.g. --no-pantsd)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export BASE_IMAGE="${BASE_IMAGE:-wavepod/base:bookworm-py311-omp}"
eval "$(deploy/docker/dockerd.sh start)"
deploy/docker/base-image.sh

flags=() specs=()
for arg in "$@"; do
  case "$arg" in
    --changed-since=*) flags+=("$arg" --changed-dependents=transitive) ;;
    --*) flags+=("$arg") ;;
    *) specs+=("$arg") ;;
  esac
done
# With --changed-since and no specs, Pants picks the changed images itself.
if ((${#specs[@]} == 0)) && [[ "${flags[*]}" != *--changed-since=* ]]; then
  specs=(services::)
fi
exec ./pants "${flags[@]}" --filter-target-type=docker_image package "${specs[@]}"
