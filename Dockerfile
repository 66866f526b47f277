# syntax=docker/dockerfile:1.12
#
# One image, one binary: `imgflow api`, `imgflow worker`, `imgflow setup`...
# (the command is the container's arguments). Stages:
#
#   chef     Rust toolchain + cmake/nasm (libjpeg-turbo is built from source), libheif-dev
#            (HEIC/AVIF decoding links Debian's libheif) + cargo-chef
#   planner  reduces the sources to a dependency recipe (changes only with Cargo.toml/lock)
#   build    builds the dependencies from that recipe (a cached layer), then imgflow itself
#   bin      the binary on busybox, for compose's one-shot copy into LocalStack's init hook
#   runtime  distroless cc (glibc, libgcc; no shell, no package manager), user 65532
#
# The build and runtime stages are both Debian 12 (glibc 2.36). Besides libc,
# libm and libgcc_s, the binary links libheif 1.15 and what it links (libde265,
# dav1d, aom, x265, libnuma, libstdc++, zlib): the build stage copies exactly
# what `ldd` lists into the runtime's library directory (about 27 MB; x265 and
# aom's encoders are most of it). Not LD_LIBRARY_PATH: sandbox children start
# with an empty environment.

ARG RUST_IMAGE=rust:1.95.0-slim-bookworm
# distroless publishes no version tags: the digest is the pin (refresh it with
# `docker buildx imagetools inspect gcr.io/distroless/cc-debian12:nonroot`).
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f
ARG BUSYBOX_IMAGE=busybox:1.37.0

FROM ${RUST_IMAGE} AS chef
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake=3.25.1-1 nasm=2.16.01-1 \
        libheif-dev=1.15.1-1+deb12u1 \
    && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --version 0.1.78 --locked
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY --from=planner /src/recipe.json recipe.json
# Dependencies only: this layer is reused until Cargo.toml or Cargo.lock change.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo chef cook --release --locked --bin imgflow --recipe-path recipe.json
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo build --release --locked --bin imgflow \
    && strip target/release/imgflow \
    && install -D -m 0755 target/release/imgflow /out/imgflow \
    && lib="/out/lib/$(gcc -dumpmachine)" && mkdir -p "$lib" \
    && ldd /out/imgflow | awk '/=> \//{print $3}' \
        | grep -Ev '/(libc|libm|libgcc_s|libpthread|libdl|librt)\.so' \
        | xargs -r cp -L -t "$lib"

FROM ${BUSYBOX_IMAGE} AS bin
COPY --from=build /out/imgflow /imgflow
COPY --from=build /out/lib/ /imgflow-lib/
# compose.yaml runs this once to put the binary, and the libraries it links
# (libheif...), where LocalStack's ready.d hook finds them.
CMD ["sh", "-c", "cp /imgflow /shared/imgflow && mkdir -p /shared/lib && cp /imgflow-lib/*/* /shared/lib/"]

FROM ${RUNTIME_IMAGE} AS runtime
COPY --from=build /out/lib/ /usr/lib/
COPY --from=build /out/imgflow /usr/local/bin/imgflow
USER 65532:65532
# The API's port; the worker's health and metrics listener is 8081.
EXPOSE 8080 8081
# Non-loopback addresses: the API still falls back to loopback unless API keys
# are configured (IMGFLOW_API_KEY_SHA256), so this opens nothing by itself.
ENV IMGFLOW_LOG_FORMAT=json \
    IMGFLOW_LISTEN=0.0.0.0:8080 \
    IMGFLOW_WORKER_LISTEN=0.0.0.0:8081
# No shell in the image: the binary checks itself. Workers override the URL
# (http://127.0.0.1:8081/healthz); see compose.yaml.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/imgflow", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/imgflow"]
CMD ["up"]
