#!/usr/bin/env bash
# hack/image-base.sh DEB ROOTFS: writes the image's base files into the directory ROOTFS,
# from Debian's ca-certificates package DEB (a pinned version, see hack/image.sh and the
# Dockerfile): the CA bundle as update-ca-certificates builds it (every certificate the
# package ships, in name order), the package's copyright file, and /etc/passwd and
# /etc/group with root and the non-root user 65532 the operator runs as. Nothing else: the
# image has no shell, no package manager and no libc.
set -euo pipefail
deb=${1:?usage: $0 DEB ROOTFS} rootfs=${2:?usage: $0 DEB ROOTFS}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp"
mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/usr/share/doc/ca-certificates"
certs=$(cd "$tmp/usr/share/ca-certificates" && find . -name '*.crt' | LC_ALL=C sort)
[[ -n $certs ]] || { echo "image-base.sh: $deb holds no certificate" >&2; exit 1; }
# awk 1 ends every certificate with a newline, as update-ca-certificates does.
(cd "$tmp/usr/share/ca-certificates" && xargs awk 1 <<<"$certs") >"$rootfs/etc/ssl/certs/ca-certificates.crt"
cp "$tmp/usr/share/doc/ca-certificates/copyright" "$rootfs/usr/share/doc/ca-certificates/copyright"
cat >"$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat >"$rootfs/etc/group" <<'GROUP'
root:x:0:
nonroot:x:65532:
GROUP
