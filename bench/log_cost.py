#!/usr/bin/env python3
"""What the request log costs: the anonymous open page of two servers, one logging at the
production default (`info`: one JSON line per request) and one at `warn` (no request
lines, as bench.py runs them), stdout piped to a reader as Code Engine's log collector
reads it. Prints req/s and the server's CPU per request (all its threads, so the log
writer's thread counts too) for three interleaved rounds.

    python3 bench/log_cost.py [TARGET_DIR]      # default target/release
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402
from bench import stop_server, wrk  # noqa: E402
from smoke import free_port, wait_for  # noqa: E402

TARGET = next((a for a in sys.argv[1:] if not a.startswith("--")), "target/release")


def main():
    idp, _, env_base = bench.start_provider(TARGET)
    servers = {}
    try:
        for level in ("warn", "info"):
            port = free_port()
            app = f"http://127.0.0.1:{port}"
            env = dict(env_base, PORT=str(port), APPID_REDIRECT_URI=f"{app}/afterauth",
                       RUST_LOG=f"{level},rocket::=warn", LOG_FORMAT="json")
            reader = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
            server = subprocess.Popen([f"{TARGET}/rocket-appid"], env=env, stdout=reader.stdin,
                                      stderr=subprocess.DEVNULL)
            assert wait_for(app + "/noauth_route"), f"the server at {level} did not start"
            servers[level] = (server, reader, app)
        runs = {level: [] for level in servers}
        for _ in range(3):
            for level, (server, _, app) in servers.items():
                runs[level].append(wrk(app + "/noauth_route", "", 64, 6, server.pid))
        for level, results in runs.items():
            rps = [round(r["rps"]) for r in results]
            cpu = [round(r["cpu_us"], 1) for r in results]
            print(f"RUST_LOG={level:4s}  req/s {rps}  server CPU µs per request {cpu}")
    finally:
        for server, reader, _ in servers.values():
            stop_server(server)
            reader.terminate()
        idp.terminate()
        idp.wait(timeout=10)


if __name__ == "__main__":
    main()
