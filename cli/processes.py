"""Child processes of the dev stack: start them, notice one dying, stop them all in order."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path | None = None
    log_file: IO[bytes] | None = field(default=None, repr=False)

    def log_tail(self, lines: int = 20) -> str:
        """The end of the child's log file, for the message when it dies."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


class ChildDied(RuntimeError):
    def __init__(self, child: Child) -> None:
        code = child.popen.returncode
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        where = f"; log: {child.log_path}" if child.log_path else "; its output is above"
        super().__init__(f"{child.name} stopped unexpectedly ({how}{where})")
        self.child = child


def _die_with_parent() -> None:
    # Children run in their own session (so a terminal Ctrl-C reaches only the supervisor, which
    # stops them in order); this makes Linux stop them too if the supervisor is killed outright.
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class Supervisor:
    """Starts children in order and stops them in reverse order: terminate, wait, kill."""

    def __init__(self, stop_timeout: float = 20.0) -> None:
        self.stop_timeout = stop_timeout
        self.children: list[Child] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        log_path: Path | None = None,
    ) -> Child:
        log_file = log_path.open("ab") if log_path else None
        popen = subprocess.Popen(
            list(argv),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,  # None: inherit the terminal
            stderr=subprocess.STDOUT if log_file else None,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        child = Child(name=name, popen=popen, log_path=log_path, log_file=log_file)
        self.children.append(child)
        return child

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if c.popen.poll() is not None), None)

    def check_alive(self) -> None:
        dead = self.first_exited()
        if dead is not None:
            raise ChildDied(dead)

    def stop_all(self) -> list[str]:
        """Stops every child, newest first. Returns warnings (children that had to be killed)."""
        warnings: list[str] = []
        for child in reversed(self.children):
            warning = stop_child(child, self.stop_timeout)
            if warning:
                warnings.append(warning)
        self.children.clear()
        return warnings


def stop_child(child: Child, timeout: float) -> str | None:
    popen = child.popen
    try:
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill_group(popen)
                popen.wait()
                return f"{child.name} did not stop within {timeout:g}s and was killed"
        return None
    finally:
        if child.log_file:
            child.log_file.close()


def _kill_group(popen: subprocess.Popen[bytes]) -> None:
    # The child leads its own process group; kill anything it started as well.
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
