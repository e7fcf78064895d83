#!/usr/bin/env python3
"""End-to-end smoke test over real HTTP: the standalone App ID emulator and the
rocket-appid binary as separate processes, configured only by the Flask pattern's
environment variables, driven like a browser (cookie jar, no JavaScript).

Usage: scripts/smoke.py [TARGET_DIR]   (default target/debug; e.g. target/release)
Exit 0 when every check passes; prints one line per check.
"""
import http.cookiejar
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

TARGET = sys.argv[1] if len(sys.argv) > 1 else "target/debug"
CHECKS = {"passed": 0, "failed": 0}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def browser():
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    return opener


def fetch(opener, url, data=None, accept="text/html"):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers={"Accept": accept})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def check(name, condition, detail=""):
    CHECKS["passed" if condition else "failed"] += 1
    print(("ok   " if condition else "FAIL ") + name + ("" if condition else f"  [{detail}]"))


def wait_for(url, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.01)
    return False


def login(app, email, path="/auth_route"):
    """Visit `path`, sign in as `email` on the emulator's page, follow the callback."""
    opener = browser()
    status, headers, _ = fetch(opener, app + path)
    if status != 303:
        return opener, status, None
    authorization = urllib.parse.urlsplit(headers["Location"])
    form = dict(urllib.parse.parse_qsl(authorization.query))
    form["login_hint"] = email
    action = urllib.parse.urlunsplit(authorization._replace(query=""))
    status, headers, _ = fetch(opener, action, data=form)
    if status != 302:
        return opener, status, None
    status, headers, _ = fetch(opener, headers["Location"])
    return opener, status, headers.get("Location")


TENANT = "8794b41b-4705-4381-a96e-46dfabf3f249"


def app_environment(app_port, idp_port, client_id, client_secret, api_key):
    """The app's environment, configured only by the Flask pattern's variables, against the
    standalone emulator on `idp_port` (nothing inherited from the caller's APPID_/ROCKET_)."""
    app = f"http://127.0.0.1:{app_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APPID_", "ROCKET_"))}
    env.update({
        "ROCKET_PROFILE": "release", "ROCKET_ADDRESS": "127.0.0.1", "PORT": str(app_port),
        "APPID_CLIENT_ID": client_id, "APPID_CLIENT_SECRET": client_secret,
        "APPID_OAUTH_SERVER_URL": f"http://127.0.0.1:{idp_port}/oauth/v4/{TENANT}",
        "APPID_REDIRECT_URI": f"{app}/afterauth", "IBM_CLOUD_APIKEY": api_key,
        "IBM_CLOUD_IAM_URL": f"http://127.0.0.1:{idp_port}/identity/token",
        "SESSION_SECRET_KEY": secrets.token_urlsafe(48),
    })
    return env


def main():
    idp_port, app_port = free_port(), free_port()
    app = f"http://127.0.0.1:{app_port}"
    client_secret, api_key = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    env = dict(os.environ)
    env.update({
        "EMULATOR_PORT": str(idp_port), "EMULATOR_CLIENT_ID": "smoke-client",
        "EMULATOR_CLIENT_SECRET": client_secret, "EMULATOR_API_KEY": api_key,
        "EMULATOR_REDIRECT_URIS": f"{app}/afterauth",
    })
    idp = subprocess.Popen([f"{TARGET}/appid-emulator"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    app_env = app_environment(app_port, idp_port, "smoke-client", client_secret, api_key)
    check("emulator answers", wait_for(f"http://127.0.0.1:{idp_port}/"))
    started = time.time()
    server = subprocess.Popen([f"{TARGET}/rocket-appid"], env=app_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        check("app answers", wait_for(f"{app}/health"))
        print(f"     (process start to first /health answer: {1000 * (time.time() - started):.0f} ms, 10 ms polling)")

        status, _, body = fetch(browser(), app + "/noauth_route")
        check("open route is open to all", status == 200 and "This route is open to all!" in body, status)

        opener, status, location = login(app, "alice@example.com", "/auth_route?from=smoke")
        check("alice's callback sends her back to the deep link", status == 303 and location == "/auth_route?from=smoke",
              (status, location))
        status, _, body = fetch(opener, app + "/auth_route")
        check("alice (role user) sees the protected page",
              status == 200 and "This route requires authentication and authorization - Powered by IBM Cloud App ID!" in body,
              status)

        opener, status, location = login(app, "bob@example.com")
        status, headers, body = fetch(opener, app + "/auth_route")
        check("bob (no role) gets 403 Unauthorized, not a loop",
              status == 403 and "Unauthorized" in body and headers.get("Location") is None, status)

        opener, _, _ = login(app, "carol@example.com")
        status, _, body = fetch(opener, app + "/auth_route")
        check("carol (user, admin) sees both roles", status == 200 and ">admin<" in body and ">user<" in body, status)
        # Sign out as the page's form does: the per-session token from the form.
        token = re.search(r'name="csrf" value="([^"]+)"', body)
        status, _, _ = fetch(opener, app + "/logout", data={})
        check("a logout without the form's token is refused", status == 403, status)
        status, headers, _ = fetch(opener, app + "/logout", data={"csrf": token.group(1) if token else ""})
        check("logout with the form's token ends the session (303 to /signed_out)",
              status == 303 and headers.get("Location") == "/signed_out", status)
        status, _, _ = fetch(opener, app + "/auth_route")
        check("after logout the protected page asks for a login again", status == 303, status)

        status, _, _ = fetch(browser(), app + "/afterauth?code=forged&state=forged")
        check("a forged callback is refused with 400", status == 400, status)
    finally:
        server.terminate()
        idp.terminate()
        server.wait(timeout=10)
        idp.wait(timeout=10)
    output = server.stdout.read().decode(errors="replace")
    leaked = [v for v in (client_secret, api_key, app_env["SESSION_SECRET_KEY"]) if v in output]
    check("no secret appears in the app's log", not leaked)
    check("the app exits 0 on SIGTERM", server.returncode == 0, server.returncode)
    print(f"{CHECKS['passed']} passed, {CHECKS['failed']} failed")
    return 1 if CHECKS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
