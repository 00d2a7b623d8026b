# syntax=docker/dockerfile:1
#
# Wharf container image.
#
#   docker build -t wharf .
#   buildah bud -t wharf .
#
# Both stages are Debian bookworm, the release the project builds and tests on,
# so the runtime libraries are exactly the ones the build linked against.
# BASE_IMAGE / RUNTIME_IMAGE let an offline build use locally imported bases
# (scripts/image-build does that).

ARG BASE_IMAGE=docker.io/library/debian:bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

# ---------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS build

ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config ca-certificates ccache \
      libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev \
      librdkafka-dev libhiredis-dev libspdlog-dev libfmt-dev libyaml-cpp-dev \
      prometheus-cpp-dev libssl-dev zlib1g-dev libjwt-dev libargon2-dev \
      libvalijson-dev nlohmann-json3-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# The source tree is copied without .git: pass the revision in so that
# `wharf --version` and wharf_build_info name the commit.
# The compiler cache lives in a build cache mount: rebuilds after a small
# change recompile only what changed (BuildKit and buildah keep it between builds).
ARG WHARF_REVISION=unknown
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake -S . -B /build -G Ninja \
      -DCMAKE_BUILD_TYPE=Release \
      -DWHARF_TESTS=OFF \
      -DWHARF_REVISION="${WHARF_REVISION}" \
 && cmake --build /build --target wharf \
 && strip --strip-unneeded /build/edge/wharf \
 && install -D -m 0755 /build/edge/wharf /out/usr/local/bin/wharf

# ---------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime

ARG DEBIAN_FRONTEND=noninteractive
# Runtime libraries only: the shared objects `wharf` links against.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      libboost-json1.81.0 libboost-url1.81.0 \
      librdkafka1 libhiredis0.14 libspdlog1.10 libfmt9 libyaml-cpp0.7 \
      libprometheus-cpp-core1.0 libssl3 zlib1g libjwt0 libargon2-1 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/* /var/log/apt /var/log/dpkg.log \
 && groupadd --gid 10001 wharf \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/wharf \
      --shell /usr/sbin/nologin wharf \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/wharf /etc/wharf

COPY --from=build /out/ /

# Fail the image build, not the first pod, when a runtime library is missing.
RUN if ldd /usr/local/bin/wharf | grep 'not found'; then exit 1; fi

ARG WHARF_REVISION=unknown
LABEL org.opencontainers.image.title="wharf" \
      org.opencontainers.image.description="IoT edge ingestion node: MQTT 3.1.1/5.0 and HTTP in, Kafka out" \
      org.opencontainers.image.revision="${WHARF_REVISION}"

USER 10001:10001
WORKDIR /var/lib/wharf
# MQTT, MQTT over TLS, HTTP ingest, admin (/metrics, /livez, /readyz).
EXPOSE 1883 8883 8080 8081
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/wharf"]
CMD ["--data-dir", "/var/lib/wharf", "--log-format", "json"]
