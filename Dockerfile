# maglevd in a container, for VPP deployments that run in containers.
#
#   docker build -t maglevd .
#   docker run -d --name maglevd --cap-drop ALL --cap-add NET_RAW \
#       -v /etc/vpp-maglev:/etc/vpp-maglev:ro -v /run/vpp:/run/vpp \
#       --network host maglevd
#
# The daemon runs as the unprivileged user maglevd (uid 10001) and needs only CAP_NET_RAW
# (ICMP and half-open TCP checks), which its binary carries as a file capability: without
# `--cap-add NET_RAW` it fails to start. To reach VPP's sockets add VPP's socket group:
# `--group-add <gid of vpp>`. With `healthchecker.netns` it must also enter another network
# namespace: run it as root with `--user 0 --cap-add SYS_ADMIN -v /var/run/netns:/var/run/netns`
# (see packaging/README.md).

FROM rust:slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --release -p maglevd --bin maglevd -p maglevc --bin maglevc \
    && strip target/release/maglevd target/release/maglevc

FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 maglevd \
    && useradd --system --uid 10001 --gid maglevd --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin maglevd \
    && mkdir -p /etc/vpp-maglev
COPY --from=build /src/target/release/maglevd /usr/sbin/maglevd
COPY --from=build /src/target/release/maglevc /usr/bin/maglevc
# A non-root user gets no capability from --cap-add alone: the binary carries CAP_NET_RAW.
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends libcap2-bin \
    && setcap cap_net_raw=ep /usr/sbin/maglevd \
    && apt-get purge -y -qq libcap2-bin \
    && rm -rf /var/lib/apt/lists/*
COPY etc/maglev.yaml /etc/vpp-maglev/maglev.yaml
USER maglevd
# The gRPC API listens on 127.0.0.1:9090: with --network host, the host's loopback. In a
# bridged container, add `--grpc-addr 0.0.0.0:9090` and publish it on loopback only
# (`-p 127.0.0.1:9090:9090`).
ENV MAGLEV_CONFIG=/etc/vpp-maglev/maglev.yaml
ENTRYPOINT ["/usr/sbin/maglevd"]
CMD ["--log-format", "json"]
