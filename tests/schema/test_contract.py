"""The served schema is a superset of the public contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from graphql import build_schema, find_breaking_changes
from strawberry.printer import print_schema

from schema.app import schema

#: the public contract, kept in the repository (docs/contract.graphql): names clients
#: rely on, which the served schema may add to but never rename or drop
CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contract.graphql"


def test_served_schema_has_no_breaking_change_against_the_contract() -> None:
    contract = build_schema(CONTRACT.read_text())
    served = build_schema(print_schema(schema))
    assert find_breaking_changes(contract, served) == []


def test_export_schema_prints_the_served_sdl() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cli", "export-schema"], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == print_schema(schema).strip()
