"""Adapter: the national formats' schemas carried by the package, and checks against them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where a document is checked: not on the service's start-up path
    import jsonschema  # type: ignore[import-untyped]  # no stubs are published

RPC_JOURNEY = "rpc_journey_v3.4.schema.json"
BNLC_ROW = "bnlc_row_v0.3.0.schema.json"


@cache
def load(name: str) -> dict[str, Any]:
    """One of the package's schemas (RPC_JOURNEY, BNLC_ROW), parsed once."""
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    import jsonschema

    schema = load(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"


def problems(name: str, document: Mapping[str, Any]) -> list[str]:
    """Every violation of schema `name`, each as `field.path: message`, in path order."""
    errors = sorted(_validator(name).iter_errors(document), key=lambda e: list(map(str, e.path)))
    return [f"{_where(error)}: {error.message}" for error in errors]


def journey_problems(journey: Mapping[str, Any]) -> list[str]:
    """What makes an RPC journey invalid against our v3.4 schema (empty when valid)."""
    return problems(RPC_JOURNEY, journey)


PATCH_REQUIRED = ("incentives", "operator_class", "start", "end", "distance")
PATCH_OPTIONAL = ("operator_trip_id",)


@cache
def _patch_validator() -> jsonschema.Draft202012Validator:
    """`PATCH /journeys/{id}`'s body (v3.4): the journey's own field rules, fewer fields."""
    import jsonschema

    journey = load(RPC_JOURNEY)
    fields = (*PATCH_REQUIRED, *PATCH_OPTIONAL)
    schema = {
        "$schema": journey["$schema"],
        "type": "object",
        "required": list(PATCH_REQUIRED),
        "additionalProperties": False,
        "properties": {name: journey["properties"][name] for name in fields},
        "$defs": journey["$defs"],
    }
    return jsonschema.Draft202012Validator(schema)


def patch_problems(body: Mapping[str, Any]) -> list[str]:
    """What makes a journey update (PATCH body) invalid against our v3.4 schema."""
    errors = sorted(_patch_validator().iter_errors(body), key=lambda e: list(map(str, e.path)))
    return [f"{_where(error)}: {error.message}" for error in errors]


def bnlc_row_problems(row: Mapping[str, str]) -> list[str]:
    """What makes a BNLC CSV row invalid against our v0.3.0 schema (empty when valid)."""
    return problems(BNLC_ROW, row)


def rpc_terms() -> dict[str, int]:
    """The registry's terms thresholds noted in the journey schema (e.g. 1000 m minimum)."""
    terms: dict[str, Any] = load(RPC_JOURNEY)["x-terms"]
    return {key: int(value) for key, value in terms.items() if not key.startswith("$")}


def send_within_hours() -> int:
    """A journey sent later than this after its start is refused by the registry (expired)."""
    return rpc_terms()["send_within_hours"]


def min_distance_m() -> int:
    """Below this distance a journey breaks the registry's terms (`distance_too_short`)."""
    return rpc_terms()["distance_too_short_below_m"]


def rpc_api_version() -> str:
    """The registry API version the journey schema follows, as in the URL (`v3.4`)."""
    return "v" + str(load(RPC_JOURNEY)["x-version"])


def bnlc_columns() -> tuple[str, ...]:
    """The BNLC CSV columns, in the schema's order."""
    return tuple(load(BNLC_ROW)["properties"])
