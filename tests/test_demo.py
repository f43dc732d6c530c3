"""`make demo`'s script on a throwaway config: directory, fixtures, sync, accounts, portal,
the demo learning space; the printed ldapwhoami line works, and the P2 student signs in to
the learning space through the portal and out of both. Run twice: idempotent (the learning
space is registered once, and keeps running)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import urllib.request
from pathlib import Path

import pytest
import requests
import yaml

from mimsdir.config import load_config
from mimsdir.directory import server
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_demo_script_end_to_end(tmp_path: Path) -> None:
    cfg_path = tmp_path / "config.yaml"
    portal_port, ls_port = free_port(), free_port()
    portal = f"http://127.0.0.1:{portal_port}"
    learning = f"http://127.0.0.1:{ls_port}"
    cfg_path.write_text(yaml.safe_dump({
        "ldap": {"uri": f"ldap://127.0.0.1:{free_port()}"},
        "directory": {"state_dir": str(tmp_path / "state")},
        "sync": {"slips_dir": str(tmp_path / "slips"), "state_dir": str(tmp_path / "sync")},
        "cli": {"operator_log": str(tmp_path / "ops.jsonl")},
        "portal": {"listen": f"127.0.0.1:{portal_port}", "public_url": portal,
                   "metrics_listen": f"127.0.0.1:{free_port()}"},
    }))
    var = tmp_path / "var"
    env = {**os.environ, "CONFIG": str(cfg_path), "VAR": str(var),
           "LEARNING_SPACE_LISTEN": f"127.0.0.1:{ls_port}"}
    state_file = var / "demo-apps" / "learning-space.json"
    pid_file = var / "demo-learning-space.pid"
    runs = []
    try:
        for _ in range(2):
            res = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], env=env,
                                 capture_output=True, text=True, check=False, timeout=240)
            assert res.returncode == 0, res.stdout + res.stderr
            runs.append((res.stdout, json.loads(state_file.read_text()),
                         pid_file.read_text().strip()))
        out = res.stdout
        assert "unchanged                      40" in res.stderr + out
        line = next(ln for ln in out.splitlines() if ln.strip().startswith("ldapwhoami"))
        who = subprocess.run(shlex.split(line), capture_output=True, text=True, check=False)
        assert who.returncode == 0 and who.stdout.startswith("dn:uid=S2614023J"), who.stderr
        assert re.search(r"a locked student .*password: \S+", out)
        assert f"http://127.0.0.1:{portal_port}/" in out
        with urllib.request.urlopen(f"http://127.0.0.1:{portal_port}/healthz", timeout=5) as r:
            assert r.status == 200
        # The learning space: registered by the first run, reused by the second (same client,
        # the same process still serving it), once in the directory, its secret kept 0600.
        (out1, state1, pid1), (out2, state2, pid2) = runs
        assert "demo app learning-space: registered" in out1
        assert "demo app learning-space: reused" in out2
        assert state1 == state2 and pid1 == pid2
        assert state1["url"] == learning and state1["issuer"] == portal
        assert (state_file.stat().st_mode & 0o777, state_file.parent.stat().st_mode & 0o777) \
            == (0o600, 0o700)
        listed = subprocess.run([str(ROOT / ".venv/bin/mimsdir"), "--config", str(cfg_path),
                                 "app", "list", "--json"], capture_output=True, text=True,
                                check=True).stdout
        ours = [a for a in json.loads(listed) if a["name"] == "Demo learning space"]
        assert [a["client_id"] for a in ours] == [state1["client_id"]]
        assert f"{learning}/" in out and "the learning space (OpenID Connect)" in out
        sign_in_and_out(out, portal, learning)
        # make down's first step stops it.
        stop = subprocess.run(["bash", str(ROOT / "scripts" / "demo_apps.sh"), "stop",
                               str(cfg_path)], env=env, capture_output=True, text=True,
                              check=True)
        assert "demo app learning-space stopped" in stop.stdout and not pid_file.exists()
        with pytest.raises(requests.ConnectionError):
            requests.get(learning + "/healthz", timeout=5)
    finally:
        for script in ("demo_apps.sh", "portal.sh"):
            subprocess.run(["bash", str(ROOT / "scripts" / script), "stop", str(cfg_path)],
                           env=env, capture_output=True, check=False)
        server.down(load_config(cfg_path))


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
