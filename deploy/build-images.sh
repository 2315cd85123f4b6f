#!/usr/bin/env bash
# Builds wavepod's service images for real on this machine: a private Docker daemon,
# the local base image, Pants packaging the PEX and the image. Cached between runs.
#
#   deploy/build-images.sh                        # every service image
#   deploy/build-images.sh services/gateway:image # one
#   deploy/build-images.sh --changed-since=origin/main  # only images a change affects
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export BASE_IMAGE="${BASE_IMAGE:-wavepod/base:bookworm-py311}"
eval "$(deploy/docker/dockerd.sh start)"
deploy/docker/base-image.sh

if [[ "${1:-}" == --changed-since=* ]]; then
  exec ./pants "$1" --changed-dependents=transitive --filter-target-type=docker_image package
fi
exec ./pants --filter-target-type=docker_image package "${@:-services::}"
