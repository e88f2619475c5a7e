"""`python -m api.serve` (what `fleetpipe api` and the dev stack run): uvicorn serving
`api.app:app` on FLEETPIPE_API_HOST:FLEETPIPE_API_PORT, every log line in FLEETPIPE_LOG_FORMAT
from the first (uvicorn's own logging setup is skipped)."""

from __future__ import annotations

import uvicorn

from observability.logs import configure_logging
from settings import get_settings


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_format)
    uvicorn.run("api.app:app", host=settings.api_host, port=settings.api_port, log_config=None,
                # An open event stream must not hold Ctrl-C up for long.
                timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
