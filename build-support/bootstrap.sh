#!/usr/bin/env bash
# Offline bootstrap for Pants 2.17.1 on this kind of machine (see README "Pants").
#
#  1. a Python 3.9 virtualenv with pantsbuild.pants (the last Pants on PyPI; it needs 3.9);
#  2. the three binaries Pants would otherwise download from hosts we cannot reach:
#     the pex CLI (built from its PyPI wheel), protoc and grpc_python_plugin (Debian's
#     protobuf-compiler / protobuf-compiler-grpc, unpacked without a system install);
#  3. .pants.rc in the checkout pointing Pants at those files by file:// URL + sha256.
#
# Steps 1-2 are cached per user in $WAVEPOD_CACHE_DIR; step 3 is per checkout because
# the hashes depend on the cache path. Idempotent; safe to run concurrently (flock).
# Users of the standard `pants` (scie) launcher run `build-support/bootstrap.sh --tools-only`.
set -euo pipefail

PANTS_VERSION=2.17.1
PEX_VERSION=2.1.137
PROTOC_VERSION=3.21.12
GRPC_PLUGIN_VERSION=1.51.1
DEBIAN_PACKAGES=(protobuf-compiler protobuf-compiler-grpc libprotoc32 libprotobuf32
  libprotobuf-dev libgrpc29 libc-ares2 libre2-9)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${WAVEPOD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wavepod}"
VENV="$CACHE/pants-$PANTS_VERSION"
TOOLS="$CACHE/tools"
TOOLS_ONLY=false
[[ "${1:-}" == "--tools-only" ]] && TOOLS_ONLY=true

log() { echo "bootstrap: $*" >&2; }

# Plain pip against the package index; the machine-wide pip config (extra local indexes,
# a torch constraint file) only adds noise here. Trust the system CA bundle when present.
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
[[ -f /etc/ssl/certs/ca-certificates.crt ]] && export PIP_CERT=/etc/ssl/certs/ca-certificates.crt

mkdir -p "$CACHE"
exec 9>"$CACHE/.bootstrap.lock"
flock 9

find_python39() {
  local candidates=()
  [[ -n "${PANTS_PYTHON:-}" ]] && candidates+=("$PANTS_PYTHON")
  candidates+=("${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.9*/bin/python3.9 python3.9
    /usr/bin/python3.9 /usr/local/bin/python3.9)
  local c
  for c in "${candidates[@]}"; do
    # pyenv shims exist but fail unless 3.9 is selected, so actually run each one.
    if "$c" -c 'import sys, venv; assert sys.version_info[:2] == (3, 9)' 2>/dev/null; then
      echo "$c"
      return 0
    fi
  done
  log "no working Python 3.9 found (Pants $PANTS_VERSION needs it); set PANTS_PYTHON"
  return 1
}

python39="$(find_python39)"

if [[ "$TOOLS_ONLY" == false && ! -f "$VENV/.installed" ]]; then
  log "installing pantsbuild.pants==$PANTS_VERSION into $VENV"
  rm -rf "$VENV"
  "$python39" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "pantsbuild.pants==$PANTS_VERSION"
  touch "$VENV/.installed"  # the launcher trusts the venv only once this exists
fi

# --- pex CLI -------------------------------------------------------------------------
pex_file="$TOOLS/pex-v$PEX_VERSION.pex"
if [[ ! -f "$pex_file" ]]; then
  log "building pex v$PEX_VERSION from its wheel"
  work="$(mktemp -d)"
  "$python39" -m venv "$work/venv"
  "$work/venv/bin/pip" install --quiet "pex==$PEX_VERSION"
  "$work/venv/bin/pip" download --quiet --no-deps \
    -d "$work/wheels" "pex==$PEX_VERSION"
  mkdir -p "$TOOLS"
  # --no-strip-pex-env keeps PEX_ROOT visible to pex's own pip (else ~600 MB in ~/.pex).
  "$work/venv/bin/pex" --no-pypi -f "$work/wheels" --no-strip-pex-env --include-tools \
    --no-compile --python-shebang "/usr/bin/env python" "pex==$PEX_VERSION" -c pex \
    -o "$pex_file.partial"
  mv "$pex_file.partial" "$pex_file"
  rm -rf "$work"
fi

# --- protoc + grpc_python_plugin from Debian packages ---------------------------------
debroot="$TOOLS/protobuf-$PROTOC_VERSION-grpc-$GRPC_PLUGIN_VERSION"
if [[ ! -x "$debroot/usr/bin/grpc_python_plugin" ]]; then
  log "fetching Debian's protoc $PROTOC_VERSION and grpc_python_plugin $GRPC_PLUGIN_VERSION"
  work="$(mktemp -d)"
  chmod 755 "$work"  # apt's _apt user downloads into it
  if ! (cd "$work" && apt-get download "${DEBIAN_PACKAGES[@]}" >/dev/null 2>&1); then
    apt-get update -qq >/dev/null
    (cd "$work" && apt-get download "${DEBIAN_PACKAGES[@]}" >/dev/null)
  fi
  rm -rf "$debroot.partial" && mkdir -p "$debroot.partial"
  for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$debroot.partial"; done
  rm -rf "$work" "$debroot" && mv "$debroot.partial" "$debroot"
fi
libdir="$debroot/usr/lib/x86_64-linux-gnu"

# Pants expects protoc as a zip holding ./bin/protoc; protoc finds the well-known types
# in <its dir>/../include, which libprotobuf-dev provides.
protoc_zip="$TOOLS/protoc-$PROTOC_VERSION.zip"
grpc_plugin="$TOOLS/grpc_python_plugin-$GRPC_PLUGIN_VERSION"
if [[ ! -f "$protoc_zip" || ! -f "$grpc_plugin" ]]; then
  cat >"$grpc_plugin" <<WRAPPER
#!/bin/sh
LD_LIBRARY_PATH="$libdir" exec "$debroot/usr/bin/grpc_python_plugin" "\$@"
WRAPPER
  chmod +x "$grpc_plugin"
  "$python39" - "$protoc_zip" "$debroot" "$libdir" <<'PY'
import os, sys, zipfile
out, root, libdir = sys.argv[1:]
script = f'#!/bin/sh\nLD_LIBRARY_PATH="{libdir}" exec "{root}/usr/bin/protoc" "$@"\n'
with zipfile.ZipFile(out + ".partial", "w") as zf:
    info = zipfile.ZipInfo("bin/protoc", date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o755 << 16
    zf.writestr(info, script)
os.replace(out + ".partial", out)
PY
fi

known() {  # version|platform|sha256|size for Pants' known_versions
  local sha size
  sha="$(sha256sum "$2" | cut -d' ' -f1)"
  size="$(stat -c %s "$2")"
  echo "\"$1|linux_x86_64|$sha|$size\""
}

cat >"$REPO_ROOT/.pants.rc" <<RC
# Generated by build-support/bootstrap.sh for this checkout and cache; git-ignored.
[pex-cli]
version = "v$PEX_VERSION"
url_template = "file://$pex_file"
known_versions = [$(known "v$PEX_VERSION" "$pex_file")]

[protoc]
version = "$PROTOC_VERSION"
url_template = "file://$protoc_zip"
known_versions = [$(known "$PROTOC_VERSION" "$protoc_zip")]

[grpc-python-plugin]
version = "$GRPC_PLUGIN_VERSION"
url_template = "file://$grpc_plugin"
known_versions = [$(known "$GRPC_PLUGIN_VERSION" "$grpc_plugin")]
RC
touch "$TOOLS/.complete"  # the launcher re-runs this script when the cache was cleared
log "ready"
