"""A run as the operator sees it: each stage with a bar of its target runs by status, why the
run waits (a gate, with the command that passes it, or a pause), and how it ended. Drawn with
rich for a terminal, or as plain lines for a log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from cli.remote.common import STATUS_STYLES, when
from cli.remote.resolve import run_label

TERMINAL = ("success", "failure", "cancelled", "invalid", "timeout")
# The bar's segments, in the order they are drawn: (label, statuses it counts, style).
SEGMENTS = (
    ("success", ("success",), "green"),
    ("failed", ("failure", "timeout", "invalid"), "red"),
    ("cancelled", ("cancelled",), "magenta"),
    ("running", ("processing", "dispatched", "running", "complete"), "yellow"),
    ("queued", ("queued",), "blue"),
    ("pending", ("pending",), "grey50"),
)
BAR_WIDTH = 30
# Exit codes of `runs watch` (and `runs start --watch`) by the run's outcome.
EXIT_CODES = {"success": 0, "failure": 3, "cancelled": 4, "timeout": 5, "invalid": 6}


@dataclass
class Waiting:
    kind: str  # gate or pause
    stage: dict[str, Any] | None = None
    by: str = ""


@dataclass
class RunView:
    run: dict[str, Any]
    stages: list[dict[str, Any]]

    @property
    def label(self) -> str:
        return run_label(self.run)

    @property
    def status(self) -> str:
        return str(self.run["status"])

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.status, 1)

    def waiting(self) -> Waiting | None:
        """Why a `waiting` run waits: the server's `waiting_for` where it has one (a pause comes
        first: resumed, the run then waits at its gate), else the first manual stage still
        pending after stages that all succeeded (a gate), else a pause."""
        if self.status != "waiting":
            return None
        said = self.run.get("waiting_for")
        if isinstance(said, dict):  # {kind: pause, by, by_name} or {kind: gate, stage_run_id}
            if said.get("kind") == "pause":
                return Waiting("pause", by=str(said.get("by_name") or said.get("by") or ""))
            gate = next((s for s in self.stages if s["id"] == said.get("stage_run_id")), None)
            if said.get("kind") == "gate" and gate is not None:
                return Waiting("gate", gate)
        for stage in self.stages:
            if stage["status"] == "pending":
                return Waiting("gate", stage) if stage.get("trigger") == "manual" else \
                    Waiting("pause")
            if stage["status"] != "success":
                break
        return Waiting("pause")

    def hint(self) -> tuple[str, str] | None:
        """Why the run waits, and the command that moves it on."""
        waiting = self.waiting()
        if waiting is None:
            return None
        if waiting.kind == "gate" and waiting.stage is not None:
            name = waiting.stage["stage_name"]
            return (f"waiting at the gate of stage {waiting.stage['order']} ({name}); "
                    "pass it with", f"fleetpipe runs promote {self.label} {name}")
        by = f" by {waiting.by}" if waiting.by else ""
        return f"paused{by}; resume with", f"fleetpipe runs resume {self.label}"

    def outcome(self) -> str:
        reason = f" ({self.run['status_reason']})" if self.run.get("status_reason") else ""
        return f"{self.label} ended {self.status}{reason}"


def counts(stage: dict[str, Any]) -> list[tuple[str, int, str]]:
    by_status = stage.get("target_run_counts") or {}
    return [(label, sum(int(by_status.get(s, 0)) for s in statuses), style)
            for label, statuses, style in SEGMENTS]


def bar(stage: dict[str, Any], width: int = BAR_WIDTH) -> Text:
    parts = counts(stage)
    total = sum(n for _, n, _ in parts)
    text = Text()
    if total == 0:
        return text.append("·" * width, style="grey50")
    used = 0
    for index, (_, n, style) in enumerate(parts):
        cells = round(width * (used + n) / total) - round(width * used / total)
        used += n
        text.append(("█" if index == 0 else "▇") * cells if n else "", style=style)
    return text


def tally(stage: dict[str, Any]) -> str:
    parts = counts(stage)
    total = sum(n for _, n, _ in parts)
    if total == 0:
        return "no target runs yet"
    shown = [f"{n} {label}" for label, n, _ in parts if n and label != "success"]
    done = dict((label, n) for label, n, _ in parts)["success"]
    return f"{done}/{total} success" + (", " + ", ".join(shown) if shown else "")


def render(view: RunView) -> RenderableType:
    """The live view for a terminal."""
    style = STATUS_STYLES.get(view.status, "")
    head = Text.assemble((view.label, "bold"), "  ", (view.status, style),
                         f"   started {when(view.run.get('started_at'))}")
    grid = Table(box=None, show_header=False, pad_edge=False)
    for _ in range(5):
        grid.add_column()
    gate = view.waiting()
    for stage in view.stages:
        mark = ""
        if gate is not None and gate.stage is not None and gate.stage["id"] == stage["id"]:
            mark = "  ◀ gate"
        status = stage["status"]
        grid.add_row(f"{stage['order']}. {stage['stage_name']}", stage.get("trigger", ""),
                     Text(status, style=STATUS_STYLES.get(status, "")), bar(stage),
                     tally(stage) + mark)
    lines: list[RenderableType] = [head, grid]
    hint = view.hint()
    if hint:
        lines.append(Text.assemble((f"{hint[0]}:\n", "cyan"), "  ", (hint[1], "bold")))
    if view.ended:
        lines.append(Text(view.outcome(), style=style or "bold"))
    return Group(*lines)


def plain_lines(view: RunView) -> list[str]:
    """The same facts as lines, for output that is not a terminal: a line per stage, then why
    it waits; the caller prints the lines that changed."""
    lines = [f"{view.label} {view.status}"]
    for stage in view.stages:
        lines.append(f"{view.label} stage {stage['order']} {stage['stage_name']}: "
                     f"{stage['status']}, {tally(stage)}")
    hint = view.hint()
    if hint:
        lines.append(f"{view.label} {hint[0]}: {hint[1]}")
    return lines
