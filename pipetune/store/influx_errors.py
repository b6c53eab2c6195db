"""The InfluxDB store's errors, and the translation of the client's failures into them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pipetune.errors import PipeTuneError
from pipetune.store.influx_protocol import server_message


class InfluxStoreError(PipeTuneError):
    """The InfluxDB store could not do what was asked."""


class PointsRejected(InfluxStoreError):
    """Points that InfluxDB cannot or will not store; they are not retried."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        shown = self.problems[:10]
        more = len(self.problems) - len(shown)
        lines = [f"InfluxDB store: {len(self.problems)} problem(s) with points:"]
        lines += [f"  - {p}" for p in shown] + ([f"  - … and {more} more"] if more else [])
        super().__init__("\n".join(lines))


class InfluxAuthError(InfluxStoreError):
    """The server refused the credentials (see pipetune/store/credentials.py)."""

    exit_code = 2


class StoreUnavailable(InfluxStoreError):
    """The server cannot be reached, so a query cannot be answered."""


class Unreachable(Exception):
    """The store's own: refused connection, timeout or 5xx; the batch belongs in the spool."""


@contextmanager
def translated(location: str) -> Iterator[None]:
    """Turn the client's transport failures into `Unreachable` and 401s into `InfluxAuthError`."""
    import requests
    from influxdb.exceptions import InfluxDBClientError, InfluxDBServerError

    try:
        yield
    except requests.exceptions.RequestException as e:
        raise Unreachable(f"{type(e).__name__}: {e}") from None
    except InfluxDBServerError as e:
        raise Unreachable(f"server error: {server_message(e)}") from None
    except InfluxDBClientError as e:
        if e.code != 401:
            raise
        raise auth_error(location, e) from None


def auth_error(location: str, e: Any) -> InfluxAuthError:
    return InfluxAuthError(
        f"InfluxDB at {location} refused the credentials ({e.code}: {server_message(e)}); "
        "set PIPETUNE_INFLUX_USER and PIPETUNE_INFLUX_PASSWORD, or PIPETUNE_INFLUX_CREDENTIALS"
    )
