"""The init of a device namespace (tests/devices.py): run as pid 1 of a new pid and mount
namespace (`unshare --mount --pid --fork --mount-proc --propagation private`).

It mounts the stack's files over the machine's (only this namespace sees them), starts the
daemon in the foreground, prints ``ready`` once the daemon answers, then waits for its
standard input to close; then it stops the daemon and exits, and with pid 1 gone the kernel
ends every process left in the namespace. Standard library only.

    devices_ns.py FILES_DIR nslcd|sssd
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def tmpfs(target: str, mode: str = "0755") -> None:
    mount("-t", "tmpfs", "-o", f"mode={mode},nosuid,nodev", "tmpfs", target)


def prepare(files: Path, stack: str) -> list[str]:
    """The mounts, and the daemon's command line."""
    mount("--bind", str(files / "nsswitch.conf"), "/etc/nsswitch.conf")
    mount("--bind", str(files / "pam.d"), "/etc/pam.d")
    # Sockets and pid files (/run/nslcd, /run/sssd.pid), homes made by pam_mkhomedir: this
    # namespace's own, never the machine's.
    # Sign-in records (lastlog, wtmp) too.
    tmpfs("/run")
    tmpfs("/home")
    tmpfs("/var/log")
    if stack == "nslcd":
        os.makedirs("/run/nslcd", mode=0o755)
        shutil.chown("/run/nslcd", "nslcd", "nslcd")
        mount("--bind", str(files / "nslcd.conf"), "/etc/nslcd.conf")
        return ["/usr/sbin/nslcd", "-d"]
    tmpfs("/etc/sssd", "0711")
    os.makedirs("/etc/sssd/conf.d", mode=0o711)
    shutil.copy(files / "sssd.conf", "/etc/sssd/sssd.conf")
    os.chmod("/etc/sssd/sssd.conf", 0o600)
    tmpfs("/var/lib/sss")
    for sub, mode in (("db", 0o700), ("mc", 0o775), ("pipes", 0o755),
                      ("pipes/private", 0o750), ("pubconf", 0o755), ("gpo_cache", 0o755),
                      ("secrets", 0o700), ("deskprofile", 0o751)):
        os.makedirs(f"/var/lib/sss/{sub}")
        os.chmod(f"/var/lib/sss/{sub}", mode)
    os.makedirs("/var/log/sssd", mode=0o750)
    return ["/usr/sbin/sssd", "-i", "--logger=stderr", "-d", os.environ.get("SSSD_DEBUG", "0x0070")]


def ready(stack: str) -> bool:
    if stack == "nslcd":
        return Path("/run/nslcd/socket").exists()
    return all(Path(f"/var/lib/sss/pipes/{s}").exists() for s in ("nss", "pam"))


def main() -> int:
    files, stack = Path(sys.argv[1]), sys.argv[2]
    cmd = prepare(files, stack)
    log = open(files / f"{stack}.log", "wb")  # noqa: SIM115 - open until the daemon ends
    daemon = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    deadline = time.monotonic() + 20
    while not ready(stack):
        if daemon.poll() is not None or time.monotonic() > deadline:
            print(f"failed: {stack} exited {daemon.returncode}" if daemon.returncode
                  is not None else f"failed: {stack} not ready", flush=True)
            daemon.kill()
            return 1
        time.sleep(0.05)
    print("ready", flush=True)
    sys.stdin.read()  # until the harness closes it (or dies)
    daemon.send_signal(signal.SIGTERM)
    try:
        daemon.wait(10)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
