"""The sample dashboard and the operator guide name only metrics that exist, and the guide
lists every one fleetpipe defines."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

from observability.endpoints import SDK_UP
from observability.metrics import SAMPLE_UP, SAMPLED

DOCS = Path(__file__).resolve().parents[2] / "docs"


def defined_metrics() -> set[str]:
    names = {SAMPLE_UP, SDK_UP, *(name for name, _ in SAMPLED.values())}
    for family in REGISTRY.collect():
        if family.name.startswith("fleetpipe_"):
            names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def base(name: str) -> str:
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_dashboard_queries_only_defined_metrics() -> None:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {base(name) for expr in exprs for name in re.findall(r"fleetpipe_\w+", expr)}
    defined = defined_metrics()
    assert used and used <= defined, used - defined
    assert any("temporal_" in expr for expr in exprs)  # the SDK's metrics are charted too


def test_operator_guide_lists_every_metric() -> None:
    guide = (DOCS / "operator-guide.md").read_text()
    listed = set(re.findall(r"`(fleetpipe_\w+)`", guide))
    assert defined_metrics() <= listed, defined_metrics() - listed
