# rocket-appid container image for IBM Cloud Code Engine (build strategy "dockerfile").
# Build stage: the official Rust image; the dependency layer is cached separately.
FROM rust:1-slim-bookworm AS builder
WORKDIR /src
# Set to "emulator" only for a development image that embeds the development identity provider.
ARG FEATURES=""
COPY Cargo.toml Cargo.lock ./
COPY emulator/Cargo.toml emulator/Cargo.toml
RUN mkdir -p src/bin emulator/src \
 && echo 'fn main() {}' > src/main.rs && echo 'fn main() {}' > src/bin/appid-emulator.rs \
 && touch src/lib.rs emulator/src/lib.rs \
 && cargo build --release --locked -p rocket-appid --no-default-features --features "$FEATURES" \
 && rm -rf src emulator/src
COPY src src
COPY emulator emulator
RUN touch src/main.rs src/lib.rs emulator/src/lib.rs \
 && cargo build --release --locked -p rocket-appid --no-default-features --features "$FEATURES" --bin rocket-appid

# Runtime stage: slim Debian with CA certificates, the binary, templates and static files.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=builder /src/target/release/rocket-appid /usr/local/bin/rocket-appid
COPY Rocket.toml ./
COPY templates ./templates
COPY static ./static
ENV ROCKET_PROFILE=release ROCKET_ADDRESS=0.0.0.0 PORT=8080
USER 10001
EXPOSE 8080
CMD ["rocket-appid"]
