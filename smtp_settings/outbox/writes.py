"""A drain's per-message write, its SQL made before the transaction begins.

On SQLite a write transaction holds the one database lock from BEGIN to COMMIT, and another
worker that finds it held sleeps a millisecond or more. Building the ORM's statements inside
the transaction held the lock about half a millisecond per message, most of it Python; made
beforehand, the transaction runs SQL only (about a tenth of that).

On PostgreSQL the commit does not wait for the disk (``synchronous_commit`` off for this
transaction only: 0.14 ms instead of 0.8 here). A worker killed after it loses nothing: the
server has the commit. Only a crash of the database server itself can forget the last
fraction of a second of sent marks, and those messages are then sent again, never lost: the
same trade as SQLite's ``synchronous=NORMAL`` in settings.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.db.models import Model, QuerySet
from django.db.models.sql import InsertQuery, UpdateQuery

Statement = tuple[str, Any]


def update(queryset: QuerySet[Any], **values: Any) -> Statement:
    """The SQL of ``queryset.update(**values)``."""
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(values)
    return query.get_compiler(queryset.db).as_sql()


def insert(row: Model) -> list[Statement]:
    """The SQL of saving a new ``row`` (fields' own defaults, such as auto_now_add, applied)."""
    fields = [field for field in row._meta.local_concrete_fields if not field.primary_key]
    query = InsertQuery(type(row))
    query.insert_values(fields, [row])
    return query.get_compiler(connection=connection).as_sql()


def run_atomically(statements: list[Statement]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        for sql, params in statements:
            cursor.execute(sql, params)
