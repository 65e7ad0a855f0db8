# The leakbench image for `leakbench kube`: one binary, run as the
# coordinator (`leakbench run ... --agents N`) or as a load agent
# (`leakbench agent ...`). The manifests call /usr/local/bin/leakbench
# under /usr/bin/tini as user 10001; keep those three in step with
# src/commands/kube/manifests.rs (tests/kube.rs checks them).
#
#   docker build -t REGISTRY/leakbench:0.1.0 .

# Build: the toolchain of the crate's rust-version, the locked dependency
# versions. protox compiles the pprof schema in Rust, so no protoc.
FROM rust:1.85-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
COPY src src
RUN cargo build --release --locked --bin leakbench \
 && strip target/release/leakbench

# Run: a slim Debian with CA roots (for wss/https targets that use the
# system's), tini to forward the kubelet's SIGTERM (so sessions close and
# reports are written) and to reap children, and no root.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 leakbench \
 && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin leakbench
COPY --from=build /src/target/release/leakbench /usr/local/bin/leakbench
USER 10001
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/leakbench"]
CMD ["--help"]
