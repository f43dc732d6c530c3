"""The nightly roster sync: read, plan (pure), guard (pure), apply (pipelined), report.

The plan is a value: it can be printed (`--dry-run`), saved (`--plan-out`), reviewed and
applied later (`--apply-plan`). Nothing is written before every guard has passed.
"""
