"""Just enough of LDAP's wire format (BER) for the tests' trap servers: read one message,
answer it with a result code. The traps stand where a provider should be and record what a
client sent them in clear (tests/test_replication.py, tests/test_replicas.py)."""

from __future__ import annotations

import socket
import threading

STARTTLS_OID = b"1.3.6.1.4.1.1466.20037"
#: Protocol op tags of the requests the traps meet, by name.
OPS = {0x60: "bind", 0x42: "unbind", 0x66: "modify", 0x68: "add", 0x4A: "delete",
       0x63: "search", 0x77: "extended"}


def read_message(conn: socket.socket) -> tuple[bytes, int, bytes] | None:
    """(messageID bytes, protocol op tag, the whole LDAPMessage body) of the next message,
    or None when the peer closed the connection."""
    head = conn.recv(2)
    if len(head) < 2:
        return None
    size = head[1]
    if size & 0x80:
        size = int.from_bytes(conn.recv(size & 0x7F), "big")
    body = b""
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            return None
        body += chunk
    msgid = body[2:2 + body[1]]  # INTEGER messageID
    return msgid, body[2 + body[1]], body


def is_starttls(op: int, body: bytes) -> bool:
    return op == 0x77 and STARTTLS_OID in body


def reply(conn: socket.socket, msgid: bytes, op: int, code: int) -> None:
    """The response to request ``op`` with ``code`` (0 success, 2 protocolError, 53
    unwillingToPerform), no matched DN, no message."""
    tag = {0x60: 0x61, 0x77: 0x78, 0x63: 0x65}.get(op, op + 1)
    body = b"\x02" + bytes([len(msgid)]) + msgid + bytes([tag, 7, 0x0A, 1, code, 4, 0, 4, 0])
    conn.sendall(b"\x30" + bytes([len(body)]) + body)


class LoopbackServer:
    """A listener on 127.0.0.1 that hands each connection to ``handle`` in its own thread of
    accepts, until ``close``: the shape every trap server of the tests shares."""

    def __init__(self, port: int = 0, scheme: str = "ldap") -> None:
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.settimeout(0.1)
        self.uri = f"{scheme}://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.listener.close()
