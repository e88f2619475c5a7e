"""The supervisor under `fleetpipe dev`: busy ports, children dying early, stubborn children."""

from __future__ import annotations

import socket
import sys
import time

import pytest

from cli.ports import PortBusy, require_free, split_address
from cli.processes import ChildDied, Supervisor

SLEEPER = "import time; time.sleep(60)"
IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    " print('ready', flush=True); time.sleep(60)"
)


def test_a_taken_port_is_named_with_the_setting_to_change() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortBusy, match=f"API: 127.0.0.1:{port} .*FLEETPIPE_API_PORT"):
            require_free({"API": ("127.0.0.1", port, "FLEETPIPE_API_PORT")})


def test_split_address() -> None:
    assert split_address("127.0.0.1:7233") == ("127.0.0.1", 7233)
    with pytest.raises(ValueError):
        split_address("7233")


def test_a_child_that_exits_is_reported_and_the_rest_stopped() -> None:
    supervisor = Supervisor(stop_timeout=5)
    sleeper = supervisor.start("sleeper", [sys.executable, "-c", SLEEPER])
    supervisor.start("quitter", [sys.executable, "-c", "raise SystemExit(3)"])
    deadline = time.monotonic() + 30  # a hang guard
    with pytest.raises(ChildDied, match=r"quitter stopped unexpectedly \(exit code 3"):
        while time.monotonic() < deadline:
            supervisor.check_alive()
            time.sleep(0.05)
    assert supervisor.stop_all() == []
    assert sleeper.popen.returncode is not None


def test_a_child_ignoring_sigterm_is_killed_after_the_timeout(tmp_path) -> None:
    supervisor = Supervisor(stop_timeout=0.5)
    log = tmp_path / "stubborn.log"
    child = supervisor.start("stubborn", [sys.executable, "-c", IGNORES_SIGTERM], log_path=log)
    deadline = time.monotonic() + 30  # a hang guard
    while "ready" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert supervisor.stop_all() == ["stubborn did not stop within 0.5s and was killed"]
    assert child.popen.returncode is not None
