"""CloudFormation YAML as plain data, and a small evaluator of its intrinsic functions.

`load(path)` accepts the short forms (`!Ref`, `!Sub`, `!GetAtt`, `!If`, `!Join`, ...) and turns each
into its long form (`{"Ref": ...}`, `{"Fn::Sub": ...}`, `{"Fn::GetAtt": [name, attr]}`), so the
tests read a template the way CloudFormation does.

`Evaluator` resolves those functions against given parameters, resource ids and attributes: the
tests use it to evaluate conditions and to build, from a template's own properties, the resources
moto's CloudFormation skips.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import yaml

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "infra" / "cloudformation"
HUB = TEMPLATES / "herd.yaml"
REGION = TEMPLATES / "herd-region.yaml"

_FUNCTIONS = [
    "Base64", "Cidr", "Equals", "FindInMap", "GetAtt", "GetAZs", "If", "ImportValue", "Join",
    "Not", "And", "Or", "Select", "Split", "Sub", "Transform", "Contains", "EachMemberEquals",
    "EachMemberIn", "RefAll", "ValueOf", "ValueOfAll", "Length", "ToJsonString",
]


class _Loader(yaml.SafeLoader):
    """SafeLoader that knows CloudFormation's tags."""


def _construct(tag: str):
    def construct(loader: _Loader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if tag == "Ref":
            return {"Ref": value}
        if tag == "Condition":
            return {"Condition": value}
        if tag == "GetAtt" and isinstance(value, str):
            name, _, attr = value.partition(".")
            value = [name, attr]
        return {f"Fn::{tag}": value}

    return construct


for _name in _FUNCTIONS + ["Ref", "Condition"]:
    _Loader.add_constructor(f"!{_name}", _construct(_name))


def load(path: Path | str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=_Loader)  # noqa: S506 - SafeLoader subclass


def resources(template: dict, kind: str | None = None) -> dict[str, dict]:
    """The template's resources, optionally only those of one type."""
    return {
        name: r
        for name, r in template["Resources"].items()
        if kind is None or r["Type"] == kind
    }


def policy_documents(template: dict):
    """Every IAM policy document: (resource name, document, is_identity_policy)."""
    for name, r in template["Resources"].items():
        props = r.get("Properties", {})
        if r["Type"] == "AWS::IAM::Role":
            for p in props.get("Policies", []):
                yield name, p["PolicyDocument"], True
        elif r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            yield name, props["PolicyDocument"], True
        elif r["Type"] in ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
            yield name, props["PolicyDocument"], False


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NoValue": None,
}


class Evaluator:
    """Evaluates intrinsic functions.

    `refs` gives the value of `Ref` for parameters and resources (a resource missing from it is
    an error), `getatt(resource, attribute)` the value of `Fn::GetAtt`.
    """

    def __init__(
        self,
        template: dict,
        region: str,
        parameters: dict[str, Any],
        refs: dict[str, Any] | None = None,
        getatt: Callable[[str, str], Any] | None = None,
    ):
        self.template = template
        self.region = region
        self.values: dict[str, Any] = {}
        for name, p in template.get("Parameters", {}).items():
            value = parameters.get(name, p.get("Default"))
            if value is None:
                raise KeyError(f"parameter {name} has no value")
            if p["Type"] == "CommaDelimitedList":
                value = value if isinstance(value, list) else str(value).split(",")
            self.values[name] = value
        self.values.update(PSEUDO)
        self.values["AWS::Region"] = region
        self.values["AWS::StackName"] = "test"
        self.values.update(refs or {})
        self._attr = getatt or (lambda r, a: f"{r}.{a}")
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.eval(self.template["Conditions"][name]))
        return self._conditions[name]

    def active(self, resource: dict) -> bool:
        """Whether a resource (or output) is created under these parameters."""
        return "Condition" not in resource or self.condition(resource["Condition"])

    def eval(self, node: Any) -> Any:
        if isinstance(node, list):
            out = [self.eval(x) for x in node]
            return [x for x in out if x is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return _NO_VALUE
                if arg not in self.values:
                    raise KeyError(f"Ref {arg}: no value given")
                return self.values[arg]
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                return getattr(self, "_" + key[4:].lower())(arg)
        out = {k: self.eval(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not _NO_VALUE}

    # -- functions
    def _if(self, arg):
        name, yes, no = arg
        return self.eval(yes if self.condition(name) else no)

    def _equals(self, arg):
        a, b = (self.eval(x) for x in arg)
        return str(a) == str(b)

    def _not(self, arg):
        return not self.eval(arg[0])

    def _and(self, arg):
        return all(self.eval(x) for x in arg)

    def _or(self, arg):
        return any(self.eval(x) for x in arg)

    def _join(self, arg):
        sep, items = arg
        return sep.join(str(x) for x in self.eval(items))

    def _select(self, arg):
        index, items = arg
        return self.eval(items)[int(self.eval(index))]

    def _split(self, arg):
        sep, text = arg
        return str(self.eval(text)).split(sep)

    def _getazs(self, arg):
        return [f"{self.region}a", f"{self.region}b", f"{self.region}c"]

    def _getatt(self, arg):
        resource, attribute = arg
        return self._attr(resource, attribute)

    def _sub(self, arg):
        if isinstance(arg, list):
            text, extra = arg
            extra = {k: self.eval(v) for k, v in extra.items()}
        else:
            text, extra = arg, {}

        def replace(m: re.Match) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in extra:
                return str(extra[name])
            if "." in name and name.split(".")[0] in self.template["Resources"]:
                resource, attribute = name.split(".", 1)
                return str(self._attr(resource, attribute))
            return str(self.eval({"Ref": name}))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


_NO_VALUE = object()
