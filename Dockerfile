# syntax=docker/dockerfile:1
# The cce-upgrade-watch operator image: a static x86_64-unknown-linux-musl binary (no libc
# needed at run time) on distroless/static, which holds CA certificates, /etc/passwd with the
# non-root user 65532, and no shell or package manager.
#
#   docker build -t registry.example.com/platform/cce-upgrade-watch:0.1.0 .
#
# `make static` runs the same cargo build on the host (hack/static-build.sh) and checks that
# the result is statically linked.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
# ring (the TLS crypto) compiles C and assembly for the target: it needs musl-gcc.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
# Dependencies are fetched before the sources are copied, so a source change reuses them.
COPY Cargo.toml Cargo.lock ./
# The manifest names the benchmark target, so cargo needs its file to read the manifest.
COPY benches ./benches
RUN mkdir src && touch src/lib.rs && echo 'fn main() {}' > src/main.rs \
 && cargo fetch --locked --target x86_64-unknown-linux-musl \
 && rm -rf src
COPY src ./src
RUN --mount=type=cache,target=/src/target \
    cargo build --locked --release --target x86_64-unknown-linux-musl --bin cce-upgrade-watch \
 && cp target/x86_64-unknown-linux-musl/release/cce-upgrade-watch /cce-upgrade-watch \
 && strip /cce-upgrade-watch

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="cce-upgrade-watch" \
      org.opencontainers.image.description="Kubernetes operator that mirrors Huawei Cloud CCE cluster upgrade workflows into UpgradeWorkflowWatch resources" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /cce-upgrade-watch /cce-upgrade-watch
# Numeric, so Kubernetes can verify runAsNonRoot.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/cce-upgrade-watch"]
CMD ["run"]
