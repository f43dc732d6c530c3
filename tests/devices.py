"""A device in a box: nslcd or SSSD running against the test directory inside a private
mount and pid namespace, so the machine's own /etc/nsswitch.conf and /etc/pam.d are never
touched (docs/devices.md, docs/testing.md).

The configuration is docs/devices/<stack>/ (the files docs/devices.md shows), filled in with
the test directory's URI, base, CA and device password. ``tests/devices_ns.py`` is the
namespace's pid 1: it bind-mounts those files over /etc/nsswitch.conf, /etc/pam.d and the
daemon's configuration, puts fresh tmpfs on /run, /home, /var/log (and SSSD's /var/lib/sss,
/var/log/sssd, /etc/sssd), starts the daemon in the foreground and waits. Commands run in
the same namespace with ``nsenter``. Closing the device closes the init's stdin: it stops the
daemon and exits, and the kernel ends whatever else was left in the namespace; ``close``
then checks that no process of that pid namespace remains.

glibc loads NSS modules per process as /etc/nsswitch.conf says, and libpam reads /etc/pam.d
per process, so only processes inside the namespace see the directory's users.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mimsdir.config import Config

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "docs" / "devices"
STACKS = ("nslcd", "sssd")
PAM_FILES = ("common-auth", "common-account", "common-password", "common-session")
#: What the tests sign in through: the login program's own PAM service (pam_faildelay's
#: 3 s is taken over by the driver, as display managers do).
SERVICE = "login"
#: The system's python runs the driver (standard library only), whoever it runs as.
PYTHON = "/usr/bin/python3"
PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def template_values(cfg: Config, ca_file: str) -> dict[str, str]:
    return {"LDAP_URI": cfg.ldap.uri, "BASE_DN": cfg.ldap.base_dn, "CA_FILE": ca_file,
            "DEVICE_PASSWORD": (cfg.secrets_dir / "device.pw").read_text().strip()}


def render(text: str, values: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        return values[m.group(1)]

    return PLACEHOLDER.sub(one, text)


def nsswitch(host: str, lines: str) -> str:
    """The machine's nsswitch.conf with the stack's passwd/group/shadow lines instead."""
    ours = {ln.split(":")[0]: ln for ln in lines.splitlines() if ":" in ln}
    out = [ours.pop(ln.split(":")[0].strip(), ln) if re.match(r"^\s*\w+\s*:", ln) else ln
           for ln in host.splitlines()]
    return "\n".join([*out, *ours.values()]) + "\n"


def build_files(stack: str, cfg: Config, where: Path) -> Path:
    files = where / stack
    files.mkdir(mode=0o755)
    # nslcd reads the CA after it becomes the nslcd user: the CA (only) must be reachable.
    os.chmod(where, 0o755)  # noqa: S103
    ca = files / "ca.pem"
    assert cfg.tls_ca_file is not None, "the test directory serves TLS"
    shutil.copy(cfg.tls_ca_file, ca)
    os.chmod(ca, 0o644)
    values = template_values(cfg, str(ca))
    src = TEMPLATES / stack
    (files / "nsswitch.conf").write_text(
        nsswitch(Path("/etc/nsswitch.conf").read_text(), (src / "nsswitch.conf").read_text()))
    shutil.copytree("/etc/pam.d", files / "pam.d", symlinks=True)
    for name in PAM_FILES:
        (files / "pam.d" / name).write_text((src / "pam.d" / name).read_text())
    # The conversation driver, where a student's uid can read it (passwd runs as them).
    shutil.copy(ROOT / "tests" / "pam_login.py", files / "pam_login.py")
    os.chmod(files / "pam_login.py", 0o644)
    conf = "nslcd.conf" if stack == "nslcd" else "sssd.conf"
    (files / conf).write_text(render((src / conf).read_text(), values))
    os.chmod(files / conf, 0o600)
    return files


@dataclass
class Result:
    rc: int
    out: str
    err: str


class Device:
    """One stack in its namespace; use as a context manager."""

    def __init__(self, stack: str, cfg: Config) -> None:
        assert stack in STACKS
        self.stack = stack
        self.cfg = cfg
        self._tmp = Path(tempfile.mkdtemp(prefix=f"mims-{stack}-"))
        self.files = build_files(stack, cfg, self._tmp)
        self.init: subprocess.Popen[str] | None = None
        self.pid = 0
        self.pidns = ""

    def __enter__(self) -> Device:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self.init = subprocess.Popen(
            ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "--propagation",
             "private", sys.executable, str(ROOT / "tests" / "devices_ns.py"),
             str(self.files), self.stack],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.init.stdout is not None
        line = self.init.stdout.readline().strip()
        if line != "ready":
            self.close()
            raise RuntimeError(f"{self.stack} did not start ({line!r}): {self.log()}")
        children = Path(f"/proc/{self.init.pid}/task/{self.init.pid}/children").read_text()
        self.pid = int(children.split()[0])
        self.pidns = os.readlink(f"/proc/{self.pid}/ns/pid")

    def log(self) -> str:
        path = self.files / f"{self.stack}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    def run(self, argv: list[str], input: str | None = None, timeout: float = 30,
            check: bool = False) -> Result:
        """A command inside the namespace (root, unless argv drops privileges itself)."""
        p = subprocess.run(["nsenter", "--target", str(self.pid), "--mount", "--pid", "--",
                            *argv], input=input, capture_output=True, text=True,
                           timeout=timeout)
        res = Result(p.returncode, p.stdout, p.stderr)
        if check and p.returncode != 0:
            raise AssertionError(f"{argv}: {res}\n{self.stack} log:\n{self.log()}")
        return res

    def getent(self, db: str, key: str) -> str | None:
        res = self.run(["getent", db, key])
        return res.out.strip() if res.rc == 0 else None

    def pam(self, user: str, answers: dict[str, str] | str, chauthtok: bool = False,
            service: str = SERVICE) -> dict[str, Any]:
        """A login-style sign-in (tests/pam_login.py): the steps, with PAM's codes, and every
        message and prompt the person would see. ``answers``: prompt pattern -> what the
        person types (tests/pam_login.py); a string answers every prompt. ``chauthtok``:
        passwd(1) instead, run as the person (their uidNumber), as a student changing their
        password on a device."""
        argv = [PYTHON, str(self.files / "pam_login.py"), service, user]
        if chauthtok:
            account = self.getent("passwd", user)
            assert account, f"{user} is unknown on the device"
            uid, gid = account.split(":")[2:4]
            argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                    *argv, "--chauthtok"]
        if isinstance(answers, str):
            answers = {"": answers}
        res = self.run(argv, input=json.dumps(answers), check=True)
        out: dict[str, Any] = json.loads(res.out)
        out["messages"] = [t["text"] for t in out["transcript"]
                           if t["style"] in ("error", "info")]
        out["codes"] = {name: rc for name, rc, _ in out["steps"]}
        return out

    def pamtester(self, user: str, password: str, *ops: str,
                  service: str = SERVICE) -> Result:
        return self.run(["pamtester", "-v", service, user, *ops], input=password + "\n")

    def close(self) -> None:
        if self.init is not None:
            with contextlib.suppress(BrokenPipeError, OSError):
                assert self.init.stdin is not None
                self.init.stdin.close()
            try:
                self.init.wait(15)
            except subprocess.TimeoutExpired:
                self.init.kill()
                self.init.wait()
            if self.init.stdout is not None:
                self.init.stdout.close()
            self.init = None
        if self.pidns:
            deadline = time.monotonic() + 5
            while (left := processes_in(self.pidns)) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not left, f"processes left in the {self.stack} namespace: {left}"
        shutil.rmtree(self._tmp, ignore_errors=True)


def processes_in(pidns: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{entry}/ns/pid") == pidns:
                    found.append(int(entry))
    return found


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.devices [--config FILE] nslcd|sssd [COMMAND...]``: a device in a box
    against a running directory (make demo's by default): COMMAND, or an interactive shell,
    inside the namespace; everything ends with it (docs/devices.md, "Try it")."""
    import argparse

    from mimsdir.config import load_config

    parser = argparse.ArgumentParser(prog="python -m tests.devices", description=main.__doc__)
    parser.add_argument("--config", default=os.environ.get("MIMS_CONFIG", "config.yaml"))
    parser.add_argument("stack", choices=STACKS)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    with Device(args.stack, load_config(Path(args.config))) as d:
        cmd = args.command or ["bash", "-i"]
        print(f"{args.stack} is running in its own namespace; this machine's files are "
              f"untouched. {'Running ' + ' '.join(cmd) if args.command else 'exit ends it.'}",
              file=sys.stderr)
        return subprocess.call(["nsenter", "--target", str(d.pid), "--mount", "--pid",
                                "--", *cmd])


if __name__ == "__main__":
    sys.exit(main())
