#!/usr/bin/env python3
"""Outage drill over real HTTP (issue 18, security.md R-S2/F1): the standalone emulator and
the app as separate processes with the default settings (introspection `cached` 60 s, roles
300 s, outage window 900 s). Alice signs in and opens the protected page; then the emulator
is stopped (SIGSTOP: it accepts connections but never answers, so every call times out, the
worst kind of outage) for OUTAGE seconds, while alice opens the page every POLL seconds;
then it is started again (SIGCONT) and alice must get in without a new login (once the
open circuit breaker's next trial call succeeds: within `breaker_open_secs`, 30 s).

Usage: scripts/outage_drill.py [TARGET_DIR] [OUTAGE_SECS] [POLL_SECS]
       (defaults: target/debug, 960, 20). Prints one line per poll and a summary.
"""
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smoke import browser, free_port, login, wait_for  # noqa: E402

TARGET = sys.argv[1] if len(sys.argv) > 1 else "target/debug"
OUTAGE = int(sys.argv[2]) if len(sys.argv) > 2 else 960
POLL = int(sys.argv[3]) if len(sys.argv) > 3 else 20


def fetch(opener, url, accept="text/html"):
    """GET `url`; a longer wait than smoke.py's: while two breakers are half-open one request
    may wait for two trial calls (the request timeout each)."""
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with opener.open(request, timeout=60) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def logins(app):
    """Completed logins so far, from the app's metrics."""
    for line in fetch(browser(), app + "/metrics")[2].splitlines():
        if line.startswith("rocket_appid_logins_succeeded_total "):
            return int(float(line.split()[1]))
    return 0


def main():
    idp_port, app_port = free_port(), free_port()
    app = f"http://127.0.0.1:{app_port}"
    tenant = "8794b41b-4705-4381-a96e-46dfabf3f249"
    env = dict(os.environ)
    env.update({
        "EMULATOR_PORT": str(idp_port), "EMULATOR_CLIENT_ID": "drill-client",
        "EMULATOR_CLIENT_SECRET": "drill-secret", "EMULATOR_API_KEY": "drill-api-key",
        "EMULATOR_REDIRECT_URIS": f"{app}/afterauth",
    })
    idp = subprocess.Popen([f"{TARGET}/appid-emulator"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    app_env = {k: v for k, v in os.environ.items() if not k.startswith(("APPID_", "ROCKET_"))}
    app_env.update({
        "ROCKET_PROFILE": "release", "ROCKET_ADDRESS": "127.0.0.1", "PORT": str(app_port),
        "APPID_CLIENT_ID": "drill-client", "APPID_CLIENT_SECRET": "drill-secret",
        "APPID_OAUTH_SERVER_URL": f"http://127.0.0.1:{idp_port}/oauth/v4/{tenant}",
        "APPID_REDIRECT_URI": f"{app}/afterauth", "IBM_CLOUD_APIKEY": "drill-api-key",
        "IBM_CLOUD_IAM_URL": f"http://127.0.0.1:{idp_port}/identity/token",
        "APPID_METRICS": "true", "SESSION_SECRET_KEY": "a drill passphrase that is long enough to be stretched",
    })
    wait_for(f"http://127.0.0.1:{idp_port}/")
    server = subprocess.Popen([f"{TARGET}/rocket-appid"], env=app_env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = []
    try:
        wait_for(f"{app}/health")
        opener, status, _ = login(app, "alice@example.com")
        status, _, _ = fetch(opener, app + "/auth_route")
        print(f"signed in, protected page: {status}", flush=True)
        logins_before = logins(app)

        idp.send_signal(signal.SIGSTOP)
        stopped = time.time()
        print(f"emulator stopped for {OUTAGE} s", flush=True)
        while time.time() - stopped < OUTAGE:
            asked = time.time()
            status, _, _ = fetch(opener, app + "/auth_route")
            took = time.time() - asked
            _, _, ready = fetch(browser(), app + "/ready", accept="application/json")
            at = asked - stopped
            results.append((at, status))
            print(f"t={at:6.0f} s  /auth_route {status} ({took:4.1f} s)  /ready {ready}", flush=True)
            time.sleep(max(0.0, POLL - (time.time() - asked)))

        idp.send_signal(signal.SIGCONT)
        continued = time.time()
        print("emulator started again", flush=True)
        # An open circuit breaker lets its next trial call through within breaker_open_secs.
        while True:
            status, headers, _ = fetch(opener, app + "/auth_route")
            if status == 200 or time.time() - continued > 90:
                break
            time.sleep(2)
        back = time.time() - continued
        metrics = fetch(browser(), app + "/metrics")[2]
        stale = [line for line in metrics.splitlines() if line.startswith("rocket_appid_served_stale_total")]
        print(f"after the outage: /auth_route {status} after {back:.0f} s (Location: {headers.get('Location')})")
        print(f"completed logins: {logins_before} before the outage, {logins(app)} after it")
        print("\n".join(stale))
        served = [at for at, s in results if s == 200]
        refused = [at for at, s in results if s != 200]
        print(f"summary: served {len(served)} of {len(results)} polls; last 200 at t={max(served, default=-1):.0f} s; "
              f"first non-200 at t={min(refused, default=-1):.0f} s; after restart {status} within {back:.0f} s")
    finally:
        idp.send_signal(signal.SIGCONT)
        server.terminate()
        idp.terminate()
        server.wait(timeout=30)
        idp.wait(timeout=10)


if __name__ == "__main__":
    main()
