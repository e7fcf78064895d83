#!/usr/bin/env python3
"""Load benchmark of rocket-appid against the App ID emulator (both release binaries).

For each introspection policy (never, cached) it starts the app, measures the time from
process start to the first successful request, logs alice in, and runs wrk against the
open route and the protected route of the same server in the same run (interleaved),
counting the provider calls the emulator received during the protected runs. Then it
measures RSS under 256 connections. Last, the guard alone: examples/guard_overhead serves the
open page with and without the AuthorizedUser guard (same template, same session), so the
ratio of those two is the guard's own cost, apart from the protected page's larger content.
Each run also reads the server's CPU time (user + system) per request, which does not
depend on how much CPU wrk takes from the server. Then the cost of being signed in, per
session store: the anonymous open page, the same page signed in and the protected page,
with the session in the cookie and the in-process store, then (when `redis-server` is
installed) with the deny-list in Redis and with server-side sessions in Redis. Prints
tables and writes target/bench/results.json.

Usage: bench/bench.py [TARGET_DIR] [--quick] [--pin] [--stores-only]
"""
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
from smoke import browser, fetch, free_port, wait_for  # noqa: E402

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
TARGET = ARGS[0] if ARGS else "target/release"
QUICK = "--quick" in sys.argv
# --pin: the server on core 1, wrk on core 0, so the load generator does not steal the
# server's CPU (on a 2-core machine it otherwise takes about half of it).
PIN = "--pin" in sys.argv
# --stores-only: only the session-store comparison (the cost of being signed in).
STORES_ONLY = "--stores-only" in sys.argv
DURATION = 3 if QUICK else 8
ROUNDS = 1 if QUICK else 2
TENANT = "8794b41b-4705-4381-a96e-46dfabf3f249"


def calls(idp):
    with urllib.request.urlopen(f"http://127.0.0.1:{idp}/_emulator/calls", timeout=5) as r:
        return json.loads(r.read())


def cpu_seconds(pid):
    """User + system CPU time the process has used so far (`/proc/PID/stat`)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url, cookie, connections, duration, server_pid=None):
    """One wrk run. With `server_pid`, also the server's CPU time per request (user +
    system, µs): unlike req/s it does not depend on how much CPU wrk took from the server."""
    pin = ["taskset", "-c", "0"] if PIN else []
    threads = "-t1" if PIN else "-t2"
    cpu_before = cpu_seconds(server_pid) if server_pid else None
    out = subprocess.run(
        pin + ["wrk", threads, f"-c{connections}", f"-d{duration}s", "--latency"]
        + (["-H", f"Cookie: {cookie}"] if cookie else []) + [url],
        capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    cpu_us = (cpu_seconds(server_pid) - cpu_before) / max(requests, 1) * 1e6 if server_pid else None
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": lat.get("50"), "p99": lat.get("99"), "cpu_us": cpu_us,
            "non_2xx": int(bad.group(1)) if bad else 0, "socket_errors": errors.group(1) if errors else None}


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def login(app, email):
    opener = browser()
    status, headers, _ = fetch(opener, app + "/auth_route")
    authorization = urllib.parse.urlsplit(headers["Location"])
    form = dict(urllib.parse.parse_qsl(authorization.query))
    form["login_hint"] = email
    _, headers, _ = fetch(opener, urllib.parse.urlunsplit(authorization._replace(query="")), data=form)
    status, headers, _ = fetch(opener, headers["Location"])
    assert status == 303, status
    # Land on the page the login returns to, as a browser does: its first visit removes the
    # one-shot "just signed in" marker (the login-loop guard's, R-C7). Sending the marker on
    # every request would make every protected response remove it again with a Set-Cookie,
    # which no browser would see after the first page.
    status, _, _ = fetch(opener, urllib.parse.urljoin(app, headers["Location"]))
    assert status == 200, status
    jar = opener.handlers[[type(h).__name__ for h in opener.handlers].index("HTTPCookieProcessor")].cookiejar
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def assert_steady_cookie(url, cookie):
    """wrk ignores Set-Cookie, so it keeps sending the cookie of the login. Once that is older
    than the session's activity granularity (60 s, `ACTIVITY_GRANULARITY_SECS`), every
    guarded response would re-seal it (the idle-timeout touch), which a browser, taking the
    new cookie, sees once a minute. The runs stay well inside that window; this checks it
    at their end, so a longer DURATION cannot silently measure the re-sealing."""
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=5) as r:
        assert r.status == 200, r.status
        assert r.headers.get("Set-Cookie") is None, \
            "the session cookie is older than 60 s: guarded responses re-seal it; shorten the runs"


def stop_server(server):
    """SIGTERM, then SIGKILL if Rocket is still in its shutdown grace period (it waits up to
    the configured grace, 25 s, for connections a load generator may have left half-open).
    The benchmark does not measure shutdown; scripts/smoke.py and .ci/container-check do."""
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


def run_policy(policy, idp_port, env_base):
    port = free_port()
    app = f"http://127.0.0.1:{port}"
    env = dict(env_base, PORT=str(port), APPID_REDIRECT_URI=f"{app}/afterauth", APPID_INTROSPECTION=policy)
    started = time.perf_counter()
    pin = ["taskset", "-c", "1"] if PIN else []
    server = subprocess.Popen(pin + [f"{TARGET}/rocket-appid"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:  # time to the first successful request, polling every millisecond
            try:
                with urllib.request.urlopen(app + "/noauth_route", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.001)
        start_ms = (time.perf_counter() - started) * 1000
        cookie = login(app, "alice@example.com")
        wrk(app + "/auth_route", cookie, 64, 1)  # warm-up
        runs = {"open": [], "protected": []}
        provider_calls = 0
        for round_ in range(ROUNDS):
            # Alternating order (open, protected, protected, open …), so a drift in the
            # machine's speed during the runs does not favour the route measured first.
            for page in ("open", "protected") if round_ % 2 == 0 else ("protected", "open"):
                if page == "open":
                    runs["open"].append(wrk(app + "/noauth_route", cookie, 64, DURATION, server.pid))
                else:
                    before = calls(idp_port)["total"]
                    runs["protected"].append(wrk(app + "/auth_route", cookie, 64, DURATION, server.pid))
                    provider_calls += calls(idp_port)["total"] - before
        protected_requests = sum(r["rps"] for r in runs["protected"]) * DURATION
        peak = [0]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kb(server.pid)[0])
                time.sleep(0.05)
        sampler = threading.Thread(target=sample)
        sampler.start()
        load256 = wrk(app + "/auth_route", cookie, 256, DURATION)
        stop.set()
        sampler.join()
        _, hwm = rss_kb(server.pid)
        assert_steady_cookie(app + "/auth_route", cookie)
    finally:
        stop_server(server)
    mean = lambda key, xs: sum(x[key] for x in xs) / len(xs)  # noqa: E731
    return {
        "policy": policy, "start_to_first_request_ms": round(start_ms, 1),
        "open_rps": round(mean("rps", runs["open"])), "protected_rps": round(mean("rps", runs["protected"])),
        "ratio": round(mean("rps", runs["protected"]) / mean("rps", runs["open"]), 3),
        "open_cpu_us": round(mean("cpu_us", runs["open"]), 1),
        "protected_cpu_us": round(mean("cpu_us", runs["protected"]), 1),
        "cpu_ratio": round(mean("cpu_us", runs["open"]) / mean("cpu_us", runs["protected"]), 3),
        "open_p50": runs["open"][-1]["p50"], "open_p99": runs["open"][-1]["p99"],
        "protected_p50": runs["protected"][-1]["p50"], "protected_p99": runs["protected"][-1]["p99"],
        "protected_requests": round(protected_requests), "provider_calls": provider_calls,
        "provider_calls_per_1000": round(1000 * provider_calls / max(protected_requests, 1), 4),
        "non_2xx": sum(r["non_2xx"] for r in runs["open"] + runs["protected"]) + load256["non_2xx"],
        "rps_256": round(load256["rps"]), "peak_rss_mb_256": round(peak[0] / 1024, 1), "vmhwm_mb": round(hwm / 1024, 1),
    }


def start_redis():
    """A throw-away redis-server on a free loopback port, or None when it is not installed."""
    if subprocess.run(["sh", "-c", "command -v redis-server"], capture_output=True).returncode != 0:
        return None, None
    port = free_port()
    server = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
        if ping.stdout.strip() == "PONG":
            return server, f"redis://127.0.0.1:{port}"
        time.sleep(0.05)
    server.kill()
    raise RuntimeError("redis-server did not start")


def run_store_mode(label, extra_env, idp_port, env_base):
    """The anonymous open page, the same page signed in and the protected page of one server
    with the session store of `extra_env`, interleaved, introspection `cached` (the default)."""
    port = free_port()
    app = f"http://127.0.0.1:{port}"
    env = dict(env_base, PORT=str(port), APPID_REDIRECT_URI=f"{app}/afterauth", APPID_INTROSPECTION="cached",
               **extra_env)
    pin = ["taskset", "-c", "1"] if PIN else []
    server = subprocess.Popen(pin + [f"{TARGET}/rocket-appid"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    pages = {"anonymous": ("/noauth_route", False), "signed_in": ("/noauth_route", True),
             "protected": ("/auth_route", True)}
    try:
        assert wait_for(app + "/noauth_route"), f"the app ({label}) did not start"
        cookie = login(app, "alice@example.com")
        wrk(app + "/auth_route", cookie, 64, 1)  # warm-up
        runs = {page: [] for page in pages}
        order = list(pages)
        for round_ in range(ROUNDS):
            for page in order if round_ % 2 == 0 else reversed(order):
                path, signed_in = pages[page]
                runs[page].append(wrk(app + path, cookie if signed_in else "", 64, DURATION, server.pid))
        assert_steady_cookie(app + "/auth_route", cookie)
    finally:
        stop_server(server)
    mean = lambda xs, key="rps": sum(x[key] for x in xs) / len(xs)  # noqa: E731
    result = {"store": label, "cookie_bytes": len(cookie),
              "non_2xx": sum(r["non_2xx"] for page in runs for r in runs[page])}
    for page in pages:
        result[f"{page}_rps"] = round(mean(runs[page]))
        result[f"{page}_cpu_us"] = round(mean(runs[page], "cpu_us"), 1)
    for page in ("signed_in", "protected"):
        result[f"{page}_ratio"] = round(result[f"{page}_rps"] / result["anonymous_rps"], 3)
    return result


def run_store_modes(idp_port, env_base):
    modes = [("cookie, in-process store", {})]
    redis, url = start_redis()
    if redis is None:
        print("(skipped the Redis modes: redis-server is not installed; bench/run installs it)")
    else:
        modes += [("cookie, Redis deny-list", {"APPID_STORE_URL": url}),
                  ("server-side, Redis", {"APPID_STORE_URL": url, "APPID_SESSION_STORE": "server"})]
    try:
        return [run_store_mode(label, extra, idp_port, env_base) for label, extra in modes]
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)


def run_guard_only(idp_port, env_base):
    """The guard alone, in a real server: examples/guard_overhead serves the open page at
    /noauth_route and the same page behind AuthorizedUser at /noauth_route/guarded (same
    template, same header, same session), introspection policy `cached` (the default)."""
    binary = f"{TARGET}/examples/guard_overhead"
    if not os.path.exists(binary):
        print(f"(skipped the guard-only comparison: {binary} not built; bench/run builds it)")
        return None
    port = free_port()
    app = f"http://127.0.0.1:{port}"
    env = dict(env_base, PORT=str(port), APPID_REDIRECT_URI=f"{app}/afterauth", APPID_INTROSPECTION="cached")
    pin = ["taskset", "-c", "1"] if PIN else []
    server = subprocess.Popen(pin + [binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(app + "/noauth_route"), "guard_overhead did not start"
        # The guarded copy must really be guarded: without a session it starts a login.
        status, headers, _ = fetch(browser(), app + "/noauth_route/guarded")
        assert status == 303 and "/authorization?" in headers["Location"], status
        cookie = login(app, "alice@example.com")
        wrk(app + "/noauth_route/guarded", cookie, 64, 1)  # warm-up
        runs = {"open": [], "guarded": []}
        for round_ in range(ROUNDS):
            for page in ("open", "guarded") if round_ % 2 == 0 else ("guarded", "open"):
                path = "/noauth_route" if page == "open" else "/noauth_route/guarded"
                runs[page].append(wrk(app + path, cookie, 64, DURATION, server.pid))
        assert_steady_cookie(app + "/noauth_route/guarded", cookie)
    finally:
        stop_server(server)
    mean = lambda xs, key="rps": sum(x[key] for x in xs) / len(xs)  # noqa: E731
    return {"open_rps": round(mean(runs["open"])), "guarded_rps": round(mean(runs["guarded"])),
            "ratio": round(mean(runs["guarded"]) / mean(runs["open"]), 3),
            "open_cpu_us": round(mean(runs["open"], "cpu_us"), 1),
            "guarded_cpu_us": round(mean(runs["guarded"], "cpu_us"), 1),
            "cpu_ratio": round(mean(runs["open"], "cpu_us") / mean(runs["guarded"], "cpu_us"), 3),
            "non_2xx": sum(r["non_2xx"] for r in runs["open"] + runs["guarded"])}


def start_provider(target):
    """The standalone App ID emulator with a fresh client secret and API key, and the app's
    environment for it (the Flask pattern's variables only). Returns (process, port, env)."""
    idp_port = free_port()
    secret, api_key = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    idp_env = dict(os.environ, EMULATOR_PORT=str(idp_port), EMULATOR_CLIENT_ID="bench-client",
                   EMULATOR_CLIENT_SECRET=secret, EMULATOR_API_KEY=api_key)
    idp = subprocess.Popen([f"{target}/appid-emulator"], env=idp_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APPID_", "ROCKET_", "RUST_LOG"))}
    env.update({
        "ROCKET_PROFILE": "release", "ROCKET_ADDRESS": "127.0.0.1", "RUST_LOG": "warn",
        "APPID_CLIENT_ID": "bench-client", "APPID_CLIENT_SECRET": secret, "IBM_CLOUD_APIKEY": api_key,
        "APPID_OAUTH_SERVER_URL": f"http://127.0.0.1:{idp_port}/oauth/v4/{TENANT}",
        "IBM_CLOUD_IAM_URL": f"http://127.0.0.1:{idp_port}/identity/token",
        "SESSION_SECRET_KEY": secrets.token_urlsafe(48),
    })
    return idp, idp_port, env


def main():
    idp, idp_port, env_base = start_provider(TARGET)
    try:
        assert wait_for(f"http://127.0.0.1:{idp_port}/"), "emulator did not start"
        results = [] if STORES_ONLY else [run_policy(policy, idp_port, env_base) for policy in ("never", "cached")]
        guard_only = None if STORES_ONLY else run_guard_only(idp_port, env_base)
        stores = run_store_modes(idp_port, env_base)
    finally:
        idp.terminate()
        idp.wait(timeout=10)
    os.makedirs("target/bench", exist_ok=True)
    with open("target/bench/results.json", "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(),
                   "duration_s": DURATION, "rounds": ROUNDS, "results": results, "guard_only": guard_only,
                   "stores": stores},
                  f, indent=2)
    placement = "server on core 1, wrk (1 thread) on core 0" if PIN else "server and wrk (2 threads) share both cores"
    print(f"wrk: 64 connections, {DURATION} s per run, {ROUNDS} interleaved round(s); same server, same run; {placement}")
    print("| introspection | open req/s | protected req/s | ratio | open p50/p99 | protected p50/p99 "
          "| provider calls / 1,000 protected | RSS @256 conn | start → first request |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['policy']} | {r['open_rps']} | {r['protected_rps']} | {r['ratio']} | {r['open_p50']} / {r['open_p99']} "
              f"| {r['protected_p50']} / {r['protected_p99']} | {r['provider_calls_per_1000']} ({r['provider_calls']} calls, "
              f"{r['protected_requests']} requests) | {r['peak_rss_mb_256']} MB | {r['start_to_first_request_ms']} ms |")
    for r in results:
        print(f"server CPU per request ({r['policy']}): open {r['open_cpu_us']} µs, protected {r['protected_cpu_us']} µs, "
              f"ratio {r['cpu_ratio']}")
    if guard_only:
        print(f"guard alone (the open page with and without AuthorizedUser, introspection cached): "
              f"{guard_only['open_rps']} vs {guard_only['guarded_rps']} req/s, ratio {guard_only['ratio']}; "
              f"server CPU {guard_only['open_cpu_us']} vs {guard_only['guarded_cpu_us']} µs per request, "
              f"ratio {guard_only['cpu_ratio']}")
    base = stores[0]
    print("The cost of being signed in, by session store (introspection cached; ratios to the anonymous open "
          "page of the same server; `vs in-process`: to the first row)")
    print("| session store | cookie bytes | anonymous open req/s | signed-in open req/s | protected req/s "
          "| signed-in / anonymous | protected / anonymous | signed-in, protected vs in-process |")
    print("|---|---|---|---|---|---|---|---|")
    for r in stores:
        print(f"| {r['store']} | {r['cookie_bytes']} | {r['anonymous_rps']} | {r['signed_in_rps']} | {r['protected_rps']} "
              f"| {r['signed_in_ratio']} | {r['protected_ratio']} "
              f"| {r['signed_in_rps'] / base['signed_in_rps']:.3f}, {r['protected_rps'] / base['protected_rps']:.3f} |")
    for r in stores:
        print(f"server CPU per request ({r['store']}): anonymous {r['anonymous_cpu_us']} µs, signed-in open "
              f"{r['signed_in_cpu_us']} µs, protected {r['protected_cpu_us']} µs")
    bad = (sum(r["non_2xx"] for r in results) + (guard_only["non_2xx"] if guard_only else 0)
           + sum(r["non_2xx"] for r in stores))
    if bad:
        print(f"WARNING: {bad} responses were not 2xx/3xx: the figures are not valid")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
