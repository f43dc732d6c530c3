"""The mims schema (students, staff, sessions, applications), defined once.

Both shipped forms (``schema/mims.schema`` for slapd.conf and ``schema/mims.ldif`` for cn=config)
are generated from these tuples by ``scripts/gen_schema.py``; a test regenerates them and fails if
the committed files drift, so the two forms can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

ARC = "2.25.255515259974568028293500135569508669165"

# Syntaxes and matching rules from RFC 4517, named so a reader sees what a value is.
DIRECTORY_STRING = "1.3.6.1.4.1.1466.115.121.1.15"
IA5_STRING = "1.3.6.1.4.1.1466.115.121.1.26"
DN = "1.3.6.1.4.1.1466.115.121.1.12"
BOOLEAN = "1.3.6.1.4.1.1466.115.121.1.7"
INTEGER = "1.3.6.1.4.1.1466.115.121.1.27"
GENERALIZED_TIME = "1.3.6.1.4.1.1466.115.121.1.24"


@dataclass(frozen=True)
class AttributeDef:
    number: int
    name: str
    desc: str
    syntax: str
    equality: str
    single: bool = True
    ordering: str | None = None
    substr: str | None = None

    @property
    def oid(self) -> str:
        return f"{ARC}.1.{self.number}"


@dataclass(frozen=True)
class ObjectClassDef:
    number: int
    name: str
    desc: str
    must: tuple[str, ...]
    may: tuple[str, ...]
    kind: str = "AUXILIARY"
    sup: str = "top"

    @property
    def oid(self) -> str:
        return f"{ARC}.2.{self.number}"


_CI = ("caseIgnoreMatch", "caseIgnoreSubstringsMatch")
ATTRIBUTES: tuple[AttributeDef, ...] = (
    AttributeDef(1, "mimsSchoolCode", "school code from the roster", DIRECTORY_STRING, _CI[0],
                 substr=_CI[1]),
    AttributeDef(2, "mimsLevel", "level P1..P6", DIRECTORY_STRING, _CI[0]),
    AttributeDef(3, "mimsClass", "class name, e.g. 4A", DIRECTORY_STRING, _CI[0], substr=_CI[1]),
    AttributeDef(4, "mimsFormTeacher", "DN of the form teacher", DN, "distinguishedNameMatch"),
    AttributeDef(5, "mimsAccountStatus", "active | disabled | left", DIRECTORY_STRING, _CI[0]),
    AttributeDef(6, "mimsLeftAt", "when the student left the roster", GENERALIZED_TIME,
                 "generalizedTimeMatch", ordering="generalizedTimeOrderingMatch"),
    AttributeDef(7, "mimsChallenge", "<question-id>$<argon2id hash>", IA5_STRING,
                 "caseExactIA5Match", single=False),
    AttributeDef(8, "mimsChallengeOrigin", "card | student", DIRECTORY_STRING, _CI[0]),
    AttributeDef(9, "mimsQnaMustChange", "challenge answers must be replaced", BOOLEAN,
                 "booleanMatch"),
    AttributeDef(10, "mimsSsprFailures", "consecutive failed SSPR attempts", INTEGER,
                 "integerMatch", ordering="integerOrderingMatch"),
    AttributeDef(11, "mimsSsprLockedUntil", "SSPR back-off ends at", GENERALIZED_TIME,
                 "generalizedTimeMatch", ordering="generalizedTimeOrderingMatch"),
    AttributeDef(12, "mimsCredentialPending", "a password was set that no slip has carried yet",
                 BOOLEAN, "booleanMatch"),
    AttributeDef(13, "mimsSsprAsked", "<generalizedTime>$<qid>,<qid>: questions being asked",
                 IA5_STRING, "caseExactIA5Match"),
    AttributeDef(14, "mimsSsprLastFailure", "the last failed SSPR attempt (for the decay)",
                 GENERALIZED_TIME, "generalizedTimeMatch",
                 ordering="generalizedTimeOrderingMatch"),
    AttributeDef(15, "mimsSessionSubject", "DN of the person signed in by this session", DN,
                 "distinguishedNameMatch"),
    AttributeDef(16, "mimsSessionExpires", "the session or state ends at the latest then",
                 GENERALIZED_TIME, "generalizedTimeMatch",
                 ordering="generalizedTimeOrderingMatch"),
    AttributeDef(17, "mimsSessionSeen", "the last request of the session (for the idle timeout)",
                 GENERALIZED_TIME, "generalizedTimeMatch",
                 ordering="generalizedTimeOrderingMatch"),
    AttributeDef(18, "mimsSessionData", "the state of the session, JSON", DIRECTORY_STRING,
                 "caseExactMatch"),
    # Registered applications (ou=apps): OpenID Connect clients and SAML service providers.
    # URIs are compared exactly (a redirect URI must match character for character).
    AttributeDef(19, "mimsAppName", "the application name shown to people", DIRECTORY_STRING,
                 _CI[0]),
    AttributeDef(20, "mimsAppProtocol", "oidc | saml", DIRECTORY_STRING, _CI[0]),
    AttributeDef(21, "mimsAppRedirectUri",
                 "OIDC redirect URI, or SAML AssertionConsumerService URL", IA5_STRING,
                 "caseExactIA5Match", single=False),
    AttributeDef(22, "mimsAppPostLogoutUri", "OIDC post-logout redirect URI", IA5_STRING,
                 "caseExactIA5Match", single=False),
    AttributeDef(23, "mimsAppBackchannelUri", "OIDC back-channel logout URI", IA5_STRING,
                 "caseExactIA5Match"),
    AttributeDef(24, "mimsAppPublic", "OIDC public client: no secret", BOOLEAN, "booleanMatch"),
    AttributeDef(25, "mimsAppSecret", "argon2id hash of the client secret, never the secret",
                 IA5_STRING, "caseExactIA5Match"),
    AttributeDef(26, "mimsAppScope", "an OIDC scope the client may ask for", IA5_STRING,
                 "caseExactIA5Match", single=False),
    AttributeDef(27, "mimsAppConsent", "ask people for consent before the first sign-in",
                 BOOLEAN, "booleanMatch"),
    AttributeDef(28, "mimsAppPairwise", "pairwise subject identifiers for this client", BOOLEAN,
                 "booleanMatch"),
    AttributeDef(29, "mimsAppAllowLevel", "students of this level may sign in (none: any)",
                 DIRECTORY_STRING, _CI[0], single=False),
    AttributeDef(30, "mimsAppAllowSchool", "people of this school may sign in (none: any)",
                 DIRECTORY_STRING, _CI[0], single=False),
    AttributeDef(31, "mimsAppAllowRole", "student | teacher | staff may sign in (none: any)",
                 DIRECTORY_STRING, _CI[0], single=False),
    AttributeDef(32, "mimsAppSamlEntityId", "the SAML SP entityID, unique among the apps",
                 DIRECTORY_STRING, "caseExactMatch"),
    AttributeDef(33, "mimsAppSamlMetadata", "the SAML SP metadata XML, whole", DIRECTORY_STRING,
                 "caseExactMatch"),
    # 40 on: portal state.
    AttributeDef(34, "mimsAppIdTokenAlg", "OIDC: how the ID token is signed, RS256 or ES256",
                 IA5_STRING, "caseExactIA5Match"),
    # uidNumber/gidNumber allocation (ou=idpools, mimsdir/directory/idpool.py): a counter
    # that only grows, raised with the LDAP Modify-Increment extension (RFC 4525), which
    # slapd applies to INTEGER attributes atomically.
    AttributeDef(35, "mimsIdNext", "the next unused index of an id pool (only ever grows)",
                 INTEGER, "integerMatch", ordering="integerOrderingMatch"),
    AttributeDef(40, "mimsSessionLink",
                 "kind:id links of a grant (sid, family, code) for revoking together",
                 IA5_STRING, "caseExactIA5Match", single=False),
)

OBJECT_CLASSES: tuple[ObjectClassDef, ...] = (
    ObjectClassDef(
        1, "mimsStudent", "a student of the MIMS directory (auxiliary to inetOrgPerson)",
        must=("mimsSchoolCode", "mimsLevel", "mimsAccountStatus"),
        may=("mimsClass", "mimsFormTeacher", "mimsLeftAt", "mimsChallenge", "mimsChallengeOrigin",
             "mimsQnaMustChange", "mimsSsprFailures", "mimsSsprLockedUntil", "mimsSsprAsked",
             "mimsSsprLastFailure", "mimsCredentialPending"),
    ),
    ObjectClassDef(
        2, "mimsStaff", "a member of school staff (auxiliary to inetOrgPerson)",
        must=(),
        may=("mimsSchoolCode", "mimsClass", "mimsAccountStatus"),
    ),
    ObjectClassDef(
        3, "mimsSession",
        "portal state under ou=sessions: a signed-in session, or the SSPR back-off of a "
        "login ID with no account",
        must=("cn", "mimsSessionExpires"),
        may=("mimsSessionSubject", "mimsSessionSeen", "mimsSessionData", "mimsSessionLink",
             "mimsSsprFailures", "mimsSsprLockedUntil", "mimsSsprAsked",
             "mimsSsprLastFailure"),
        kind="STRUCTURAL",
    ),
    ObjectClassDef(
        4, "mimsApp",
        "an application registered under ou=apps: an OpenID Connect client or a SAML "
        "service provider, named cn=<client id>",
        must=("cn", "mimsAppName", "mimsAppProtocol"),
        may=("mimsAppRedirectUri", "mimsAppPostLogoutUri", "mimsAppBackchannelUri",
             "mimsAppPublic", "mimsAppSecret", "mimsAppScope", "mimsAppConsent",
             "mimsAppPairwise", "mimsAppAllowLevel", "mimsAppAllowSchool", "mimsAppAllowRole",
             "mimsAppSamlEntityId", "mimsAppSamlMetadata", "mimsAppIdTokenAlg", "description"),
        kind="STRUCTURAL",
    ),
    ObjectClassDef(
        5, "mimsIdPool",
        "a counter under ou=idpools from which uidNumber or gidNumber values are handed out: "
        "cn=uid-<server id>, cn=gid-<server id>, or cn=probe",
        must=("cn", "mimsIdNext"),
        may=("description",),
        kind="STRUCTURAL",
    ),
    ObjectClassDef(
        6, "mimsDevice",
        "the device account of one school, cn=device-<code>,ou=services (auxiliary to "
        "applicationProcess): it sees the people of its school only",
        must=("mimsSchoolCode",),
        may=(),
    ),
)


def attribute_type(a: AttributeDef) -> str:
    """The RFC 4512 AttributeTypeDescription, identical in both shipped forms."""
    parts = [f"( {a.oid}", f"NAME '{a.name}'", f"DESC '{a.desc}'", f"EQUALITY {a.equality}"]
    if a.ordering:
        parts.append(f"ORDERING {a.ordering}")
    if a.substr:
        parts.append(f"SUBSTR {a.substr}")
    parts.append(f"SYNTAX {a.syntax}")
    if a.single:
        parts.append("SINGLE-VALUE")
    return " ".join(parts) + " )"


def object_class(o: ObjectClassDef) -> str:
    parts = [f"( {o.oid}", f"NAME '{o.name}'", f"DESC '{o.desc}'", f"SUP {o.sup}", o.kind]
    if o.must:
        parts.append(f"MUST ( {' $ '.join(o.must)} )")
    if o.may:
        parts.append(f"MAY ( {' $ '.join(o.may)} )")
    return " ".join(parts) + " )"


HEADER = "generated by scripts/gen_schema.py from mimsdir/schemadef.py: do not edit"


def render_schema() -> str:
    """slapd.conf form (``include mims.schema``)."""
    lines = [f"# {HEADER}"]
    lines += [f"attributetype {attribute_type(a)}" for a in ATTRIBUTES]
    lines += [f"objectclass {object_class(o)}" for o in OBJECT_CLASSES]
    return "\n".join(lines) + "\n"


def render_ldif() -> str:
    """cn=config form, loaded by slapadd -n0 or ldapadd against cn=schema,cn=config."""
    lines = [f"# {HEADER}", "dn: cn=mims,cn=schema,cn=config", "objectClass: olcSchemaConfig",
             "cn: mims"]
    lines += [f"olcAttributeTypes: {attribute_type(a)}" for a in ATTRIBUTES]
    lines += [f"olcObjectClasses: {object_class(o)}" for o in OBJECT_CLASSES]
    return "\n".join(lines) + "\n"
