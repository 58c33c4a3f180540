# syntax=docker/dockerfile:1
# The cce-upgrade-watch operator image, for linux/amd64 and linux/arm64: the static musl
# binary on the same base `make image` builds without Docker (hack/image.sh): Debian's CA
# bundle, /etc/passwd and /etc/group with the non-root user 65532, and no shell, package
# manager or libc.
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg SOURCE=https://... -t REGISTRY/cce-upgrade-watch:0.1.0 --push .
#
# Both binaries are cross-compiled on an amd64 build stage with the scripts `make image`
# uses (hack/musl-build.sh: musl-gcc for amd64, zig for arm64).

ARG RUST_VERSION=1.95

FROM --platform=linux/amd64 docker.io/library/rust:${RUST_VERSION}-bookworm AS build
ARG TARGETARCH
# The build-info metric's revision (build.rs): the context has no git history to ask.
ARG REVISION=unknown
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools python3-venv binutils binutils-aarch64-linux-gnu \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies are fetched before the sources are copied, so a source change reuses them.
COPY Cargo.toml Cargo.lock ./
# The manifest names the benchmark target, so cargo needs its file to read the manifest.
COPY benches ./benches
RUN mkdir src && touch src/lib.rs && echo 'fn main() {}' > src/main.rs \
 && cargo fetch --locked \
 && rm -rf src
COPY build.rs ./
COPY hack ./hack
COPY src ./src
RUN --mount=type=cache,target=/src/target --mount=type=cache,target=/root/.cache/cce-upgrade-watch \
    case "$TARGETARCH" in \
      amd64) target=x86_64-unknown-linux-musl strip=strip ;; \
      arm64) target=aarch64-unknown-linux-musl strip=aarch64-linux-gnu-strip ;; \
      *) echo "unsupported architecture $TARGETARCH" >&2; exit 1 ;; \
    esac \
 && bin=$(CCE_UW_REVISION="$REVISION" hack/musl-build.sh "$target" | tail -n1) \
 && "$strip" -o /cce-upgrade-watch "$bin"

# The base files, from the pinned ca-certificates package (hack/image-base.env).
FROM --platform=linux/amd64 docker.io/library/debian:bookworm-slim AS base
COPY hack/image-base.env hack/image-base.sh /
RUN . /image-base.env \
 && apt-get update \
 && cd /tmp \
 && apt-get download "ca-certificates=$CA_CERTIFICATES_VERSION" \
 && echo "$CA_CERTIFICATES_SHA256  ca-certificates_${CA_CERTIFICATES_VERSION}_all.deb" | sha256sum --check \
 && /image-base.sh "/tmp/ca-certificates_${CA_CERTIFICATES_VERSION}_all.deb" /rootfs

FROM scratch
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=unknown
COPY --from=base /rootfs/ /
COPY --from=build /cce-upgrade-watch /cce-upgrade-watch
COPY LICENSE /usr/share/doc/cce-upgrade-watch/LICENSE
LABEL org.opencontainers.image.title="cce-upgrade-watch" \
      org.opencontainers.image.description="Kubernetes operator that mirrors Huawei Cloud CCE cluster upgrade workflows into UpgradeWorkflowWatch resources" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# Numeric, so Kubernetes can verify runAsNonRoot.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/cce-upgrade-watch"]
CMD ["run"]
