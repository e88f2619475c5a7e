"""Checking that the ports the dev stack needs are free before anything is started."""

from __future__ import annotations

import socket


class PortBusy(RuntimeError):
    """A port the stack needs is already taken; the message says which and how to move it."""


def split_address(address: str) -> tuple[str, int]:
    """'host:port' -> (host, port), as the Temporal address setting is written."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected host:port, got {address!r}")
    return host, int(port)


def port_is_free(host: str, port: int) -> bool:
    # Binding (not connecting) tells us whether a server of ours could listen there; SO_REUSEADDR
    # so a socket in TIME_WAIT from the last run does not count as taken.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_free(ports: dict[str, tuple[str, int, str]]) -> None:
    """ports: what -> (host, port, setting to change it). Raises PortBusy naming every clash."""
    busy = [
        f"  {what}: {host}:{port} is already in use (change it with {setting})"
        for what, (host, port, setting) in ports.items()
        if not port_is_free(host, port)
    ]
    if busy:
        raise PortBusy(
            "cannot start the dev stack, ports are taken (another `fleetpipe dev` running?):\n"
            + "\n".join(busy)
        )
