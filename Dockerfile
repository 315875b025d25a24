# syntax=docker/dockerfile:1
# Multi-stage build: compile in the Rust image, run on a slim base as a non-root user.
# The default ruleset is baked in at /etc/triage/rules; mount a directory over it to override
# (the directory is watched, so a mounted ConfigMap reloads without a restart).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
COPY rules rules
COPY src src
COPY benches benches
COPY examples examples
COPY tests tests
RUN cargo build --release --locked --bin triage

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin triage
COPY --from=build /src/target/release/triage /usr/local/bin/triage
COPY --from=build /src/rules /etc/triage/rules
USER 10001
ENV TRIAGE_LISTEN=0.0.0.0:50051 \
    TRIAGE_ADMIN_LISTEN=0.0.0.0:9090 \
    TRIAGE_RULES=/etc/triage/rules \
    TRIAGE_LOG_FORMAT=json
EXPOSE 50051 9090
ENTRYPOINT ["triage"]
CMD ["serve"]
