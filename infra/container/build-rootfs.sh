#!/usr/bin/env bash
# Builds the herd image without a container daemon and without pulling anything:
#   1. a static, stripped `herd` (coordinator and agent in one binary);
#   2. the build context of infra/container/Containerfile (herd, CA bundle, passwd, group, /tmp);
#   3. from that Containerfile: the root filesystem, an OCI image layout and an OCI archive.
#
# Usage: infra/container/build-rootfs.sh [--binary PATH] [--out DIR] [--tag NAME:TAG]
#   --binary PATH  use this static x86-64 binary as `herd` instead of building it
#   --out DIR      where to write (default: target/image)
#   --tag NAME:TAG the image's ref name (default: herd:<workspace version>)
# Writes DIR/context/ (build context), DIR/rootfs/ (root filesystem), DIR/oci/ (OCI layout) and
# DIR/herd-oci.tar (OCI archive). Push, e.g.:
#   skopeo copy oci:target/image/oci:herd:0.1.0 docker://ACCOUNT.dkr.ecr.REGION.amazonaws.com/herd:0.1.0
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

binary=""
out="target/image"
tag=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "build-rootfs: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ -z "$tag" ]; then
  version="$(python3 -c 'import tomllib; print(tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"]["version"])' 2>/dev/null || echo latest)"
  tag="herd:$version"
fi

if [ -z "$binary" ]; then
  # A static glibc binary: there is no musl target here, and a scratch image has no libc.
  # --target keeps these artifacts (built with other RUSTFLAGS) apart from the usual ones.
  triple=x86_64-unknown-linux-gnu
  # The package that has the `herd` binary (herd-coordinator, or herd since the CLI has a crate).
  package="$(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
found = [p["name"] for p in json.load(sys.stdin)["packages"]
         for t in p["targets"] if t["name"] == "herd" and "bin" in t["kind"]]
print(found[0] if found else "")')"
  [ -n "$package" ] || { echo "build-rootfs: no package has a herd binary" >&2; exit 1; }
  echo "build-rootfs: cargo build --release (static) -p $package --bin herd" >&2
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --target "$triple" -p "$package" --bin herd
  binary="${CARGO_TARGET_DIR:-target}/$triple/release/herd"
fi
[ -f "$binary" ] || { echo "build-rootfs: no binary at $binary" >&2; exit 1; }

ca=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca" ] || { echo "build-rootfs: $ca missing (apt-get install ca-certificates)" >&2; exit 1; }

context="$out/context"
rm -rf "$context"
mkdir -p "$context/tmp"
# Stripped: the release binary carries debug info (about 246 MB with it, 29 MB without).
strip --strip-all -o "$context/herd" "$binary"
chmod 0755 "$context/herd"
cp "$ca" "$context/ca-certificates.crt"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
  'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' > "$context/passwd"
printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' > "$context/group"

python3 "$here/oci_image.py" \
  --containerfile "$here/Containerfile" --context "$context" --tag "$tag" \
  --rootfs "$out/rootfs" --layout "$out/oci" --archive "$out/herd-oci.tar"
echo "build-rootfs: $out/oci ($tag), $out/herd-oci.tar, root filesystem in $out/rootfs" >&2
