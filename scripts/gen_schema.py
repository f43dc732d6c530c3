#!/usr/bin/env python3
"""Writes schema/mims.schema and schema/mims.ldif from mimsdir/schemadef.py."""

from pathlib import Path

from mimsdir.schemadef import render_ldif, render_schema

root = Path(__file__).resolve().parent.parent
(root / "schema" / "mims.schema").write_text(render_schema(), encoding="utf-8")
(root / "schema" / "mims.ldif").write_text(render_ldif(), encoding="utf-8")
print("wrote schema/mims.schema and schema/mims.ldif")
