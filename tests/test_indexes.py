"""Every attribute the device login, the sync and the SSPR filter on has an index in slapd."""

from __future__ import annotations

import ldap

# attribute -> index types the project's filters need
NEEDED = {
    "mail": {"eq"},               # device login, SSPR, portal sign-in
    "uid": {"eq"},                # sync, staff commands
    "objectClass": {"eq"},
    "mimsSchoolCode": {"eq"},     # sync scope
    "mimsClass": {"eq"},          # class resets, cards
    "mimsLevel": {"eq"},
    "mimsFormTeacher": {"eq"},    # teacher view, ACL sets
    "mimsAccountStatus": {"eq"},  # purge, ACL filters
    "mimsCredentialPending": {"eq"},  # slips to re-issue
    "mimsQnaMustChange": {"eq"},  # report
    "member": {"eq"},             # ACL group checks
    "cn": {"eq"},                 # portal sessions and grants by their key
    "entryCSN": {"eq"},           # syncrepl
    "entryUUID": {"eq"},
    "mimsAppSamlEntityId": {"eq"},  # SAML: which app an AuthnRequest's issuer is
    # Device NSS: getent passwd <number> (ls -l), the primary group, id's group list. The
    # device may examine at most 100 entries per search: unindexed, these would be refused.
    "uidNumber": {"eq"},
    "gidNumber": {"eq"},
    "memberUid": {"eq"},
}


def indexes(root) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    res = root.search("cn=config", ldap.SCOPE_SUBTREE, "(olcSuffix=dc=mims,dc=example)",
                      ["olcDbIndex"], "reading the data database's indexes")
    assert len(res) == 1
    have: dict[str, set[str]] = {}
    for raw in res[0][1]["olcDbIndex"]:
        attrs, _, kinds = raw.decode().partition(" ")
        for attr in attrs.split(","):
            have.setdefault(attr.lower(), set()).update(k.strip() for k in kinds.split(","))
    return have


def test_needed_indexes_are_configured(slapd, root) -> None:  # type: ignore[no-untyped-def]
    have = indexes(root)
    missing = {a: k - have.get(a.lower(), set()) for a, k in NEEDED.items()
               if k - have.get(a.lower(), set())}
    assert missing == {}


def test_no_substring_index_on_cn(slapd, root) -> None:  # type: ignore[no-untyped-def]
    """Every portal sign-in adds a session named cn=<43 random characters>: a substring index
    on cn made 26 keys of it, scattered over the index's pages (at 500,000 students 550 KiB
    written and 3-5 ms of slapd's CPU a sign-in, against 155 KiB without; docs/performance.md).
    Name parts stay searchable by index through sn and givenName."""
    have = indexes(root)
    assert "sub" not in have["cn"]
    assert {"eq", "sub"} <= have["sn"] and {"eq", "sub"} <= have["givenname"]
