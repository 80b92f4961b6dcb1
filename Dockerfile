# syntax=docker/dockerfile:1
# emdp in a container: a Rust build stage and a small Debian runtime stage running as a
# non-root user. Build: docker build -t emdp .   Run: docker compose up (see docker-compose.yml).

FROM rust:1-bookworm AS builder
WORKDIR /src
# Dependencies first, so that editing the sources does not rebuild them: cache the registry
# and the target directory between builds (BuildKit cache mounts).
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p emdp-cli \
    && cp target/release/emdp /usr/local/bin/emdp

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 emdp \
    && useradd --system --uid 10001 --gid emdp --home-dir /var/lib/emdp --create-home --shell /usr/sbin/nologin emdp
COPY --from=builder /usr/local/bin/emdp /usr/local/bin/emdp
USER emdp:emdp
WORKDIR /var/lib/emdp
ENV EMDP_BIND=0.0.0.0:8000 \
    EMDP_LOG_FORMAT=json \
    DATABASE_URL=sqlite:///var/lib/emdp/emdp.db
EXPOSE 8000
VOLUME ["/var/lib/emdp"]
# The binary checks itself: GET /api/v1/ready must answer 200.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["emdp", "health", "--url", "http://127.0.0.1:8000"]
ENTRYPOINT ["emdp"]
CMD ["serve"]
