"""The running `make run`'s settings in instance/devstack.json, so a second terminal's CLI finds them.

`make run` writes the settings it gave its own processes (the embedded Redis, the database, the
development provider, the secret key) to instance/devstack.json, mode 0600, holds an exclusive lock on
the file for as long as it runs, and deletes the file when it stops. A `flask --app app …` command run
in the same folder uses the file only when all of these hold:

- GATEHOUSE_ENV is unset or `development` (production and testing read the environment, as always);
- the environment sets none of the settings the file holds (if it sets any, the environment is in
  charge of all of them: two configurations are never mixed);
- the file is a regular file of this user's that no other user can read (it holds the secret key);
- its lock is held, i.e. the `make run` that wrote it is still running. A file left by a run that was
  killed is not used, and a command that then lacks settings says why. Checking the lock never waits.

Nothing here reads the environment or touches a file at import.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

RELATIVE_PATH = Path("instance") / "devstack.json"
# What `make run` decides for its processes; a CLI beside it needs exactly these.
SETTINGS = (
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "QUEUE_REDIS_URL",
    "OIDC_ISSUER",
    "OIDC_CLIENT_ID",
    "OIDC_CLIENT_SECRET",
    "API_BASE_URL",
    "PUBLIC_URL",
)
# A real file is a few hundred bytes; anything far larger is not ours.
MAX_BYTES = 64 * 1024


class AlreadyRunning(RuntimeError):
    """Another `make run` holds this folder's settings file."""


@dataclass
class PublishedSettings:
    """The settings file of this `make run`, locked until `remove`."""

    path: Path
    fd: int

    def remove(self) -> None:
        """Delete the file (if it is still ours) and release its lock."""
        try:
            if os.stat(self.path).st_ino == os.fstat(self.fd).st_ino:
                self.path.unlink()
        except FileNotFoundError:
            pass
        finally:
            os.close(self.fd)


def publish(folder: Path, environ: Mapping[str, str]) -> PublishedSettings:
    """Write `environ`'s values of SETTINGS to folder/instance/devstack.json (0600) and hold its lock."""
    path = folder / RELATIVE_PATH
    if is_held(path):
        raise AlreadyRunning(f"another `make run` is running from {folder} (it holds {path}); stop it first")
    values = {name: environ[name] for name in SETTINGS if environ.get(name)}
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    # Created 0600 from the start: the secret key is never readable by others, not even for a moment.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, json.dumps(values, indent=2).encode() + b"\n")
        os.fsync(fd)
        # Held by this process only (the descriptor is not inherited), released when it exits, however.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(temporary, path)
    except BaseException:
        os.close(fd)
        temporary.unlink(missing_ok=True)
        raise
    return PublishedSettings(path, fd)


def is_held(path: Path) -> bool:
    """True if a running `make run` holds the lock on `path` (False if there is no such file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return _is_locked(fd)
    finally:
        os.close(fd)


def _is_locked(fd: int) -> bool:
    """Try a shared lock without waiting: it fails exactly while a `make run` holds its exclusive one."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


@dataclass
class FoundSettings:
    """What a CLI command takes from the settings file.

    `environ` is the environment to configure the app from; `problems` make the command fail even if
    the settings are otherwise complete; `hints` explain a failure, if there is one.
    """

    environ: Mapping[str, str]
    problems: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)


def running_settings(environ: Mapping[str, str], folder: Path) -> FoundSettings | None:
    """The environment for a CLI command run in `folder`: `environ`, plus the running `make run`'s settings.

    None when the file does not concern this command (production or testing, or an environment that
    configures the app itself and no file to mention).
    """
    if environ.get("GATEHOUSE_ENV", "") not in ("", "development"):
        return None
    path = folder / RELATIVE_PATH
    set_here = [name for name in SETTINGS if environ.get(name)]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        if set_here:
            return None
        hint = f"no `make run` is running in {folder} (there is no {RELATIVE_PATH}): start it, or set these settings"
        return FoundSettings(environ, hints=[hint])
    except OSError as error:
        return FoundSettings(environ, problems=[f"{path} cannot be opened ({error.strerror}); it is not used"])
    try:
        if set_here:
            why = f"the environment sets {', '.join(set_here)}; set every setting there, or unset those"
            return FoundSettings(environ, hints=[f"{path} (the running `make run`'s settings) was not used: {why}"])
        return _read(fd, path, environ)
    finally:
        os.close(fd)


def _read(fd: int, path: Path, environ: Mapping[str, str]) -> FoundSettings:
    """Check the open file and, if it is sound and its `make run` is running, add its settings."""
    problems = _unsafe(os.fstat(fd), path)
    if problems:
        return FoundSettings(environ, problems=problems)
    if not _is_locked(fd):
        hint = f"{path} is left from a `make run` that is no longer running, so it was not used: start `make run` again"
        return FoundSettings(environ, hints=[hint])
    with os.fdopen(os.dup(fd), "rb") as file:
        raw = file.read(MAX_BYTES + 1)
    values, problems = _parse(raw, path)
    if problems:
        return FoundSettings(environ, problems=problems)
    source = f"(the settings above came from {path}, written by the running `make run`)"
    return FoundSettings({**environ, **values, "GATEHOUSE_ENV": "development"}, hints=[source])


def _unsafe(status: os.stat_result, path: Path) -> list[str]:
    """Why the file must not be trusted: not a regular file, someone else's, or readable by others."""
    if not stat.S_ISREG(status.st_mode):
        return [f"{path} is not a regular file; it is not used"]
    if status.st_uid != os.getuid():
        return [f"{path} belongs to another user; it is not used (remove it; `make run` writes a new one)"]
    if status.st_mode & 0o077:
        mode = oct(stat.S_IMODE(status.st_mode))
        return [
            f"{path} can be read or changed by other users (mode {mode}) and holds the secret key, so it is "
            "not used: remove it and restart `make run` (which writes it with mode 0o600)"
        ]
    return []


def _parse(raw: bytes, path: Path) -> tuple[dict[str, str], list[str]]:
    """The file's settings, or the problems that make it unusable."""
    if len(raw) > MAX_BYTES:
        return {}, [f"{path} is larger than {MAX_BYTES} bytes; it is not used"]
    try:
        values = json.loads(raw)
    except ValueError:
        return {}, [f"{path} is not valid JSON; it is not used (restart `make run` to write it again)"]
    if not isinstance(values, dict):
        return {}, [f"{path} must hold a JSON object; it is not used"]
    problems = [f"{path}: {name!r} is not a setting it may hold" for name in values if name not in SETTINGS]
    problems += [
        f"{path}: {name} must be a non-empty string"
        for name, value in values.items()
        if name in SETTINGS and (not isinstance(value, str) or not value)
    ]
    return ({}, problems) if problems else (values, [])
