"""The IN lists of statements built once and run for every batch of a long-lived work horse.

A statement that embeds its IN list's values is built anew for every batch, and for a batch of
one or two jobs building it (SQLAlchemy's coercions, its cache key) costs about as much as running
it. An expanding parameter instead leaves the values to execution time: the statement is built
once (functools.lru_cache beside it) and each batch passes its values, e.g.
`db.session.execute(statement, {"users": [("https://issuer", "alice")]})`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BindParameter, ColumnElement, ColumnExpressionArgument, bindparam, tuple_
from sqlalchemy.orm import InstrumentedAttribute


def pairs_in(
    name: str, first: ColumnExpressionArgument[Any], second: ColumnExpressionArgument[Any]
) -> ColumnElement[bool]:
    """`(first, second) IN :name`, the pairs given at execution (a list of 2-tuples)."""
    pair = tuple_(first, second)
    return pair.in_(bindparam(name, expanding=True, type_=pair.type))


def values_in(name: str, column: ColumnElement[Any] | InstrumentedAttribute[Any]) -> ColumnElement[bool]:
    """`column IN :name`, the values given at execution (a list)."""
    values: BindParameter[Any] = bindparam(name, expanding=True)
    return column.in_(values)
