"""CloudFormation intrinsic functions, resolved against the local environment.

Supported: ``Ref`` (parameters, pseudo parameters, resources), ``Fn::GetAtt``
(list or ``"Res.Attr"`` form), ``Fn::Join``, ``Fn::Sub`` (string or
``[string, vars]``, ``${!Literal}``), ``Fn::Select``, ``Fn::Split``,
``Fn::ImportValue``, ``Fn::FindInMap``, ``Fn::Base64``, ``Fn::GetAZs``,
``Fn::If``/``Fn::Equals``/``Fn::Not``/``Fn::And``/``Fn::Or``/``Condition``
and, in template ``Rules``, ``Fn::Contains``/``Fn::EachMemberEquals``/``Fn::EachMemberIn``.
``Ref: AWS::NoValue`` removes the property or list item.

Anything else that looks like an intrinsic (a one-key object whose key is
``Ref`` or starts with ``Fn::``) raises :class:`IntrinsicError` naming the
function and the path where it was found. Values that only exist after a
resource is created come back as :class:`~stsmon.localcloud.handlers.Unresolved`
when the resolver is asked to allow them (the deployer's check phase).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import StsmonError
from . import LocalEnvironment
from .handlers import Unresolved

PSEUDO_PARAMETERS = (
    "AWS::AccountId",
    "AWS::Region",
    "AWS::Partition",
    "AWS::URLSuffix",
    "AWS::StackName",
    "AWS::StackId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
)

FUNCTIONS = (
    "Ref",
    "Fn::GetAtt",
    "Fn::Join",
    "Fn::Sub",
    "Fn::Select",
    "Fn::Split",
    "Fn::ImportValue",
    "Fn::FindInMap",
    "Fn::Base64",
    "Fn::GetAZs",
    "Fn::If",
    "Fn::Equals",
    "Fn::Not",
    "Fn::And",
    "Fn::Or",
    "Condition",
    "Fn::Contains",
    "Fn::EachMemberEquals",
    "Fn::EachMemberIn",
)

_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


class IntrinsicError(StsmonError):
    """An intrinsic that cannot be resolved locally (unknown, malformed, dangling)."""

    exit_code = 2


class _NoValue:
    """``Ref: AWS::NoValue``: the enclosing property or list item disappears."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


@dataclass
class ResourceValues:
    """What ``Ref`` and ``Fn::GetAtt`` give for one resource."""

    physical_id: Any
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Scope:
    """Everything a template's intrinsics may refer to.

    ``resources``: logical id -> :class:`ResourceValues` for resources whose
    values are known; ``pending``: logical ids of resources declared in the
    template but not known yet (a reference to one gives :class:`Unresolved`
    when ``allow_unresolved``, else an error); ``conditions``: evaluated
    condition values (filled lazily from ``condition_defs``).
    """

    env: LocalEnvironment
    stack_name: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    resources: Mapping[str, ResourceValues] = field(default_factory=dict)
    pending: frozenset[str] = frozenset()
    exports: Mapping[str, Any] = field(default_factory=dict)
    mappings: Mapping[str, Any] = field(default_factory=dict)
    condition_defs: Mapping[str, Any] = field(default_factory=dict)
    conditions: dict[str, bool] = field(default_factory=dict)
    allow_unresolved: bool = False
    #: who to blame for a missing export (export name -> hint), used in messages
    export_hint: Callable[[str], str] = lambda name: ""

    @property
    def stack_id(self) -> str:
        return self.env.arn("cloudformation", f"stack/{self.stack_name}/local")


def is_intrinsic(value: Any) -> bool:
    """A one-key dict whose key is ``Ref``, ``Condition`` or ``Fn::*``."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    (key,) = value
    return key == "Ref" or key.startswith("Fn::")


def resolve(value: Any, scope: Scope, where: str = "") -> Any:
    """Resolve every intrinsic in ``value`` (recursively). ``where`` names the
    location for error messages (``"Resources.Bucket.Properties"``)."""
    result = _resolve(value, scope, where)
    return None if result is NO_VALUE else result


def find_references(value: Any) -> set[str]:
    """Logical ids (and parameter names) referenced by Ref/GetAtt/Sub in ``value``."""
    found: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if len(v) == 1:
                (key, arg), = v.items()
                if key == "Ref" and isinstance(arg, str):
                    found.add(arg)
                elif key == "Fn::GetAtt":
                    if isinstance(arg, list) and arg and isinstance(arg[0], str):
                        found.add(arg[0])
                    elif isinstance(arg, str):
                        found.add(arg.split(".", 1)[0])
                elif key == "Fn::Sub":
                    text = arg[0] if isinstance(arg, list) and arg else arg
                    local_vars = arg[1] if isinstance(arg, list) and len(arg) > 1 and isinstance(arg[1], dict) else {}
                    if isinstance(text, str):
                        for name in _SUB_VAR.findall(text):
                            if not name.startswith("!"):
                                base = name.split(".", 1)[0]
                                if base not in local_vars:
                                    found.add(base)
            for item in v.values():
                walk(item)
        elif isinstance(v, list):
            for item in v:
                walk(item)

    walk(value)
    return found


def check_functions(value: Any, where: str = "") -> None:
    """Refuse unknown intrinsic functions anywhere in ``value`` (no resolution)."""
    if isinstance(value, dict):
        if len(value) == 1:
            (key,) = value
            if (key == "Ref" or key.startswith("Fn::")) and key not in FUNCTIONS:
                raise IntrinsicError(f"{where}: unsupported intrinsic function {key!r}")
        for k, v in value.items():
            check_functions(v, f"{where}.{k}" if where else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_functions(v, f"{where}[{i}]")


def _resolve(value: Any, scope: Scope, where: str) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref" or key.startswith("Fn::"):
                fn = _FUNCTIONS.get(key)
                if fn is None:
                    raise IntrinsicError(f"{where}: unsupported intrinsic function {key!r}")
                return fn(arg, scope, f"{where}.{key}" if where else key)
        out: dict[str, Any] = {}
        for k, v in value.items():
            r = _resolve(v, scope, f"{where}.{k}" if where else k)
            if r is not NO_VALUE:
                out[k] = r
        return out
    if isinstance(value, list):
        items = [_resolve(v, scope, f"{where}[{i}]") for i, v in enumerate(value)]
        return [i for i in items if i is not NO_VALUE]
    return value


def _unresolved_in(*values: Any) -> Unresolved | None:
    for v in values:
        if isinstance(v, Unresolved):
            return v
        if isinstance(v, list):
            for item in v:
                if isinstance(item, Unresolved):
                    return item
    return None


def _string(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise IntrinsicError(f"{where}: expected a string, got {json.dumps(value)[:80]}")


# -- the functions -------------------------------------------------------------


def _ref(arg: Any, scope: Scope, where: str) -> Any:
    if not isinstance(arg, str):
        raise IntrinsicError(f"{where}: Ref takes a name, got {arg!r}")
    return _lookup(arg, None, scope, where)


def _lookup(name: str, attribute: str | None, scope: Scope, where: str) -> Any:
    if attribute is None:
        if name in PSEUDO_PARAMETERS:
            return _pseudo(name, scope)
        if name in scope.parameters:
            return scope.parameters[name]
    if name in scope.resources:
        res = scope.resources[name]
        if attribute is None:
            return res.physical_id
        if attribute in res.attributes:
            return res.attributes[attribute]
        known = ", ".join(sorted(res.attributes)) or "none"
        raise IntrinsicError(f"{where}: resource {name} has no attribute {attribute!r} locally (known: {known})")
    if name in scope.pending:
        if scope.allow_unresolved:
            return Unresolved(f"Ref {name}" if attribute is None else f"Fn::GetAtt {name}.{attribute}")
        raise IntrinsicError(f"{where}: resource {name} is not deployed yet")
    what = "parameter, pseudo parameter or resource" if attribute is None else "resource"
    raise IntrinsicError(f"{where}: no {what} named {name!r} in the template")


def _pseudo(name: str, scope: Scope) -> Any:
    env = scope.env
    return {
        "AWS::AccountId": env.account,
        "AWS::Region": env.region,
        "AWS::Partition": env.partition,
        "AWS::URLSuffix": env.url_suffix,
        "AWS::StackName": scope.stack_name,
        "AWS::StackId": scope.stack_id,
        "AWS::NotificationARNs": [],
        "AWS::NoValue": NO_VALUE,
    }[name]


def _get_att(arg: Any, scope: Scope, where: str) -> Any:
    if isinstance(arg, str) and "." in arg:
        arg = arg.split(".", 1)
    if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str)):
        raise IntrinsicError(f"{where}: Fn::GetAtt takes [resource, attribute], got {arg!r}")
    attribute = _resolve(arg[1], scope, where)
    if isinstance(attribute, Unresolved):
        return attribute
    return _lookup(arg[0], _string(attribute, where), scope, where)


def _join(arg: Any, scope: Scope, where: str) -> Any:
    if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str)):
        raise IntrinsicError(f"{where}: Fn::Join takes [delimiter, [values]], got {json.dumps(arg)[:80]}")
    values = _resolve(arg[1], scope, where)
    if isinstance(values, Unresolved):
        return values
    if not isinstance(values, list):
        raise IntrinsicError(f"{where}: Fn::Join needs a list of values")
    pending = _unresolved_in(values)
    if pending is not None:
        return Unresolved(f"Fn::Join with {pending.what}")
    return arg[0].join(_string(v, where) for v in values)


def _sub(arg: Any, scope: Scope, where: str) -> Any:
    if isinstance(arg, str):
        text, local_vars = arg, {}
    elif isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) and isinstance(arg[1], dict):
        text = arg[0]
        local_vars = {k: _resolve(v, scope, f"{where}[1].{k}") for k, v in arg[1].items()}
    else:
        raise IntrinsicError(f"{where}: Fn::Sub takes a string or [string, {{vars}}]")
    pending: list[Unresolved] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name in local_vars:
            value = local_vars[name]
        elif "." in name and name.split(".", 1)[0] not in scope.parameters:
            res, attribute = name.split(".", 1)
            value = _lookup(res, attribute, scope, where)
        else:
            value = _lookup(name, None, scope, where)
        if isinstance(value, Unresolved):
            pending.append(value)
            return ""
        return _string(value, f"{where} (${{{name}}})")

    result = _SUB_VAR.sub(replace, text)
    if pending:
        return Unresolved(f"Fn::Sub with {pending[0].what}")
    return result


def _select(arg: Any, scope: Scope, where: str) -> Any:
    if not (isinstance(arg, list) and len(arg) == 2):
        raise IntrinsicError(f"{where}: Fn::Select takes [index, list]")
    index = _resolve(arg[0], scope, where)
    values = _resolve(arg[1], scope, where)
    if isinstance(index, Unresolved) or isinstance(values, Unresolved):
        return Unresolved(f"Fn::Select with {(_unresolved_in(index, values) or index).what}")
    try:
        i = int(index)
    except (TypeError, ValueError):
        raise IntrinsicError(f"{where}: Fn::Select index {index!r} is not a number") from None
    if not isinstance(values, list) or not 0 <= i < len(values):
        raise IntrinsicError(f"{where}: Fn::Select index {i} is out of range for {json.dumps(values)[:80]}")
    return values[i]


def _split(arg: Any, scope: Scope, where: str) -> Any:
    if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str)):
        raise IntrinsicError(f"{where}: Fn::Split takes [delimiter, string]")
    text = _resolve(arg[1], scope, where)
    if isinstance(text, Unresolved):
        return Unresolved(f"Fn::Split with {text.what}")
    return _string(text, where).split(arg[0])


def _import_value(arg: Any, scope: Scope, where: str) -> Any:
    name = _resolve(arg, scope, where)
    if isinstance(name, Unresolved):
        return name
    name = _string(name, where)
    if name not in scope.exports:
        hint = scope.export_hint(name)
        raise IntrinsicError(f"{where}: no stack exports {name!r}{hint}")
    return scope.exports[name]


def _find_in_map(arg: Any, scope: Scope, where: str) -> Any:
    if not (isinstance(arg, list) and len(arg) in (3, 4)):
        raise IntrinsicError(f"{where}: Fn::FindInMap takes [map, key, key]")
    keys = [_resolve(a, scope, where) for a in arg[:3]]
    try:
        return scope.mappings[keys[0]][keys[1]][keys[2]]
    except (KeyError, TypeError):
        if len(arg) == 4 and isinstance(arg[3], dict) and "DefaultValue" in arg[3]:
            return _resolve(arg[3]["DefaultValue"], scope, where)
        raise IntrinsicError(f"{where}: Fn::FindInMap found nothing at {keys}") from None


def _base64(arg: Any, scope: Scope, where: str) -> Any:
    text = _resolve(arg, scope, where)
    if isinstance(text, Unresolved):
        return text
    return base64.b64encode(_string(text, where).encode()).decode()


def _get_azs(arg: Any, scope: Scope, where: str) -> Any:
    region = _resolve(arg, scope, where) or scope.env.region
    return [f"{region}{suffix}" for suffix in "abc"]


def condition_value(name: Any, scope: Scope, where: str) -> bool:
    if not isinstance(name, str):
        raise IntrinsicError(f"{where}: a condition name must be a string")
    if name not in scope.conditions:
        if name not in scope.condition_defs:
            raise IntrinsicError(f"{where}: no condition named {name!r}")
        scope.conditions[name] = bool(_resolve(scope.condition_defs[name], scope, f"Conditions.{name}"))
    return scope.conditions[name]


def _if(arg: Any, scope: Scope, where: str) -> Any:
    if not (isinstance(arg, list) and len(arg) == 3):
        raise IntrinsicError(f"{where}: Fn::If takes [condition, then, else]")
    branch = arg[1] if condition_value(arg[0], scope, where) else arg[2]
    return _resolve(branch, scope, where)


def _equals(arg: Any, scope: Scope, where: str) -> Any:
    if not (isinstance(arg, list) and len(arg) == 2):
        raise IntrinsicError(f"{where}: Fn::Equals takes [a, b]")
    a, b = (_resolve(v, scope, where) for v in arg)
    if isinstance(a, Unresolved) or isinstance(b, Unresolved):
        raise IntrinsicError(f"{where}: Fn::Equals on a value known only after deploy")
    return _norm(a) == _norm(b)


def _norm(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _bool_args(arg: Any, scope: Scope, where: str, fn: str, count: tuple[int, int]) -> list[bool]:
    if not (isinstance(arg, list) and count[0] <= len(arg) <= count[1]):
        raise IntrinsicError(f"{where}: {fn} takes {count[0]}..{count[1]} conditions")
    out = []
    for item in arg:
        if isinstance(item, dict) and set(item) == {"Condition"}:
            out.append(condition_value(item["Condition"], scope, where))
        else:
            value = _resolve(item, scope, where)
            out.append(value in (True, "true", "True"))
    return out


def _not(arg: Any, scope: Scope, where: str) -> Any:
    return not _bool_args(arg, scope, where, "Fn::Not", (1, 1))[0]


def _and(arg: Any, scope: Scope, where: str) -> Any:
    return all(_bool_args(arg, scope, where, "Fn::And", (2, 10)))


def _or(arg: Any, scope: Scope, where: str) -> Any:
    return any(_bool_args(arg, scope, where, "Fn::Or", (2, 10)))


def _condition(arg: Any, scope: Scope, where: str) -> Any:
    return condition_value(arg, scope, where)


def _contains(arg: Any, scope: Scope, where: str) -> Any:
    if not (isinstance(arg, list) and len(arg) == 2):
        raise IntrinsicError(f"{where}: Fn::Contains takes [list, value]")
    values, value = (_resolve(v, scope, where) for v in arg)
    return _norm(value) in [_norm(v) for v in values]


def _each_member_equals(arg: Any, scope: Scope, where: str) -> Any:
    values, value = (_resolve(v, scope, where) for v in arg)
    return all(_norm(v) == _norm(value) for v in values)


def _each_member_in(arg: Any, scope: Scope, where: str) -> Any:
    values, allowed = (_resolve(v, scope, where) for v in arg)
    return all(_norm(v) in [_norm(a) for a in allowed] for v in values)


_FUNCTIONS: dict[str, Callable[[Any, Scope, str], Any]] = {
    "Ref": _ref,
    "Fn::GetAtt": _get_att,
    "Fn::Join": _join,
    "Fn::Sub": _sub,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::ImportValue": _import_value,
    "Fn::FindInMap": _find_in_map,
    "Fn::Base64": _base64,
    "Fn::GetAZs": _get_azs,
    "Fn::If": _if,
    "Fn::Equals": _equals,
    "Fn::Not": _not,
    "Fn::And": _and,
    "Fn::Or": _or,
    "Condition": _condition,
    "Fn::Contains": _contains,
    "Fn::EachMemberEquals": _each_member_equals,
    "Fn::EachMemberIn": _each_member_in,
}
assert set(_FUNCTIONS) == set(FUNCTIONS)


def evaluate_rules(rules: Mapping[str, Any], scope: Scope) -> None:
    """Evaluate a template's ``Rules`` (e.g. the CDK's CheckBootstrapVersion);
    a failed assertion raises :class:`IntrinsicError` with its description."""
    for name, rule in (rules or {}).items():
        applies = True
        if "RuleCondition" in rule:
            applies = bool(resolve(rule["RuleCondition"], scope, f"Rules.{name}.RuleCondition"))
        if not applies:
            continue
        for i, assertion in enumerate(rule.get("Assertions", [])):
            if not resolve(assertion["Assert"], scope, f"Rules.{name}.Assertions[{i}]"):
                message = assertion.get("AssertDescription", "assertion failed")
                raise IntrinsicError(f"Rules.{name}: {message}")
