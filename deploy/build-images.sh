#!/usr/bin/env bash
# Builds wavepod's service images for real on this machine: a private Docker daemon,
# the local base image, Pants packaging the PEX and the image. Cached between runs.
#
#   deploy/build-images.sh                        # every service image and MLflow's
#   deploy/build-images.sh services/gateway:image # one
#   deploy/build-images.sh --changed-since=origin/main  # only images a change affects
#   (other --flags go to Pants, e.g. --no-pantsd)
# Afterwards each wavepod/<service> repository keeps `latest`, this commit's tag and its
# newest WAVEPOD_KEEP_IMAGES (default 3) other git-SHA tags; older tags are removed, so a
# long-lived builder's disk does not fill with one set of images per commit.
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
  specs=(services:: deploy/mlflow::)
fi
./pants "${flags[@]}" --filter-target-type=docker_image package "${specs[@]}"

keep="${WAVEPOD_KEEP_IMAGES:-3}"
current="${GIT_SHA:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unversioned)}"
for repository in $(docker images --format '{{.Repository}}' 'wavepod/*' | sort -u); do
  [[ "$repository" == wavepod/base ]] && continue
  # Newest first (docker's order); `latest` and this commit's tag (which may sit on an
  # older, cached image) are always kept.
  docker images --format '{{.Tag}}' "$repository" |
    { grep -vx -e latest -e '<none>' -e "$current" || true; } |
    tail -n +"$((keep + 1))" | sed "s|^|$repository:|" | xargs -r docker rmi >/dev/null
done
docker image prune --force >/dev/null  # layers no tag uses any more
