"""Tool: checks a demo month of RPC and BNLC exports against the official specification files.

`python -m tools.conformance DIR` (or `make conformance SPECS=DIR`), DIR holding
`rpc/api-v3.4.yaml` (OpenAPI 3.0: the `POST /journeys` request body, `$ref`s resolved,
`nullable` honoured) and `bnlc/schema.json` (Table Schema, validated with frictionless).
The demo month is made by the export code itself on a temporary SQLite database.
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs are published
import yaml
from frictionless import Resource, Schema

from dispatcher.model import Line, LineId, Network, RequestId
from dispatcher.request_machine import Cause, Channel, RequestState, RideRequest, Source
from line_service.authority.bnlc_export import export_bnlc, write_bnlc
from line_service.authority.rpc_export import export_rpc, write_journeys
from line_service.authority.trips import TripBook, draft_trip
from line_service.network.lines_file import load_network
from line_service.storage.store import Store

ROOT = Path(__file__).resolve().parents[1]
LINES = ROOT / "config" / "lines.yaml"
MONTH = date(2026, 3, 1)
DAYS = 31
SIREN = "200041010"


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` as JSON Schema: null joins the allowed types."""
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _nullable(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        if "type" in out:
            kinds = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*kinds, "null"]
        elif "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def _date_time(value: object) -> bool:
    """RFC 3339 date-time (jsonschema skips it without rfc3339-validator)."""
    if isinstance(value, str):
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


def journey_validator(openapi: Path) -> jsonschema.Draft4Validator:
    """The official journey request body, its `#/components/...` refs resolvable from its root."""
    document = yaml.safe_load(openapi.read_text(encoding="utf-8"))
    body = document["paths"]["/journeys"]["post"]["requestBody"]["content"]["application/json"]
    schema = _nullable({**body["schema"], "components": document["components"]})
    jsonschema.Draft4Validator.check_schema(schema)
    formats = jsonschema.FormatChecker()
    formats.checks("date-time", raises=ValueError)(_date_time)
    return jsonschema.Draft4Validator(schema, format_checker=formats)


def _ride(n: int, line: Line, at: datetime, rider: str, driver: str, eastward: bool) -> RideRequest:
    direction = line.directions[0 if eastward else 1]
    origin = direction.stops[n % (len(direction.stops) - 2)]
    return RideRequest(
        id=RequestId(f"demo-{n}"),
        line_id=line.id,
        stop_id=origin.id,
        destination_id=direction.stops[-1].id,
        seats=1 + n % 2,
        source=Source(Channel.SMS, f"sms-{n}"),
        terminal_id=None,
        phone=rider,
        code="1234",
        state=RequestState.PICKED_UP,
        cause=Cause.CODE_VALIDATED,
        created_at=at - timedelta(minutes=4),
        deadline_at=at + timedelta(minutes=11),
        updated_at=at,
        driver_ref=driver,
    )


def seed_month(store: Store, network: Network) -> int:
    """A month of weekday car runs: three drivers, mornings east, evenings west, 1-2 riders each."""
    line = network.line(LineId("calais-dunkerque"))
    assert line is not None
    book, n = TripBook(store), 0
    for day in range(DAYS):
        today = MONTH + timedelta(days=day)
        if today.weekday() >= 5:
            continue
        for hour, eastward in ((6, True), (16, False)):
            for driver in range(3):
                at = datetime(today.year, today.month, today.day, hour, 10 * driver, tzinfo=UTC)
                for rider in range(1 + (day + driver) % 2):
                    n += 1
                    phone = f"+336{day:02d}{driver}{rider}{int(eastward)}0{hour:02d}"
                    draft = draft_trip(
                        line, _ride(n, line, at, phone, f"+3377000000{driver}", eastward), None
                    )
                    if draft is not None:
                        book.record(draft)
    return n


def check_rpc(specs: Path, out: Path) -> tuple[int, list[str]]:
    """Journeys of the demo month, and every violation of the official OpenAPI body schema."""
    network = load_network(LINES)
    store = Store(f"sqlite:///{out / 'demo.db'}")
    store.create_schema()
    try:
        seed_month(store, network)
        export = export_rpc(store, network, MONTH, MONTH + timedelta(days=DAYS - 1))
    finally:
        store.dispose()
    write_journeys(export.journeys, out / "rpc.json")
    validator = journey_validator(specs / "rpc" / "api-v3.4.yaml")
    problems = [f"our own schema: {report}" for r in export.invalid.values() for report in r]
    for journey in export.journeys:
        for error in validator.iter_errors(journey):
            where = ".".join(str(part) for part in error.absolute_path) or "(top level)"
            problems.append(f"journey {journey['operator_journey_id']}: {where}: {error.message}")
    return len(export.journeys), problems


def check_bnlc(specs: Path, out: Path) -> tuple[int, list[str]]:
    """The shipped line's places, and every violation of the official Table Schema."""
    export = export_bnlc(load_network(LINES), MONTH, SIREN, "Pôle métropolitain Côte d'Opale")
    write_bnlc(export.rows, out / "bnlc.csv")
    descriptor = json.loads((specs / "bnlc" / "schema.json").read_text(encoding="utf-8"))
    resource = Resource("bnlc.csv", basepath=str(out), schema=Schema.from_descriptor(descriptor))
    report = resource.validate()
    problems = [f"our own schema: {r}" for reports in export.invalid.values() for r in reports]
    problems += [error.message for task in report.tasks for error in task.errors]
    return len(export.rows), problems


def main(argv: list[str]) -> int:
    """Run both checks, print a summary; exit 1 on any violation, 2 on a bad folder."""
    if len(argv) != 1 or not (Path(argv[0]) / "rpc" / "api-v3.4.yaml").is_file():
        print("usage: python -m tools.conformance SPECS_DIR (with rpc/api-v3.4.yaml)")
        return 2
    specs, failed = Path(argv[0]), False
    with tempfile.TemporaryDirectory(prefix="conformance-") as folder:
        for name, check in (
            ("RPC journeys vs rpc/api-v3.4.yaml (POST /journeys body)", check_rpc),
            ("BNLC places vs bnlc/schema.json (Table Schema, frictionless)", check_bnlc),
        ):
            count, problems = check(specs, Path(folder))
            verdict = "FAIL" if problems or count == 0 else "pass"
            failed = failed or verdict == "FAIL"
            print(f"{verdict}  {name}: {count} checked, {len(problems)} problem(s)")
            for problem in problems[:20]:
                print(f"      {problem}")
    print("conformance: " + ("FAILED" if failed else "all passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
