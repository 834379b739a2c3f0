# syntax=docker/dockerfile:1
# caseshare: one image for every role (`serve`, `api`, `worker`, operator
# commands). Build from the repository root:
#   docker build -t caseshare .
# or let deploy/compose.yaml build it.
#
# The base images are build arguments; the defaults are the images this file
# is meant for. CI (.ci/containers image), which reaches no image registry,
# builds the runtime stage below on a Debian image of its own, with the
# binary built on the machine in place of the builder stage's.

# The toolchain matches Cargo.toml's rust-version.
ARG BUILDER_IMAGE=rust:1.89-slim-bookworm
# glibc, libgcc, CA certificates, no shell, no package manager; runs as
# uid 65532 ("nonroot").
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

# --- build -------------------------------------------------------------------
FROM ${BUILDER_IMAGE} AS builder
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the build between image builds; the
# binary is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin caseshare \
    && cp target/release/caseshare /usr/local/bin/caseshare
# The local content store's directory and the generated keys' directory
# (R60), owned by the runtime user (the runtime image has no shell to
# create them).
RUN mkdir -p /var/lib/caseshare/content /var/lib/caseshare/keys

# --- runtime -----------------------------------------------------------------
# (.ci/containers image builds from this line to the end, verbatim.)
FROM ${RUNTIME_IMAGE} AS runtime
COPY --from=builder /usr/local/bin/caseshare /usr/local/bin/caseshare
COPY --from=builder --chown=65532:65532 /var/lib/caseshare /var/lib/caseshare
USER 65532:65532
WORKDIR /var/lib/caseshare
# Listen on every interface inside the container; the rest of the
# configuration comes from CASESHARE_* variables (see README).
ENV CASESHARE_HTTP_ADDR=0.0.0.0:8080 \
    CASESHARE_METRICS_ADDR=0.0.0.0:9464 \
    CASESHARE_CONTENT_DIR=/var/lib/caseshare/content \
    CASESHARE_KEY_FILE=/var/lib/caseshare/keys/keys \
    CASESHARE_LOG_FORMAT=json
EXPOSE 8080 9464
# The binary probes its own /healthz (no curl in this image). Workers serve
# it on the metrics address: run them with `healthcheck --worker`
# (deploy/compose.yaml does).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/caseshare", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/caseshare"]
CMD ["serve"]
