#!/usr/bin/env bash
# hack/image-test.sh: the registry test of the image `make image` wrote (target/image/oci).
# It pushes the OCI layout to go-containerregistry's registry on loopback, pulls it back by
# tag and checks:
# - the tag is an OCI image index of exactly linux/amd64 and linux/arm64;
# - each platform's config: user 65532:65532, entrypoint /cce-upgrade-watch, cmd run, its
#   os and architecture, and the OCI labels (source, version and revision of this checkout,
#   licenses Apache-2.0, title);
# - each layer holds exactly the files listed below, and the binary is an ELF of that
#   architecture;
# - the unpacked filesystem has no shell, and its CA bundle parses into as many
#   certificates as it has PEM blocks;
# - the unpacked binary runs as the non-root user 65532 (setpriv; arm64 under Debian's
#   qemu-user-static): it prints the CRD and completes a signed call to the simulator over
#   TLS (hack/binary-check.sh);
# - assembling the image again from the same commit and binaries gives the same digests;
# - the Dockerfile's build context compiles and its image matches (hack/dockerfile-check.sh).
# `make image-test` runs it after `make image`.
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=cce-upgrade-watch
LAYOUT=target/image/oci
log() { printf '[image-test] %s\n' "$*" >&2; }
fail() {
	log "FAIL: $*"
	exit 1
}
[[ -f $LAYOUT/index.json ]] || fail "$LAYOUT is missing: run make image first"
# The Dockerfile builds the same thing for people with Docker; here it cannot run.
hack/dockerfile-check.sh

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
revision=$(git rev-parse HEAD)
source_url=$(hack/project-url.sh)
crane=$(hack/image-tools.sh build crane | tail -n1)
hack/apt-install.sh qemu-aarch64-static qemu-user-static

work=$(mktemp -d)
trap 'hack/loopback-registry.sh stop "$work"; rm -rf "$work"' EXIT
chmod 755 "$work"
registry=$(hack/loopback-registry.sh start "$work")
ref=$registry/platform/$NAME:$version
"$crane" push "$LAYOUT" "$ref" >/dev/null
log "pushed $LAYOUT to $ref"

# The index: OCI media type, exactly the two platforms.
"$crane" manifest "$ref" >"$work/index.json"
python3 - "$work/index.json" <<'PY' || fail "the index is not an OCI index of linux/amd64 and linux/arm64"
import json, sys
index = json.load(open(sys.argv[1]))
assert index["mediaType"] == "application/vnd.oci.image.index.v1+json", index["mediaType"]
platforms = sorted(f'{m["platform"]["os"]}/{m["platform"]["architecture"]}' for m in index["manifests"])
assert platforms == ["linux/amd64", "linux/arm64"], platforms
assert all(m["mediaType"] == "application/vnd.oci.image.manifest.v1+json" for m in index["manifests"])
PY

base_files='etc/
etc/group
etc/passwd
etc/ssl/
etc/ssl/certs/
etc/ssl/certs/ca-certificates.crt
usr/
usr/share/
usr/share/doc/
usr/share/doc/ca-certificates/
usr/share/doc/ca-certificates/copyright'
app_files="$NAME
usr/
usr/share/
usr/share/doc/
usr/share/doc/$NAME/
usr/share/doc/$NAME/LICENSE"

for platform in amd64:x86-64:"" arm64:aarch64:qemu-aarch64-static; do
	IFS=: read -r arch elf qemu <<<"$platform"
	log "linux/$arch"
	"$crane" config --platform "linux/$arch" "$ref" >"$work/config-$arch.json"
	python3 - "$work/config-$arch.json" "$arch" "$version" "$revision" "$source_url" <<'PY' ||
import json, sys
path, arch, version, revision, source = sys.argv[1:]
image = json.load(open(path))
config = image["config"]
assert (image["os"], image["architecture"]) == ("linux", arch), (image["os"], image["architecture"])
assert config["User"] == "65532:65532", config["User"]
assert config["Entrypoint"] == ["/cce-upgrade-watch"], config["Entrypoint"]
assert config["Cmd"] == ["run"], config["Cmd"]
labels = config["Labels"]
want = {
    "org.opencontainers.image.source": source,
    "org.opencontainers.image.version": version,
    "org.opencontainers.image.revision": revision,
    "org.opencontainers.image.licenses": "Apache-2.0",
    "org.opencontainers.image.title": "cce-upgrade-watch",
}
wrong = {k: labels.get(k) for k, v in want.items() if labels.get(k) != v}
assert not wrong, f"labels {wrong}, want {want}"
assert labels.get("org.opencontainers.image.description"), "no description label"
assert len(image["rootfs"]["diff_ids"]) == 2, image["rootfs"]
PY
		fail "linux/$arch: the config is not as built"

	# Each layer, listed: the base, then the operator; nothing else.
	mapfile -t layers < <("$crane" manifest --platform "linux/$arch" "$ref" |
		python3 -c 'import json,sys; print("\n".join(l["digest"] for l in json.load(sys.stdin)["layers"]))')
	((${#layers[@]} == 2)) || fail "linux/$arch: ${#layers[@]} layers, want 2"
	for i in 0 1; do
		"$crane" blob "${ref%:*}@${layers[i]}" | tar -tzf - | LC_ALL=C sort >"$work/layer-$arch-$i.txt"
	done
	diff -u <(LC_ALL=C sort <<<"$base_files") "$work/layer-$arch-0.txt" >&2 ||
		fail "linux/$arch: the base layer holds other files"
	diff -u <(LC_ALL=C sort <<<"$app_files") "$work/layer-$arch-1.txt" >&2 ||
		fail "linux/$arch: the operator layer holds other files"

	rootfs=$work/rootfs-$arch
	mkdir -p "$rootfs"
	"$crane" export --platform "linux/$arch" "$ref" - | tar -xf - -C "$rootfs"
	chmod 755 "$rootfs"
	file -b "$rootfs/$NAME" | grep -q "ELF 64-bit.*$elf.*static" ||
		fail "linux/$arch: $NAME is not a static $elf ELF: $(file -b "$rootfs/$NAME")"
	[[ ! -e $rootfs/bin/sh && ! -e $rootfs/usr/bin/sh ]] || fail "linux/$arch: the image has a shell"
	bundle=$rootfs/etc/ssl/certs/ca-certificates.crt
	blocks=$(grep -c -- '-----BEGIN CERTIFICATE-----' "$bundle")
	parsed=$(openssl crl2pkcs7 -nocrl -certfile "$bundle" | openssl pkcs7 -print_certs -noout | grep -c '^subject=')
	((blocks > 100 && parsed == blocks)) || fail "linux/$arch: the CA bundle has $blocks PEM blocks, $parsed parse"
	grep -q '^nonroot:x:65532:65532:' "$rootfs/etc/passwd" || fail "linux/$arch: no user 65532 in /etc/passwd"
	grep -q '^nonroot:x:65532:' "$rootfs/etc/group" || fail "linux/$arch: no group 65532 in /etc/group"

	runner=(setpriv --reuid 65532 --regid 65532 --clear-groups)
	[[ -n $qemu ]] && runner+=("$qemu")
	hack/binary-check.sh "$rootfs/$NAME" "${runner[@]}"
	log "linux/$arch: ok ($(du -k "$rootfs/$NAME" | cut -f1) KiB binary, layers $(
		"$crane" manifest --platform "linux/$arch" "$ref" |
			python3 -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"]) // 1024)'
	) KiB compressed)"
done

# The same commit and binaries assemble into the same image: a second `make image` (its
# builds are up to date, so only the layers, configs and index are made again) writes the
# same index digest and the same tarball.
digest_of_layout() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$LAYOUT/index.json"; }
first=$(digest_of_layout)
first_tar=$(sha256sum "target/image/$NAME-$version.oci.tar" | cut -d' ' -f1)
hack/image.sh >/dev/null
again=$(digest_of_layout)
again_tar=$(sha256sum "target/image/$NAME-$version.oci.tar" | cut -d' ' -f1)
[[ $first == "$again" && $first_tar == "$again_tar" ]] ||
	fail "assembled twice, the image differs: index $first then $again, tarball $first_tar then $again_tar"
log "reproducible: index $first, tarball sha256 $first_tar, both again on a second assembly"
log "ok: $ref checked for linux/amd64 and linux/arm64"
