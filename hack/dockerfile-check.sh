#!/usr/bin/env bash
# hack/dockerfile-check.sh: what can be checked of the Dockerfile without a container engine.
# - Its build stage's context is complete: exactly the files its COPY lines bring in, laid
#   out as they are in the stage's WORKDIR, pass its own dependency step (the RUN that calls
#   `cargo fetch`, run as written) and then compile (`cargo check` of the operator binary,
#   which runs build.rs, sharing this checkout's target/ so dependencies are not built again).
# - Its image has the base files of hack/image-base.sh from the package pinned in
#   hack/image-base.env, and the user, entrypoint, command and labels hack/image-test.sh
#   checks in the image `make image` builds.
# Usage: hack/dockerfile-check.sh [DOCKERFILE]   `make image-test` runs it on ./Dockerfile.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# Another Dockerfile than the checkout's, to see a check fail.
dockerfile=$(realpath "${1:-Dockerfile}")

log() { printf '[dockerfile-check] %s\n' "$*" >&2; }
fail() {
	log "FAIL: $*"
	exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$dockerfile" "$work/plan" <<'PY'
import shlex, sys
lines, stage, plan = [], None, []
text = open(sys.argv[1]).read().replace("\\\n", " ")
for line in text.splitlines():
    words = line.split()
    if not words or words[0].startswith("#"):
        continue
    op = words[0].upper()
    if op == "FROM":
        stage = words[-1] if len(words) >= 3 and words[-2].upper() == "AS" else None
    elif stage == "build" and op == "COPY" and not any(w.startswith("--from") for w in words):
        *sources, dest = [w for w in words[1:] if not w.startswith("--")]
        plan += [f"copy {s} {dest}" for s in sources]
    elif stage == "build" and op == "RUN" and "cargo fetch" in line:
        plan.append("run " + line.split(None, 1)[1])
open(sys.argv[2], "w").write("\n".join(plan) + "\n")
PY
ctx=$work/src
mkdir -p "$ctx"
while read -r kind rest; do
	case $kind in
	copy)
		# As COPY does: a directory's contents into the destination, a file into it.
		read -r source dest <<<"$rest"
		mkdir -p "$ctx/$dest"
		if [[ -d $source ]]; then
			cp -r "$source/." "$ctx/$dest/"
		else
			cp "$source" "$ctx/$dest/"
		fi
		;;
	run)
		(cd "$ctx" && bash -euo pipefail -c "$rest") >&2 || fail "the dependency step failed: $rest"
		;;
	esac
done <"$work/plan"
(cd "$ctx" && CARGO_TARGET_DIR=$root/target cargo check --locked --quiet --bin cce-upgrade-watch) ||
	fail "the build stage's context does not compile"
log "build stage: the context of its COPY lines fetches and compiles"

python3 - "$dockerfile" <<'PY' || fail "the image stages differ from what make image builds"
import json, re, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
stages, name = {}, None
for line in text.splitlines():
    words = line.split()
    if not words or words[0].startswith("#"):
        continue
    if words[0].upper() == "FROM":
        name = words[-1] if words[-2].upper() == "AS" else words[1]
        stages[name] = []
    elif name:
        stages[name].append(line.strip())
base = " ".join(stages["base"])
for needle in ['. /image-base.env', 'apt-get download "ca-certificates=$CA_CERTIFICATES_VERSION"',
               '"$CA_CERTIFICATES_SHA256  ca-certificates_${CA_CERTIFICATES_VERSION}_all.deb" | sha256sum --check',
               '/image-base.sh "/tmp/ca-certificates_${CA_CERTIFICATES_VERSION}_all.deb" /rootfs']:
    assert needle in base, f"base stage: no {needle}"
final = stages["scratch"]
def one(op):
    found = [l.split(None, 1)[1] for l in final if l.split()[0].upper() == op]
    assert len(found) == 1, f"final stage: {op} {found}"
    return found[0]
assert one("USER") == "65532:65532", one("USER")
assert json.loads(one("ENTRYPOINT")) == ["/cce-upgrade-watch"], one("ENTRYPOINT")
assert json.loads(one("CMD")) == ["run"], one("CMD")
labels = dict(re.findall(r'(org\.opencontainers\.image\.[a-z]+)="([^"]*)"', one("LABEL")))
want = {"title": "cce-upgrade-watch", "licenses": "Apache-2.0", "source": "${SOURCE}",
        "version": "${VERSION}", "revision": "${REVISION}"}
for key, value in want.items():
    assert labels.get(f"org.opencontainers.image.{key}") == value, (key, labels)
assert labels.get("org.opencontainers.image.description"), labels
copies = [l for l in final if l.split()[0].upper() == "COPY"]
assert copies == ["COPY --from=base /rootfs/ /", "COPY --from=build /cce-upgrade-watch /cce-upgrade-watch",
                  "COPY LICENSE /usr/share/doc/cce-upgrade-watch/LICENSE"], copies
PY
log "image stages: the pinned base, user 65532, entrypoint, command and labels of make image"
