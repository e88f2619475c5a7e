"""Where the API is, with which key, and every call to it: one line of error an operator can act
on (the API unreachable, the key refused, the server's own message) instead of a traceback."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

DEFAULT_API_URL = "http://127.0.0.1:8000"
API_URL_ENV = "FLEETPIPE_API_URL"
TOKEN_ENV = "FLEETPIPE_TOKEN"
BASE = "/api/pipelines/v0"
PAGE = 1000  # the API's largest page


class CliError(Exception):
    """A refusal to show as one line (`fleetpipe: ...`), with the exit code to leave with."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ApiError(CliError):
    """The API answered with an error envelope."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def config_path() -> Path:
    root = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(root) / "fleetpipe" / "config.toml"


@dataclass(frozen=True)
class Target:
    """The API to talk to: flag, else environment, else the config file, else the default."""

    url: str
    token: str | None

    @classmethod
    def resolve(cls, api_url: str | None, token: str | None) -> Target:
        config = _read_config(config_path())
        url = api_url or os.environ.get(API_URL_ENV) or config.get("api_url") or DEFAULT_API_URL
        key = token or os.environ.get(TOKEN_ENV) or config.get("token")
        return cls(url=str(url).rstrip("/"), token=str(key) if key else None)


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from exc


class Api:
    """A synchronous client of the v0 API that unwraps the envelope of every answer."""

    def __init__(self, target: Target, *, timeout: float = 30.0) -> None:
        if not target.token:
            raise CliError(f"no API key: set {TOKEN_ENV}, pass --token, or put `token = \"...\"` "
                           f"in {config_path()}")
        self.target = target
        self.http = httpx.Client(
            base_url=target.url + BASE, timeout=timeout,
            headers={"Authorization": f"Token {target.token}", "User-Agent": "fleetpipe-cli"})

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(self, method: str, path: str, *, json: Any = None,
             params: dict[str, Any] | None = None) -> Any:
        """The content of a successful answer; ApiError (or CliError) otherwise."""
        response = self.send(method, path, json=json, params=params)
        body = _body(response)
        if response.is_success:
            return body.get("content") if isinstance(body, dict) else body
        raise self.refusal(response.status_code, body)

    def send(self, method: str, path: str, *, json: Any = None,
             params: dict[str, Any] | None = None) -> httpx.Response:
        try:
            return self.http.request(method, path, json=json, params=params)
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from exc

    def unreachable(self, exc: Exception) -> CliError:
        reason = str(exc) or type(exc).__name__
        return CliError(f"cannot reach the API at {self.target.url} ({reason}); is it running? "
                        f"Set {API_URL_ENV} or pass --api-url")

    def refusal(self, status: int, body: Any) -> ApiError:
        message = _message(body)
        if status == 401:
            return ApiError(401, f"the API refused the key (401): {message}; set {TOKEN_ENV} or "
                            "pass --token")
        return ApiError(status, f"{message} ({status})")

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def pages(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list, a page of 1000 at a time."""
        offset = 0
        while True:
            content = self.get(path, limit=PAGE, offset=offset, **params)
            results = content["results"]
            yield from results
            offset += len(results)
            if not results or content.get("next") is None:
                return


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"message": response.text.strip()[:300] or response.reason_phrase}


def _message(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("message", "detail"):
            if body.get(key):
                return str(body[key])
    return str(body)
