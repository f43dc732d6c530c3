"""Helpers for the portal tests: an app on the session's slapd, a client that fills in the
CSRF token, and students with challenge answers."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import ldap
from flask import Flask
from flask.testing import FlaskClient

from mimsdir.challenge import ChallengeHasher, encode_challenge
from mimsdir.config import Config
from mimsdir.portal import create_app

# What every failed sign-in says, whatever the reason (wrong, unknown, inactive, waiting).
WRONG = "That did not work"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
ANSWERS = {"first-soft-toy": "Blue Whale", "first-holiday": "Penang",
           "youngest-cousin": "Mei Mei"}


def portal_config(cfg: Config, **portal: Any) -> Config:
    qna = dataclasses.replace(cfg.qna, time_cost=2, memory_kib=19456)
    return dataclasses.replace(cfg, qna=qna, portal=dataclasses.replace(cfg.portal, **portal))


def make_app(cfg: Config, **portal: Any) -> Flask:
    return create_app(portal_config(cfg, **portal), testing=True)


class Browserish:
    """A test client that reads the CSRF token from the last page, like a browser would."""

    def __init__(self, client: FlaskClient) -> None:
        self.c = client
        self.token = ""

    def get(self, path: str, **kw: Any):  # type: ignore[no-untyped-def]
        r = self.c.get(path, **kw)
        m = TOKEN.search(r.get_data(as_text=True))
        if m:
            self.token = m.group(1)
        return r

    def post(self, path: str, data: dict[str, str], **kw: Any):  # type: ignore[no-untyped-def]
        if not self.token:
            self.get(path)
        r = self.c.post(path, data={"csrf_token": self.token, **data}, **kw)
        m = TOKEN.search(r.get_data(as_text=True))
        if m:
            self.token = m.group(1)
        return r

    def login(self, login_id: str, password: str):  # type: ignore[no-untyped-def]
        self.get("/login")
        return self.post("/login", {"login_id": login_id, "password": password})


def give_answers(root, dn: str, answers: dict[str, str] = ANSWERS,  # type: ignore[no-untyped-def]
                 origin: str = "student", time_cost: int = 2) -> None:
    h = ChallengeHasher(memory_kib=19456, time_cost=time_cost, parallelism=1)
    values = [encode_challenge(q, h.hash(a)).encode() for q, a in answers.items()]
    root.modify(dn, [(ldap.MOD_REPLACE, "mimsChallenge", values),
                     (ldap.MOD_REPLACE, "mimsChallengeOrigin", [origin.encode()])], "answers")


def text(resp) -> str:  # type: ignore[no-untyped-def]
    """The page's visible words, tags stripped, spaces folded."""
    body = resp.get_data(as_text=True)
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip()


def asked_questions(resp) -> list[str]:  # type: ignore[no-untyped-def]
    body = resp.get_data(as_text=True)
    return re.findall(r'<label for="a\d+">([^<]+)</label>', body)
