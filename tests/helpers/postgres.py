"""A throwaway database on the local PostgreSQL server (DEVELOPERS.md: 127.0.0.1:5432, trust
auth), shared by every test that needs a real multi-process store."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

POSTGRES_ENV = "PML_OPS_TEST_POSTGRES"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database, dropped (with its connections) afterwards; yields its URL.

    Skips the test when the server is unreachable, except under CI, where that is a failure."""
    psycopg2 = pytest.importorskip("psycopg2")
    from psycopg2 import sql

    admin_url = os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES
    name = f"pml_ops_test_{uuid.uuid4().hex[:12]}"

    def as_admin(statement: str) -> None:  # a short connection: none is held during the test
        admin = psycopg2.connect(admin_url, connect_timeout=5)
        try:
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute(sql.SQL(statement).format(sql.Identifier(name)))
        finally:
            admin.close()

    try:
        as_admin("CREATE DATABASE {}")
    except psycopg2.OperationalError as error:
        message = f"PostgreSQL not reachable at {admin_url} (set {POSTGRES_ENV}): {error}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        as_admin("DROP DATABASE IF EXISTS {} WITH (FORCE)")
