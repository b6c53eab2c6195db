"""Where InfluxDB credentials come from; never from `pipetune.conf` in plain text.

Order, first match wins:

1. an explicit file path (e.g. given on the command line);
2. the environment variables `PIPETUNE_INFLUX_USER` and `PIPETUNE_INFLUX_PASSWORD` (both or
   neither);
3. the file named by `PIPETUNE_INFLUX_CREDENTIALS`;
4. nobody: anonymous access (InfluxDB 1.x has authentication disabled by default).

A credentials file is either JSON (`{"user": "...", "password": "..."}`) or one line
`user:password` (the password may contain colons). A file that other users can read or write
is refused (`chmod 600 FILE`), like ssh refuses a private key anyone can read.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipetune.errors import PipeTuneError

USER_VAR = "PIPETUNE_INFLUX_USER"
PASSWORD_VAR = "PIPETUNE_INFLUX_PASSWORD"
FILE_VAR = "PIPETUNE_INFLUX_CREDENTIALS"


class CredentialsError(PipeTuneError):
    """Credentials were configured but cannot be used (half set, unreadable, too open)."""

    exit_code = 2


@dataclass(frozen=True)
class Credentials:
    """A user and password for InfluxDB, or neither (anonymous). The password never prints."""

    user: str | None = None
    password: str | None = field(default=None, repr=False)
    source: str = "anonymous"

    @property
    def anonymous(self) -> bool:
        return self.user is None


ANONYMOUS = Credentials()


def load_credentials(
    path: Path | None = None, environ: Mapping[str, str] | None = None
) -> Credentials:
    """The credentials to use, from `path`, the environment, or nobody (see the module doc)."""
    env = os.environ if environ is None else environ
    if path is not None:
        return read_credentials_file(path)
    user, password = env.get(USER_VAR), env.get(PASSWORD_VAR)
    if user is not None or password is not None:
        if not user or password is None:
            missing = PASSWORD_VAR if password is None else f"{USER_VAR} (empty or unset)"
            raise CredentialsError(
                f"{USER_VAR} and {PASSWORD_VAR} must be set together; missing: {missing}"
            )
        return Credentials(user, password, source=f"environment ({USER_VAR})")
    file_name = env.get(FILE_VAR)
    if file_name:
        return read_credentials_file(Path(file_name))
    return ANONYMOUS


def read_credentials_file(path: Path) -> Credentials:
    """Parse a JSON or `user:password` file; refuse one that other users may read or write."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CredentialsError(f"cannot read InfluxDB credentials file {path}: {e}") from e
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        raise CredentialsError(
            f"InfluxDB credentials file {path} is accessible by other users "
            f"(mode {stat.filemode(mode)}); run `chmod 600 {path}`"
        )
    user, password = _parse(text.strip(), path)
    if not user:
        raise CredentialsError(f"InfluxDB credentials file {path}: the user is empty")
    return Credentials(user, password, source=f"file {path}")


def _parse(text: str, path: Path) -> tuple[str, str]:
    if text.startswith("{"):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise CredentialsError(f"InfluxDB credentials file {path}: invalid JSON: {e}") from e
        user = raw.get("user", raw.get("username"))
        password = raw.get("password")
        if not isinstance(user, str) or not isinstance(password, str):
            raise CredentialsError(
                f"InfluxDB credentials file {path}: expected "
                '{"user": "<string>", "password": "<string>"}'
            )
        return user, password
    if "\n" in text or ":" not in text:
        raise CredentialsError(
            f"InfluxDB credentials file {path}: expected one line `user:password` or JSON"
        )
    user, _, password = text.partition(":")
    return user, password
