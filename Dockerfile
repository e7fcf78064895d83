# rocket-appid container image for IBM Cloud Code Engine (build strategy "dockerfile").
# Plain Dockerfile syntax only (no "# syntax=" line, RUN --mount or heredocs), so BuildKit,
# Buildah and Kaniko build it alike. Checked by .ci/container-check (see docs/DEPLOYMENT.md).

# Build stage: the official Rust image; the dependency layer is cached separately.
FROM rust:1-slim-bookworm AS builder
WORKDIR /src
# Set to "emulator" only for a development image that embeds the development identity
# provider; the default release image does not contain it.
ARG FEATURES=""
COPY Cargo.toml Cargo.lock ./
COPY emulator/Cargo.toml emulator/Cargo.toml
# Dependencies first, against stub sources: reused while Cargo.toml and Cargo.lock are unchanged.
# Cargo refuses a manifest whose [[bench]] targets have no file, so each gets a stub that stays
# (benches are not built here; bench names are identifiers, so word splitting is safe).
# hadolint ignore=SC2013
RUN mkdir -p src/bin emulator/src benches \
 && echo 'fn main() {}' > src/main.rs && echo 'fn main() {}' > src/bin/appid-emulator.rs \
 && touch src/lib.rs emulator/src/lib.rs \
 && for bench in $(sed -n '/^\[\[bench\]\]/,/^name/ s/^name *= *"\(.*\)"/\1/p' Cargo.toml); do \
      echo 'fn main() {}' > "benches/$bench.rs"; done \
 && cargo build --release --locked -p rocket-appid --no-default-features --features "$FEATURES" \
 && rm -rf src emulator/src
COPY src src
COPY emulator emulator
COPY scripts/runtime-rootfs.sh scripts/runtime-rootfs.sh
# touch: make cargo rebuild the real sources rather than reuse the stubs. Then everything the
# runtime stage holds besides the app's files goes to /out: the binary, the libraries and
# loader `ldd` lists (this stage's glibc, the one the binary was linked against), the CA
# bundle, /etc/passwd and /etc/group for uid 10001, and /tmp.
RUN touch src/main.rs src/lib.rs emulator/src/lib.rs \
 && cargo build --release --locked -p rocket-appid --no-default-features --features "$FEATURES" --bin rocket-appid \
 && scripts/runtime-rootfs.sh /out target/release/rocket-appid

# Runtime stage: no distribution at all (no shell, no package manager, no coreutils): the
# files assembled in the builder stage's /out, then Rocket.toml, templates and static files.
# Rocket.toml's relative template_dir/static_dir resolve against WORKDIR. Outbound TLS
# (reqwest + rustls-platform-verifier) trusts /etc/ssl/certs/ca-certificates.crt.
FROM scratch AS runtime
COPY --from=builder /out/ /
WORKDIR /app
COPY Rocket.toml ./
COPY templates ./templates
COPY static ./static
# The release profile binds all interfaces; Code Engine sets PORT (the app maps it to Rocket's port).
ENV ROCKET_PROFILE=release ROCKET_ADDRESS=0.0.0.0 PORT=8080
# Numeric user and group, so platforms can tell it is not root.
USER 10001:10001
EXPOSE 8080
# SIGTERM (the default stop signal): the app finishes the requests in flight and exits 0
# (Rocket.toml [default.shutdown], src/main.rs).
CMD ["/usr/local/bin/rocket-appid"]
