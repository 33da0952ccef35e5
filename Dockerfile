# syntax=docker/dockerfile:1
# vctts-server and vctts in a slim runtime image with ONNX Runtime 1.32 (CPU)
# and espeak-ng, as scripts/setup.sh installs them. Models are not in the
# image: mount the models folder at /models (config/kubernetes/).
#
#   docker build -t vctts:0.1.0 .
#   docker run --rm vctts:0.1.0 check-config /etc/vctts/gateway.yaml

# ---- build: the release binaries, and ONNX Runtime fetched and checked by setup.sh
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        cmake pkg-config python3 python3-pip espeak-ng \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# ONNX Runtime (PyPI wheel, pinned SHA-256) into .vctts/lib; the tests'
# Python tools are not needed here.
RUN VCTTS_TEST_TOOLS=0 scripts/setup.sh --quiet
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p vctts-server -p vctts-cli \
 && mkdir -p /out/bin /out/lib \
 && cp target/release/vctts-server target/release/vctts /out/bin/ \
 && cp .vctts/lib/libonnxruntime.so.1.32.0 /out/lib/

# ---- runtime
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        espeak-ng ca-certificates libstdc++6 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 vctts \
 && useradd --uid 10001 --gid 10001 --home-dir /var/lib/vctts --create-home --shell /usr/sbin/nologin vctts
COPY --from=build /out/bin/ /opt/vctts/bin/
COPY --from=build /out/lib/ /opt/vctts/lib/
COPY config/ /etc/vctts/
ENV PATH=/opt/vctts/bin:$PATH \
    VCTTS_ORT_LIB=/opt/vctts/lib/libonnxruntime.so.1.32.0 \
    VCTTS_MODELS=/models \
    VCTTS_DATA=/var/lib/vctts
USER 10001:10001
WORKDIR /var/lib/vctts
EXPOSE 8000 8001 8002 9880
ENTRYPOINT ["/opt/vctts/bin/vctts-server"]
CMD ["gateway", "--config", "/etc/vctts/gateway.yaml"]
