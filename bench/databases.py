"""The store a bench runs on: a fresh SQLite file, or a fresh schema of its own in PostgreSQL.

`fresh_store(database, work)` yields the URL every process of the bench is given as
`FLEETPIPE_DATABASE_URL`. For PostgreSQL it creates a schema `bench_<random>` and puts it first
on the search path through the URL's `options` (so the worker, the API and the migrations all
land in it without any setting of ours), and drops it with everything in it afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from store.db import make_engine


def describe(database: str) -> str:
    """What the figures call the store: `sqlite` or `postgresql`."""
    return "postgresql" if database.startswith("postgresql") else "sqlite"


@contextmanager
def fresh_store(database: str, work: Path) -> Iterator[str]:
    """An empty store's URL (the bench runs the migrations on it): `database` is "" for a fresh
    SQLite file in `work`, or a PostgreSQL URL whose database the bench may create schemas in."""
    if not database:
        yield f"sqlite:///{work / 'fleetpipe.db'}"
        return
    if describe(database) != "postgresql":
        raise SystemExit(f"--database {database!r}: give a postgresql:// URL, or leave it out "
                         "for a fresh SQLite file")
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = make_engine(database)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        raise SystemExit(f"PostgreSQL at {database} is not reachable ({exc.orig}); start it "
                         "or pass another --database") from None
    try:
        yield with_search_path(database, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def with_search_path(database: str, schema: str) -> str:
    """The URL with `schema` first on its search path (other libpq options are kept)."""
    url = make_url(database)
    options = url.query.get("options", "")
    if isinstance(options, tuple):
        options = " ".join(options)
    url = url.update_query_dict({"options": f"{options} -csearch_path={schema}".strip()})
    return url.render_as_string(hide_password=False)
