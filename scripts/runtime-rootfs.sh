#!/usr/bin/env bash
# Assembles in DIR every file the runtime image holds apart from the app's own (Rocket.toml,
# templates/, static/): the binary, the shared libraries it links and the dynamic loader (as
# `ldd` lists them on this system, so they match the glibc it was linked against), the CA
# bundle, a minimal /etc/passwd and /etc/group naming the numeric non-root user, and /tmp.
# Nothing else: no shell, no package manager, no coreutils.
#
# Usage: scripts/runtime-rootfs.sh DIR BINARY [CA_BUNDLE]
# The Dockerfile's builder stage runs it after `cargo build`; .ci/container-check runs it on
# the host that built the binary it checks.
set -euo pipefail
out=${1:?usage: runtime-rootfs.sh DIR BINARY [CA_BUNDLE]}
bin=${2:?usage: runtime-rootfs.sh DIR BINARY [CA_BUNDLE]}
ca=${3:-/etc/ssl/certs/ca-certificates.crt}

mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs" "$out/tmp"
chmod 1777 "$out/tmp"
cp "$bin" "$out/usr/local/bin/rocket-appid"
cp "$ca" "$out/etc/ssl/certs/ca-certificates.crt"

# Every absolute path ldd prints: the libraries (`name => /path (addr)`) and the loader
# (`/lib64/ld-linux-x86-64.so.2 (addr)`), copied as files (-L) at the path the binary and
# the loader look them up by.
libs=$(ldd "$bin" | grep -o '/[^ ]*' | sort -u)
[[ -n $libs ]] || { echo "runtime-rootfs: ldd lists no libraries for $bin" >&2; exit 1; }
for lib in $libs; do
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
done

# The user and group of `USER 10001:10001`, so tools that map ids to names see who runs.
cat >"$out/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/nonexistent
app:x:10001:10001:rocket-appid:/nonexistent:/nonexistent
PASSWD
cat >"$out/etc/group" <<'GROUP'
root:x:0:
app:x:10001:
GROUP
