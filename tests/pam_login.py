"""A login-style PAM conversation driver (ctypes on libpam, standard library only), run inside
a device namespace by tests/devices.py.

It does what login(1) and display managers do with a user name and what the person types:
pam_authenticate, pam_acct_mgmt, and on "new password required" pam_chauthtok with
PAM_CHANGE_EXPIRED_AUTHTOK, then pam_open_session. Every message a module shows and every
prompt goes into a transcript; the answers are given up front, used in order.

    pam_login.py SERVICE USER [--chauthtok] < answers.json   ->  transcript (JSON) on stdout

``--chauthtok``: a password change the person asks for (passwd(1)) instead of a sign-in.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import pwd
import re
import sys
from typing import Any

PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_ERROR_MSG, PAM_TEXT_INFO = 1, 2, 3, 4
PAM_SUCCESS, PAM_NEW_AUTHTOK_REQD, PAM_CONV_ERR = 0, 12, 19
PAM_USER, PAM_FAIL_DELAY = 2, 10
PAM_CHANGE_EXPIRED_AUTHTOK = 0x20
STYLES = {PAM_PROMPT_ECHO_OFF: "prompt", PAM_PROMPT_ECHO_ON: "prompt_echo",
          PAM_ERROR_MSG: "error", PAM_TEXT_INFO: "info"}


class PamMessage(ctypes.Structure):
    _fields_ = [("msg_style", ctypes.c_int), ("msg", ctypes.c_char_p)]


class PamResponse(ctypes.Structure):
    _fields_ = [("resp", ctypes.c_void_p), ("resp_retcode", ctypes.c_int)]


CONV = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.POINTER(PamMessage)),
                        ctypes.POINTER(ctypes.POINTER(PamResponse)), ctypes.c_void_p)
DELAY = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p)


class PamConv(ctypes.Structure):
    _fields_ = [("conv", CONV), ("appdata_ptr", ctypes.c_void_p)]


#: A stack that keeps asking is not answered forever.
MAX_PROMPTS = 12


def run(service: str, user: str, answers: dict[str, str], change_only: bool
        ) -> dict[str, Any]:
    libpam = ctypes.CDLL(ctypes.util.find_library("pam") or "libpam.so.0")
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.calloc.restype = ctypes.c_void_p
    libc.strdup.restype = ctypes.c_void_p
    libc.strdup.argtypes = [ctypes.c_char_p]
    libpam.pam_strerror.restype = ctypes.c_char_p
    libpam.pam_strerror.argtypes = [ctypes.c_void_p, ctypes.c_int]
    libpam.pam_get_item.argtypes = [ctypes.c_void_p, ctypes.c_int,
                                    ctypes.POINTER(ctypes.c_void_p)]
    for name in ("pam_authenticate", "pam_acct_mgmt", "pam_chauthtok", "pam_open_session",
                 "pam_close_session", "pam_setcred"):
        getattr(libpam, name).argtypes = [ctypes.c_void_p, ctypes.c_int]
    transcript: list[dict[str, str]] = []
    asked = 0

    def conv(n, msgs, resp, _data):  # type: ignore[no-untyped-def]
        out = libc.calloc(n, ctypes.sizeof(PamResponse))
        replies = ctypes.cast(out, ctypes.POINTER(PamResponse))
        for i in range(n):
            m = msgs[i].contents
            text = (m.msg or b"").decode("utf-8", "replace")
            transcript.append({"style": STYLES.get(m.msg_style, str(m.msg_style)),
                               "text": text})
            if m.msg_style in (PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON):
                nonlocal asked
                asked += 1
                answer = next((a for p, a in answers.items()
                               if re.search(p, text, re.IGNORECASE)), None)
                if answer is None or asked > MAX_PROMPTS:
                    transcript.append({"style": "no-answer", "text": text})
                    return PAM_CONV_ERR
                replies[i].resp = libc.strdup(answer.encode())
        resp[0] = replies
        return PAM_SUCCESS

    conv_cb = CONV(conv)
    pamconv = PamConv(conv_cb, None)
    handle = ctypes.c_void_p()
    rc = libpam.pam_start(service.encode(), user.encode(), ctypes.byref(pamconv),
                          ctypes.byref(handle))
    if rc != PAM_SUCCESS:
        return {"steps": [["start", rc, "pam_start failed"]], "transcript": transcript}
    # No delay after a failure (pam_faildelay in /etc/pam.d/login asks for 3 s): an
    # application may take the delay over, as display managers do.
    delay_cb = DELAY(lambda _rc, _usec, _data: None)
    libpam.pam_set_item(handle, PAM_FAIL_DELAY, delay_cb)
    steps: list[list[Any]] = []

    def step(name: str, rc: int) -> int:
        steps.append([name, rc, libpam.pam_strerror(handle, rc).decode()])
        transcript.append({"style": "step", "text": f"{name}: {steps[-1][2]}"})
        return rc

    if change_only:
        step("chauthtok", libpam.pam_chauthtok(handle, 0))
    else:
        rc = step("authenticate", libpam.pam_authenticate(handle, 0))
        if rc == PAM_SUCCESS:
            rc = step("acct_mgmt", libpam.pam_acct_mgmt(handle, 0))
            if rc == PAM_NEW_AUTHTOK_REQD:
                rc = step("chauthtok",
                          libpam.pam_chauthtok(handle, PAM_CHANGE_EXPIRED_AUTHTOK))
            if rc == PAM_SUCCESS:
                rc = step("open_session", libpam.pam_open_session(handle, 0))
                if rc == PAM_SUCCESS:
                    libpam.pam_close_session(handle, 0)
    item = ctypes.c_void_p()
    libpam.pam_get_item(handle, PAM_USER, ctypes.byref(item))
    pam_user = ctypes.cast(item, ctypes.c_char_p).value or b""
    libpam.pam_end(handle, 0)
    try:
        pw = pwd.getpwnam(pam_user.decode())
        account = {"name": pw.pw_name, "uid": pw.pw_uid, "home": pw.pw_dir}
    except KeyError:
        account = None
    return {"steps": steps, "transcript": transcript, "pam_user": pam_user.decode(),
            "account": account, "prompts": asked}


def main() -> int:
    args = sys.argv[1:]
    change_only = "--chauthtok" in args
    service, user = [a for a in args if not a.startswith("--")]
    answers = json.load(sys.stdin)
    print(json.dumps(run(service, user, answers, change_only)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
