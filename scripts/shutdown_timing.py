#!/usr/bin/env python3
"""How fast the app stops on SIGTERM, over many runs (issue "several instances": an idle
instance must exit within 2 s; a request in flight must still complete).

Usage: scripts/shutdown_timing.py [TARGET_DIR] [RUNS]   (defaults: target/debug, 100)
Each run starts the app against the standalone emulator, then either
  idle:      keeps one keep-alive connection open (a request already answered) and sends
             SIGTERM: prints the time from SIGTERM to the process's exit;
  in flight: starts a login whose code exchange takes 1 s at the provider, sends SIGTERM
             0.3 s into it: checks that the callback is answered (303 with a session) and
             prints the time from SIGTERM to exit.
Prints min / median / p95 / max per scenario and exits 1 if any run failed.
"""
import http.client
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import smoke  # noqa: E402  (free_port, browser, fetch, wait_for)

TARGET = sys.argv[1] if len(sys.argv) > 1 else "target/debug"
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 100


def start_emulator(app, delay_ms):
    port = smoke.free_port()
    secret, api_key = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    env = dict(os.environ, EMULATOR_PORT=str(port), EMULATOR_CLIENT_ID="timing", EMULATOR_CLIENT_SECRET=secret,
               EMULATOR_API_KEY=api_key, EMULATOR_REDIRECT_URIS=f"{app}/afterauth",
               EMULATOR_TOKEN_DELAY_MS=str(delay_ms))
    idp = subprocess.Popen([f"{TARGET}/appid-emulator"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert smoke.wait_for(f"http://127.0.0.1:{port}/"), "emulator did not start"
    return idp, port, secret, api_key


def start_app(app_port, idp_port, secret, api_key):
    app = f"http://127.0.0.1:{app_port}"
    env = smoke.app_environment(app_port, idp_port, "timing", secret, api_key)
    server = subprocess.Popen([f"{TARGET}/rocket-appid"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert smoke.wait_for(f"{app}/health"), "app did not start"
    return server


def stop_time(server):
    sent = time.monotonic()
    server.terminate()
    code = server.wait(timeout=60)
    return time.monotonic() - sent, code


def idle_run(port, idp_port, secret, api_key):
    server = start_app(port, idp_port, secret, api_key)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/health")  # HTTP/1.1: the connection stays open afterwards
    connection.getresponse().read()
    elapsed, code = stop_time(server)
    connection.close()
    return elapsed, code == 0


def in_flight_run(port, idp_port, secret, api_key):
    app = f"http://127.0.0.1:{port}"
    server = start_app(port, idp_port, secret, api_key)
    opener = smoke.browser()
    status, headers, _ = smoke.fetch(opener, app + "/auth_route")
    authorization = urllib.parse.urlsplit(headers["Location"])
    form = dict(urllib.parse.parse_qsl(authorization.query), login_hint="alice@example.com")
    status, headers, _ = smoke.fetch(opener, urllib.parse.urlunsplit(authorization._replace(query="")), data=form)
    callback = headers["Location"]
    answer = {}

    def exchange():
        answer["status"], answer["headers"], _ = smoke.fetch(opener, callback)

    thread = threading.Thread(target=exchange)
    thread.start()
    time.sleep(0.3)
    elapsed, code = stop_time(server)
    thread.join(timeout=30)
    completed = answer.get("status") == 303 and "appid_session=" in str(answer.get("headers", ""))
    return elapsed, code == 0 and completed


def summary(name, times, failures):
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    print(f"{name}: {len(times)} runs, {failures} failed; SIGTERM to exit "
          f"min {times[0]:.3f} s, median {statistics.median(times):.3f} s, p95 {p95:.3f} s, max {times[-1]:.3f} s")


def main():
    failed = 0
    scenarios = (("idle keep-alive connection", idle_run, 0), ("login in flight (1 s exchange)", in_flight_run, 1000))
    for name, run, delay in scenarios:
        times, failures = [], 0
        for _ in range(RUNS):
            # A fresh emulator per run: it must list the run's redirect URI.
            app_port = smoke.free_port()
            idp, idp_port, secret, api_key = start_emulator(f"http://127.0.0.1:{app_port}", delay)
            try:
                elapsed, ok = run(app_port, idp_port, secret, api_key)
            finally:
                idp.terminate()
                idp.wait(timeout=10)
            times.append(elapsed)
            if not ok:
                failures += 1
                print(f"  run {len(times)} failed (after {elapsed:.3f} s)")
        summary(name, times, failures)
        failed += failures
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
