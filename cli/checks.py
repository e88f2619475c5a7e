"""`fleetpipe worker --check`: can a worker run here? The store must be at head and Temporal
must answer. The compose file's worker healthcheck runs it; it starts no worker."""

from __future__ import annotations

from cli import dev_stack
from settings import Settings
from store.db import make_engine
from store.migrations import StoreNotAtHead, require_head


def worker_unready(settings: Settings) -> str | None:
    """Why a worker could not run with these settings, or None when it could."""
    engine = make_engine(settings.resolved_database_url())
    try:
        require_head(engine)
    except StoreNotAtHead as exc:
        return str(exc)
    except Exception as exc:  # unreachable, refused, bad credentials: say which store
        where = engine.url.render_as_string(hide_password=True)
        return f"the store at {where} does not answer: {exc}"
    finally:
        engine.dispose()
    if not dev_stack.temporal_answers(settings.temporal_address, settings.temporal_namespace):
        return (f"Temporal does not answer at {settings.temporal_address} "
                f"(namespace {settings.temporal_namespace!r})")
    return None
