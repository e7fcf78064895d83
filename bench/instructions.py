#!/usr/bin/env python3
"""Instructions per request in the real server, counted with callgrind.

Wall-clock throughput on a shared 2-core VM moves by 10-15 % between identical runs; an
instruction count does not. For each route this starts the App ID emulator and the server
(examples/guard_overhead: the app plus the open page behind the guard) under
`valgrind --tool=callgrind`, counting only inside Rocket's per-request service function
(routing, guards, handler, templates, responders, fairings; not hyper's HTTP parsing and
writing, nor the kernel). It logs alice in, warms up, drops the counts so far, drives the
route with wrk (4 connections, 10 s) and divides the instructions by the requests.

With --whole-process it counts every instruction of the server process instead (hyper's
HTTP parsing and writing, tokio's scheduling, logging; still not the kernel's socket work).

Needs binaries with symbols (the release profile strips them):
    bench/run --instructions      # builds them into target/prof and runs this
    python3 bench/instructions.py target/prof/release [--whole-process] [--server-sessions]
"""
import glob
import os
import re
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402
from bench import login, stop_server  # noqa: E402
from smoke import free_port, wait_for  # noqa: E402

TARGET = next((a for a in sys.argv[1:] if not a.startswith("--")), "target/prof/release")
WHOLE = "--whole-process" in sys.argv
# --server-sessions: APPID_SESSION_STORE=server (the in-process store): a ticket cookie.
SERVER_SESSIONS = "--server-sessions" in sys.argv
# The server under test: the example (the app plus the guarded copy of the open page).
BINARY = "examples/guard_overhead"
# Name: (route, with the signed-in user's cookie).
ROUTES = {"anonymous": ("/noauth_route", False), "open": ("/noauth_route", True),
          "protected": ("/auth_route", True), "open, guarded": ("/noauth_route/guarded", True)}


def dump(pid):
    """Writes callgrind's counts so far to a new numbered file and starts again from zero."""
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)


def instructions_per_request(route, signed_in, env_base, out_dir):
    port = free_port()
    app = f"http://127.0.0.1:{port}"
    env = dict(env_base, PORT=str(port), APPID_REDIRECT_URI=f"{app}/afterauth")
    prefix = os.path.join(out_dir, f"callgrind-{port}")
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", *([] if WHOLE else ["--toggle-collect=*hyper_service_fn*"]),
         f"--callgrind-out-file={prefix}.out", f"{TARGET}/{BINARY}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(app + "/noauth_route", 120), "the server did not start under valgrind"
        cookie = login(app, "alice@example.com")
        header = ["-H", f"Cookie: {cookie}"] if signed_in else []
        subprocess.run(["wrk", "-t1", "-c4", "-d2s", *header, app + route], capture_output=True, check=True)
        dump(server.pid)  # login and warm-up: not counted
        out = subprocess.run(["wrk", "-t1", "-c4", "-d10s", *header, app + route],
                             capture_output=True, text=True, check=True).stdout
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        assert not bad, f"{route}: {bad.group(1)} responses were not 2xx/3xx"
        dump(server.pid)
        dumps = sorted(glob.glob(f"{prefix}.out.*"), key=lambda f: int(f.rsplit(".", 1)[1]))
        with open(dumps[-1]) as f:
            total = int(re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M).group(1))
        return total / requests, requests
    finally:
        stop_server(server)


def main():
    out_dir = "target/bench/callgrind"
    os.makedirs(out_dir, exist_ok=True)
    idp, idp_port, env_base = bench.start_provider(TARGET)
    env_base["APPID_INTROSPECTION"] = "cached"
    if SERVER_SESSIONS:
        env_base["APPID_SESSION_STORE"] = "server"
    results = {}
    try:
        assert wait_for(f"http://127.0.0.1:{idp_port}/"), "emulator did not start"
        # Counts do not depend on timing, so the three servers may share the cores.
        def run(name, route, signed_in):
            results[name] = instructions_per_request(route, signed_in, env_base, out_dir)
        threads = [threading.Thread(target=run, args=(name, *route)) for name, route in ROUTES.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        idp.terminate()
        idp.wait(timeout=10)
    missing = [name for name in ROUTES if name not in results]
    if missing:
        print(f"no result for {', '.join(missing)}")
        return 1
    counted = "in the whole server process" if WHOLE else "inside Rocket's request handling"
    sessions = "server-side sessions, in-process store" if SERVER_SESSIONS else "sessions in the cookie"
    print(f"instructions per request {counted} (callgrind, introspection cached, {sessions}):")
    for name, (route, signed_in) in ROUTES.items():
        per_request, requests = results[name]
        who = "signed in" if signed_in else "anonymous"
        print(f"  {name:14s} {route:24s} {who:9s} {per_request / 1000:7.1f}k  ({requests} requests)")
    anonymous, open_ = results["anonymous"][0], results["open"][0]
    print(f"ratio anonymous / signed-in open:  {anonymous / open_:.3f}  (the cost of being signed in; target 0.85)")
    print(f"ratio anonymous / protected:       {anonymous / results['protected'][0]:.3f}  (target 0.80)")
    print(f"ratio open / protected:            {open_ / results['protected'][0]:.3f}")
    print(f"ratio open / open, guarded:        {open_ / results['open, guarded'][0]:.3f}  (the guard alone)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
