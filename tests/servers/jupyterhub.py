"""A real JupyterHub for tests: ``jupyterhub`` from PyPI behind ``configurable-http-proxy`` from npm,
users' servers spawned as their own system users (LocalProcessSpawner), our hub service managed by
the hub, hub groups, and a ``tester`` service whose token drives the hub's REST API.

Needs root (to spawn servers as other users) and the proxy installed by ``make test`` under
``.venv/hub-proxy``. Every process it starts is stopped by :meth:`Hub.stop`; the system users it
made are removed.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.servers.gateway import stop_process
from tests.servers.jupyter import free_port

VENV = Path(sys.prefix)
PROXY = VENV / "hub-proxy" / "node_modules" / ".bin" / "configurable-http-proxy"
USERS_VENV = VENV / "hub-users"


def users_python() -> Path:
    """A Python the hub's users may run: the test venv's interpreter lives under /root, which only
    root may enter, so users' servers run Debian's python3 with the test venv's packages."""
    python = USERS_VENV / "bin" / "python"
    _let_users_through(VENV)
    if not python.exists():
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(USERS_VENV)], check=True)
        [site_packages] = (VENV / "lib").glob("python3*/site-packages")
        [own] = (USERS_VENV / "lib").glob("python3*/site-packages")
        (own / "prophecy-test-venv.pth").write_text(f"import site; site.addsitedir({str(site_packages)!r})\n")
        for shared in ("etc", "share"):  # Jupyter's config (enabled extensions) and data (kernels)
            (USERS_VENV / shared).symlink_to(VENV / shared)
    return python


def _let_users_through(venv: Path) -> None:
    """Let other users read this checkout's top folder and its venv (``o+rx``: Python lists a
    folder to import from it), as git leaves every file in it: a clone made in a private folder
    (``mktemp -d`` is 0700) would otherwise hide the packages from the hub's users. Folders above
    the checkout are not ours to change: if one is closed, say so."""
    checkout = Path(__file__).resolve().parents[2]
    opened = stat.S_IROTH | stat.S_IXOTH
    for folder in (checkout, venv):
        mode = folder.stat().st_mode
        if folder.is_relative_to(checkout) and mode & opened != opened:
            folder.chmod(mode | opened)
    closed = [p for p in checkout.parents if not p.stat().st_mode & stat.S_IXOTH]
    if closed:
        raise RuntimeError(f"The hub's users cannot reach {venv}: {closed[0]} is closed to others (o-x).")


def remove_system_user(name: str, within: float = 10.0) -> None:
    """Remove a user this test made, once none of its processes (a server still stopping) is left:
    ``userdel`` refuses a user in use (exit 8), and a user left behind would keep an old home."""
    deadline = time.monotonic() + within
    while True:
        subprocess.run(["pkill", "-KILL", "-u", name], check=False, capture_output=True)
        code = subprocess.run(["userdel", name], check=False, capture_output=True).returncode
        if code in (0, 6) or time.monotonic() > deadline:  # 6: no such user
            return
        time.sleep(0.25)


def ensure_system_user(name: str, home: Path) -> bool:
    """A system user with its own home (0700); True when this call made it."""
    try:
        pwd.getpwnam(name)
        made = False
    except KeyError:
        subprocess.run(
            ["useradd", "--no-create-home", "--home-dir", str(home), "--shell", "/bin/sh", name], check=True
        )
        made = True
    home.mkdir(parents=True, exist_ok=True)
    entry = pwd.getpwnam(name)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    home.chmod(0o700)
    return made


@dataclass
class Hub:
    process: subprocess.Popen
    base: Path
    url: str
    """The proxy's public URL (``/hub/``, ``/user/<name>/``, ``/services/<name>/``)."""
    service_url: str
    """Our hub service, as users' servers reach it."""
    tester_token: str
    log: Path
    made_users: list[str] = field(default_factory=list)

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        """The hub's REST API (``/hub/api``), as the tester service or with ``token``."""
        headers = {"Authorization": f"token {token or self.tester_token}"}
        return requests.request(method, f"{self.url}/hub/api{path}", headers=headers, timeout=60, **kwargs)

    def token_of(self, user: str) -> str:
        """A new API token of ``user`` (with the user's own permissions)."""
        response = self.api("POST", f"/users/{user}/tokens", json={"note": "test", "expires_in": 3600})
        assert response.status_code in (200, 201), response.text
        return response.json()["token"]

    def start_server(self, user: str, timeout: float = 180) -> None:
        response = self.api("POST", f"/users/{user}/server")
        assert response.status_code in (201, 202, 400), response.text
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = (self.api("GET", f"/users/{user}").json().get("servers") or {}).get("")
            if server and server.get("ready"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"{user}'s server did not start; see {self.log}:\n{self.log.read_text()[-4000:]}")

    def server(self, user: str, token: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request to ``user``'s server through the proxy, with ``token``."""
        headers = {"Authorization": f"token {token}", **kwargs.pop("headers", {})}
        return requests.request(
            method,
            f"{self.url}/user/{user}{path}",
            headers=headers,
            timeout=kwargs.pop("timeout", 120),
            **kwargs,
        )

    def stop(self) -> None:
        for user in list(self.api("GET", "/users").json()) if self.process.poll() is None else []:
            if user.get("server"):
                self.api("DELETE", f"/users/{user['name']}/server")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            if not any(u.get("server") or u.get("pending") for u in self.api("GET", "/users").json()):
                break
            time.sleep(0.5)
        stop_process(self.process)
        for name in self.made_users:
            remove_system_user(name)
        kept = Path(tempfile.gettempdir()) / "prophecy-hub-last.log"
        shutil.copy(self.log, kept)  # for a failure's post-mortem
        shutil.rmtree(self.base, ignore_errors=True)


def start_hub(
    groups: dict[str, list[str]],
    admins: set[str],
    service_env: dict[str, str],
    spawned: list[str],
) -> Hub:
    """A hub whose users are the members of ``groups`` and ``admins``; ``spawned`` users get system
    users and homes (their servers can be started). ``service_env`` reaches our hub service only."""
    if not PROXY.exists():
        raise RuntimeError(f"configurable-http-proxy is not installed at {PROXY} (`make test` installs it)")
    base = Path(os.environ.get("TMPDIR", "/tmp")) / f"prophecy-hub-{secrets.token_hex(4)}"
    base.mkdir(mode=0o755)
    hub_dir, homes = base / "hub", base / "home"
    hub_dir.mkdir(mode=0o700)
    homes.mkdir(mode=0o755)
    made = [name for name in spawned if ensure_system_user(name, homes / name)]
    ports = {name: free_port() for name in ("public", "hub", "proxy_api", "service")}
    tester = secrets.token_hex(24)
    service_url = f"http://127.0.0.1:{ports['service']}"
    users = sorted({u for members in groups.values() for u in members} | admins)
    config = {
        "ip": "127.0.0.1",
        "port": ports["public"],
        "hub_port": ports["hub"],
        "proxy_api": f"http://127.0.0.1:{ports['proxy_api']}",
        "proxy": str(PROXY),
        "db": f"sqlite:///{hub_dir / 'jupyterhub.sqlite'}",
        "cookie_secret": str(hub_dir / "cookie_secret"),
        "users": users,
        "admins": sorted(admins),
        "password": secrets.token_hex(8),
        "groups": {name: {"users": members} for name, members in groups.items()},
        "singleuser": [str(users_python()), "-m", "jupyterhub.singleuser"],
        "python": sys.executable,
        "service_url": service_url,
        "service_env": service_env,
        "tester": tester,
        "user_env": {
            "PROPHECY_JUPYTER_HUB_SERVICE_URL": f"{service_url}/services/prophecy/",
            "SPARK_LOCAL_IP": "127.0.0.1",
        },
    }
    (hub_dir / "settings.json").write_text(json.dumps(config))
    (hub_dir / "jupyterhub_config.py").write_text(HUB_CONFIG)
    log = base / "hub.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(hub_dir / "jupyterhub_config.py")],
            cwd=hub_dir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    hub = Hub(
        process,
        base,
        f"http://127.0.0.1:{ports['public']}",
        f"{service_url}/services/prophecy/",
        tester,
        log,
        made,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if (
                hub.api("GET", "/").status_code == 200
                and requests.get(hub.service_url + "api/v1/teams", timeout=5).status_code == 401
            ):
                return hub
        except requests.ConnectionError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.5)
    log_text = log.read_text()[-5000:]
    hub.stop()
    raise RuntimeError(f"the hub did not start:\n{log_text}")


HUB_CONFIG = """
import json
from pathlib import Path

settings = json.loads((Path(__file__).parent / "settings.json").read_text())
c.JupyterHub.ip = settings["ip"]
c.JupyterHub.port = settings["port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = settings["hub_port"]
c.ConfigurableHTTPProxy.api_url = settings["proxy_api"]
c.ConfigurableHTTPProxy.command = [settings["proxy"]]
c.JupyterHub.db_url = settings["db"]
c.JupyterHub.cookie_secret_file = settings["cookie_secret"]
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = settings["password"]
c.Authenticator.allowed_users = set(settings["users"])
c.Authenticator.admin_users = set(settings["admins"])
c.JupyterHub.load_groups = settings["groups"]
c.Spawner.cmd = settings["singleuser"]
c.Spawner.environment = settings["user_env"]
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
# the hub service's own scope goes with every user's server token (see docs/jupyterhub.md)
c.Spawner.server_token_scopes = [
    "users:activity!user",
    "access:servers!server",
    "access:services!service=prophecy",
]
c.JupyterHub.services = [
    {
        "name": "prophecy",
        "url": settings["service_url"],
        "command": [settings["python"], "-m", "prophecy_jupyter.cli", "hub-service"],
        "environment": settings["service_env"],
    },
    {"name": "tester", "api_token": settings["tester"]},
]
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services!service=prophecy"]},
    {"name": "prophecy-service", "scopes": ["read:users", "read:groups"], "services": ["prophecy"]},
    {
        "name": "tester",
        "scopes": ["admin:users", "admin:servers", "tokens", "list:users", "read:users"],
        "services": ["tester"],
    },
]
"""
