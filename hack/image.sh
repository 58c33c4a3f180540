#!/usr/bin/env bash
# hack/image.sh: `make image`. Builds the operator image for linux/amd64 and linux/arm64
# without a container engine and writes it as an OCI image index to
#   target/image/oci/                                an OCI layout directory
#   target/image/cce-upgrade-watch-VERSION.oci.tar   the same layout as one tarball
# and prints the layout's path last.
#
# Each platform's image has two layers: the base (hack/image-base.sh: CA bundle, its
# copyright, /etc/passwd and /etc/group with the user 65532) and the operator (the static
# musl binary of hack/static-build.sh, stripped, and its LICENSE). No shell, no libc. The
# config runs /cce-upgrade-watch run as 65532:65532 and carries the OCI labels source,
# version, revision, licenses, title and description. Layers are deterministic tars
# (sorted, owner root, mtime SOURCE_DATE_EPOCH, default the commit's time), so the same
# commit and ca-certificates package give the same digests.
#
# crane (go-containerregistry, hack/image-tools.sh) assembles the images in a registry on
# loopback (hack/loopback-registry.sh) that is stopped when this ends.
#
# Environment (all optional): PROJECT_URL (the source label, see hack/project-url.sh),
# SOURCE_DATE_EPOCH, CCE_UW_CACHE (where the ca-certificates package is kept).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=image-base.env
. hack/image-base.env

NAME=cce-upgrade-watch
OUT=target/image
CACHE_ROOT=${CCE_UW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cce-upgrade-watch}
log() { printf '[image] %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
revision=$(git rev-parse HEAD)
source_url=$(hack/project-url.sh)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
crane=$(hack/image-tools.sh build crane | tail -n1)

# The pinned ca-certificates package, fetched once into the cache and checked.
ca_deb() {
	local dir=$CACHE_ROOT/debs deb
	deb=$dir/ca-certificates_${CA_CERTIFICATES_VERSION}_all.deb
	if [[ ! -f $deb ]]; then
		mkdir -p "$dir"
		(cd "$dir" && { apt-get download "ca-certificates=$CA_CERTIFICATES_VERSION" 2>/dev/null ||
			{ apt-get update -qq && apt-get download "ca-certificates=$CA_CERTIFICATES_VERSION"; }; }) >&2 ||
			die "Debian's archive no longer has ca-certificates $CA_CERTIFICATES_VERSION: pin the current one in hack/image-base.env"
	fi
	echo "$CA_CERTIFICATES_SHA256  $deb" | sha256sum --check --quiet >&2 ||
		die "$deb is not the pinned ca-certificates package"
	echo "$deb"
}

# reproducible_tar DIR: DIR's contents as a tar on stdout that depends on nothing but them
# and SOURCE_DATE_EPOCH (sorted, owned by root, one date, no access or change times).
reproducible_tar() {
	tar --sort=name --format=posix --numeric-owner --owner=0 --group=0 \
		--mtime="@$SOURCE_DATE_EPOCH" --mode='u+rwX,go+rX,go-w' \
		--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
		-C "$1" -cf - $(cd "$1" && LC_ALL=C ls -A)
}
# tar_layer DIR OUT: DIR's contents as a reproducible gzipped layer.
tar_layer() {
	reproducible_tar "$1" | gzip -n -9 >"$2"
}

work=$(mktemp -d)
trap 'hack/loopback-registry.sh stop "$work"; rm -rf "$work"' EXIT
registry=$(hack/loopback-registry.sh start "$work")
repo=$registry/$NAME

mkdir -p "$work/base"
hack/image-base.sh "$(ca_deb)" "$work/base"
tar_layer "$work/base" "$work/base.tar.gz"

manifests=()
# arch : Rust target : the strip that reads its binaries : the Debian package that has it
for platform in amd64:x86_64-unknown-linux-musl:strip:binutils \
	arm64:aarch64-unknown-linux-musl:aarch64-linux-gnu-strip:binutils-aarch64-linux-gnu; do
	IFS=: read -r arch target strip strip_package <<<"$platform"
	bin=$(hack/static-build.sh "$target" | tail -n1)
	hack/apt-install.sh "$strip" "$strip_package"
	app=$work/app-$arch
	mkdir -p "$app/usr/share/doc/$NAME"
	"$strip" -o "$app/$NAME" "$bin"
	chmod 755 "$app/$NAME"
	cp LICENSE "$app/usr/share/doc/$NAME/LICENSE"
	tar_layer "$app" "$work/app-$arch.tar.gz"
	"$crane" append --oci-empty-base -f "$work/base.tar.gz" -f "$work/app-$arch.tar.gz" \
		-t "$repo:layers-$arch" >/dev/null
	"$crane" mutate "$repo:layers-$arch" -t "$repo:$version-$arch" --set-platform "linux/$arch" \
		--entrypoint "/$NAME" --cmd run --user 65532:65532 --exposed-ports 8080/tcp \
		-l org.opencontainers.image.title="$NAME" \
		-l org.opencontainers.image.description="$(sed -n 's/^description = "\(.*\)"$/\1/p' Cargo.toml)" \
		-l org.opencontainers.image.source="$source_url" \
		-l org.opencontainers.image.version="$version" \
		-l org.opencontainers.image.revision="$revision" \
		-l org.opencontainers.image.licenses=Apache-2.0 >/dev/null
	manifests+=(-m "$repo:$version-$arch")
	log "linux/$arch: $(du -k "$app/$NAME" | cut -f1) KiB binary, $(du -k "$work/app-$arch.tar.gz" | cut -f1) KiB operator layer"
done
"$crane" index append "${manifests[@]}" -t "$repo:$version" >/dev/null

rm -rf "$OUT/oci"
mkdir -p "$OUT"
"$crane" pull --format oci "$repo:$version" "$OUT/oci"
reproducible_tar "$OUT/oci" >"$OUT/$NAME-$version.oci.tar"
log "index $("$crane" digest "$repo:$version") ($version, revision $revision)"
log "wrote $OUT/oci and $OUT/$NAME-$version.oci.tar"
echo "$OUT/oci"
