"""Helpers for the trace tests: run the CLI in-process, validate against the schema."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from dfuse.cli import main
from dfuse.trace.format import schema_path


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(*argv: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(validator: jsonschema.Draft202012Validator, path: Path) -> list[str]:
    """Every line of ``path`` that the JSON Schema rejects, with the reason."""
    problems = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        for error in validator.iter_errors(json.loads(text)):
            problems.append(f"line {number}: {error.message}")
    return problems
