"""`make demo`'s script on a throwaway config: directory, fixtures, sync, accounts, portal,
the demo applications (the learning space, the media library); the printed ldapwhoami line
works, and the P2 student signs in to the learning space through the portal and out of
both. Run twice: idempotent (each demo application is registered once, and keeps running).
tests/test_demo_browser.py walks the printed instructions in chromium."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml

from mimsdir.config import load_config
from mimsdir.directory import server
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Demo:
    """`make demo` on a throwaway config, its addresses, and what each run printed."""

    cfg_path: Path
    var: Path
    env: dict[str, str]
    portal: str
    learning: str
    media: str
    runs: list[subprocess.CompletedProcess[str]] = field(default_factory=list)

    def run(self) -> str:
        res = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], env=self.env,
                             capture_output=True, text=True, check=False, timeout=240)
        assert res.returncode == 0, res.stdout + res.stderr
        self.runs.append(res)
        return res.stdout

    def mimsdir(self, *args: str) -> str:
        return subprocess.run([str(ROOT / ".venv/bin/mimsdir"), "--config", str(self.cfg_path),
                               *args], capture_output=True, text=True, check=True).stdout

    def state(self, key: str) -> dict:  # type: ignore[type-arg]
        return json.loads((self.var / "demo-apps" / f"{key}.json").read_text())  # type: ignore[no-any-return]

    def pid(self, key: str) -> str:
        return (self.var / f"demo-{key}.pid").read_text().strip()


@contextmanager
def demo(tmp_path: Path) -> Iterator[Demo]:
    """The demo's directory, portal and applications on free ports, all stopped after."""
    cfg_path = tmp_path / "config.yaml"
    portal_port = free_port()
    ports = {"LEARNING_SPACE_LISTEN": free_port(), "MEDIA_LIBRARY_LISTEN": free_port()}
    portal = f"http://127.0.0.1:{portal_port}"
    # As the demo's config.yaml: TLS made by the project, and required.
    demo_tls = yaml.safe_load((ROOT / "config.yaml").read_text())["ldap"]["tls"]
    assert demo_tls == {"mode": "generate", "require": True}
    cfg_path.write_text(yaml.safe_dump({
        "ldap": {"uri": f"ldap://127.0.0.1:{free_port()}", "tls": demo_tls},
        "directory": {"state_dir": str(tmp_path / "state")},
        "sync": {"slips_dir": str(tmp_path / "slips"), "state_dir": str(tmp_path / "sync")},
        "cli": {"operator_log": str(tmp_path / "ops.jsonl")},
        "portal": {"listen": f"127.0.0.1:{portal_port}", "public_url": portal,
                   "metrics_listen": f"127.0.0.1:{free_port()}"},
    }))
    var = tmp_path / "var"
    env = {**os.environ, "CONFIG": str(cfg_path), "VAR": str(var),
           **{k: f"127.0.0.1:{p}" for k, p in ports.items()}}
    try:
        yield Demo(cfg_path, var, env, portal,
                   learning=f"http://127.0.0.1:{ports['LEARNING_SPACE_LISTEN']}",
                   media=f"http://127.0.0.1:{ports['MEDIA_LIBRARY_LISTEN']}")
    finally:
        for script in ("demo_apps.sh", "portal.sh"):
            subprocess.run(["bash", str(ROOT / "scripts" / script), "stop", str(cfg_path)],
                           env=env, capture_output=True, check=False)
        server.down(load_config(cfg_path))


def test_demo_script_end_to_end(tmp_path: Path) -> None:
    with demo(tmp_path) as d:
        runs = []
        for _ in range(2):
            out = d.run()
            runs.append((out, d.state("learning-space"), d.pid("learning-space"),
                         d.state("media-library"), d.pid("media-library")))
        portal, learning, media = d.portal, d.learning, d.media
        portal_port = portal.rsplit(":", 1)[1]
        assert "unchanged                      40" in d.runs[-1].stderr + out
        line = next(ln for ln in out.splitlines() if "ldapwhoami" in ln)
        # LDAPTLS_CACERT=<the directory's CA> ldapwhoami -x -ZZ -H ldap://...: as printed,
        # through a shell, the way a reader pastes it.
        assert line.strip().startswith("LDAPTLS_CACERT=") and " -ZZ " in line
        who = subprocess.run(["bash", "-c", line], capture_output=True, text=True,
                             check=False, env={"PATH": os.environ["PATH"]})
        assert who.returncode == 0 and who.stdout.startswith("dn:uid=S2614023J"), who.stderr
        # The same bind without TLS is refused: the password never crosses in clear.
        args = shlex.split(line.split("ldapwhoami", 1)[1].replace("-ZZ", ""))
        clear = subprocess.run(["ldapwhoami", *args], capture_output=True, text=True,
                               check=False)
        assert clear.returncode == 13, clear.stderr  # confidentialityRequired
        assert re.search(r"a locked student .*password: \S+", out)
        assert f"http://127.0.0.1:{portal_port}/" in out
        with urllib.request.urlopen(f"http://127.0.0.1:{portal_port}/healthz", timeout=5) as r:
            assert r.status == 200
        # Each demo application: registered by the first run, reused by the second (the same
        # registration, the same process still serving it), once in the directory, its
        # files kept 0600.
        (out1, state1, pid1, ml1, mlpid1), (out2, state2, pid2, ml2, mlpid2) = runs
        assert "demo app learning-space: registered" in out1
        assert "demo app learning-space: reused" in out2
        assert state1 == state2 and pid1 == pid2
        assert state1["url"] == learning and state1["issuer"] == portal
        assert "demo app media-library: registered" in out1
        assert "demo app media-library: reused" in out2
        assert ml1 == ml2 and mlpid1 == mlpid2
        assert ml1["url"] == media and ml1["portal"] == portal
        assert ml1["entity_id"] == f"{media}/saml/metadata"
        folder = d.var / "demo-apps"
        assert folder.stat().st_mode & 0o777 == 0o700
        for name in ("learning-space.json", "media-library.json", "media-library-key.pem",
                     "media-library-cert.pem"):
            assert (folder / name).stat().st_mode & 0o777 == 0o600, name
        apps = json.loads(d.mimsdir("app", "list", "--json"))
        ours = [a for a in apps if a["name"] == "Demo learning space"]
        assert [a["client_id"] for a in ours] == [state1["client_id"]]
        saml = [a for a in apps if a["name"] == "Demo media library"]
        assert [(a["client_id"], a["saml_entity_id"]) for a in saml] == [
            (ml1["client_id"], ml1["entity_id"])]
        assert f"{learning}/" in out and "the learning space (OpenID Connect)" in out
        assert f"{media}/" in out and "the media library (SAML)" in out
        assert "Sign in with MIMS" in out
        # The media library answers, with the metadata the directory has.
        assert requests.get(media + "/healthz", timeout=5).text == "ok\n"
        shown = json.loads(d.mimsdir("app", "show", ml1["client_id"], "--json"))
        assert requests.get(media + "/saml/metadata", timeout=5).text \
            == shown["saml_metadata"]
        home = requests.get(media + "/", timeout=5)
        assert home.status_code == 200 and "Sign in with MIMS" in home.text
        sign_in_and_out(out, portal, learning)
        # make down's first step stops them.
        stop = subprocess.run(["bash", str(ROOT / "scripts" / "demo_apps.sh"), "stop",
                               str(d.cfg_path)], env=d.env, capture_output=True, text=True,
                              check=True)
        for key, url in (("learning-space", learning), ("media-library", media)):
            assert f"demo app {key} stopped" in stop.stdout
            assert not (d.var / f"demo-{key}.pid").exists()
            with pytest.raises(requests.ConnectionError):
                requests.get(url + "/healthz", timeout=5)


def sign_in_and_out(out: str, portal: str, learning: str) -> None:
    """The newcomer's path through the running demo: the learning space, the portal's sign-in
    as the P2 student (the printed password), back signed in; sign out of both."""
    mail, password = re.search(r"a P2 student \(card\)\s+(\S+)\s+password: (\S+)",
                               out).groups()  # type: ignore[union-attr]
    web = requests.Session()
    home = web.get(learning + "/", timeout=10)
    assert home.status_code == 200 and "Sign in with my school account" in home.text
    login_page = web.post(learning + "/login", timeout=10)  # -> the portal's sign-in page
    assert login_page.url.startswith(portal + "/login?next=")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login_page.text).group(1)  # type: ignore[union-attr]
    nxt = re.search(r'name="next" value="([^"]+)"', login_page.text).group(1)  # type: ignore[union-attr]
    back = web.post(portal + "/login", timeout=10, headers={"Origin": portal}, data={
        "csrf_token": token, "login_id": mail, "password": password,
        "next": nxt.replace("&amp;", "&")})
    assert back.url == learning + "/", [r.url for r in back.history]
    assert "Signed in as Wei Ling Tan (P2, 2A)" in re.sub(r"<[^>]+>", "", back.text)
    assert web.get(portal + "/home", timeout=10, allow_redirects=False).status_code == 200
    bye = web.post(learning + "/logout", timeout=10)
    assert bye.url == learning + "/" and "You are signed out" in bye.text
    assert web.get(portal + "/home", timeout=10, allow_redirects=False).status_code == 302
