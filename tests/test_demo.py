"""`make demo`'s script on a throwaway config: directory, fixtures, sync, accounts, portal;
and the printed ldapwhoami line works. Run twice: idempotent."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import urllib.request
from pathlib import Path

import yaml

from mimsdir.config import load_config
from mimsdir.directory import server
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_demo_script_end_to_end(tmp_path: Path) -> None:
    cfg_path = tmp_path / "config.yaml"
    portal_port = free_port()
    # As the demo's config.yaml: TLS made by the project, and required.
    demo_tls = yaml.safe_load((ROOT / "config.yaml").read_text())["ldap"]["tls"]
    assert demo_tls == {"mode": "generate", "require": True}
    cfg_path.write_text(yaml.safe_dump({
        "ldap": {"uri": f"ldap://127.0.0.1:{free_port()}", "tls": demo_tls},
        "directory": {"state_dir": str(tmp_path / "state")},
        "sync": {"slips_dir": str(tmp_path / "slips"), "state_dir": str(tmp_path / "sync")},
        "cli": {"operator_log": str(tmp_path / "ops.jsonl")},
        "portal": {"listen": f"127.0.0.1:{portal_port}",
                   "metrics_listen": f"127.0.0.1:{free_port()}"},
    }))
    env = {**os.environ, "CONFIG": str(cfg_path), "VAR": str(tmp_path / "var")}
    try:
        for _ in range(2):
            res = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], env=env,
                                 capture_output=True, text=True, check=False, timeout=240)
            assert res.returncode == 0, res.stdout + res.stderr
        out = res.stdout
        assert "unchanged                      40" in res.stderr + out
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
    finally:
        subprocess.run(["bash", str(ROOT / "scripts" / "portal.sh"), "stop", str(cfg_path)],
                       env=env, capture_output=True, check=False)
        server.down(load_config(cfg_path))
