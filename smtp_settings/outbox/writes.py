"""A drain's per-message write, its SQL made once and only its values adapted per message.

On SQLite a write transaction holds the one database lock from BEGIN to COMMIT, and another
worker that finds it held sleeps a millisecond or more: the transaction runs SQL only. And
the statements are not built by the ORM for each message: compiling two UPDATEs and an
INSERT took about half a millisecond of a worker's CPU per message (measured in a drain of
1,000), more than the database's own work; the text is the same every time, so it is made
once per process and each message adapts its values only.

On PostgreSQL a message's writes are one statement (data-modifying statements chained in a
WITH run all or none): one round trip instead of one per statement plus BEGIN and COMMIT,
and the same text every time, so psycopg prepares it once. The commit waits for the disk as
every commit does: a sent mark the server forgot after its own crash would send a message
twice without anyone counting it.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection, transaction
from django.db.models import Model, QuerySet
from django.db.models.sql import UpdateQuery
from django.utils import timezone

Statement = tuple[str, list[Any]]


class RowUpdate:
    """``UPDATE <table> SET <columns> WHERE <pk> = %s`` for one model and columns. Like
    ``QuerySet.update()``, it leaves ``auto_now`` columns alone."""

    def __init__(self, model: type[Model], *names: str) -> None:
        quote = connection.ops.quote_name
        meta = model._meta
        self.fields = [(name, meta.get_field(name)) for name in names]
        columns = ", ".join(f"{quote(field.column)} = %s" for _, field in self.fields)
        where = f"{quote(meta.pk.column)} = %s"
        # Names from the model, values only as parameters.
        self.sql = f"UPDATE {quote(meta.db_table)} SET {columns} WHERE {where}"  # noqa: S608

    def __call__(self, pk: Any, **values: Any) -> Statement:
        params = [field.get_db_prep_save(values[name], connection) for name, field in self.fields]
        return self.sql, [*params, pk]


class RowInsert:
    """``INSERT INTO <table> (<every column but the key>) VALUES (...)`` for one model; a
    column not given takes its field's default (``auto_now_add``: now)."""

    def __init__(self, model: type[Model]) -> None:
        quote = connection.ops.quote_name
        meta = model._meta
        self.fields = [field for field in meta.local_concrete_fields if not field.primary_key]
        columns = ", ".join(quote(field.column) for field in self.fields)
        marks = ", ".join(["%s"] * len(self.fields))
        self.sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({marks})"  # noqa: S608

    def __call__(self, **values: Any) -> Statement:
        params = []
        for field in self.fields:
            if field.attname in values:
                value = values[field.attname]
            elif getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False):
                value = timezone.now()
            else:
                value = field.get_default()
            params.append(field.get_db_prep_save(value, connection))
        return self.sql, params


def update(queryset: QuerySet[Any], **values: Any) -> Statement:
    """The SQL of ``queryset.update(**values)``, built now (before a transaction begins)."""
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(values)
    sql, params = query.get_compiler(queryset.db).as_sql()
    return sql, list(params)


@functools.cache
def _row_update(model: type[Model], names: tuple[str, ...]) -> RowUpdate:
    return RowUpdate(model, *names)


@functools.cache
def _row_insert(model: type[Model]) -> RowInsert:
    return RowInsert(model)


def update_row(model: type[Model], pk: Any, **values: Any) -> Statement:
    """The SQL of ``model.objects.filter(pk=pk).update(**values)``, its text made once."""
    return _row_update(model, tuple(values))(pk, **values)


def insert_row(model: type[Model], **values: Any) -> Statement:
    """The SQL of ``model.objects.create(**values)`` (without reading the new key back)."""
    return _row_insert(model)(**values)


def run_returning_keys(statement: Statement, model: type[Model]) -> list[Any]:
    """Runs one UPDATE in a transaction of its own and returns the keys of the rows it changed
    (``RETURNING``: SQLite 3.35 and PostgreSQL)."""
    sql, params = statement
    key = connection.ops.quote_name(model._meta.pk.column)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {key}", params)
        return [row[0] for row in cursor.fetchall()]


def run_atomically(statements: list[Statement]) -> None:
    """The statements, all or none."""
    if connection.vendor == "postgresql":
        # One statement, all or none by itself: no BEGIN and COMMIT (two more round trips).
        *first, (last, _) = statements
        chained = ", ".join(f"step{n} AS ({sql})" for n, (sql, _) in enumerate(first))
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH {chained} {last}" if first else last,
                [p for _, ps in statements for p in ps],
            )
        return
    with transaction.atomic(), connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
