"""What the tests of instance/devstack.json share: `make run`'s settings, its folder, a file nobody holds."""

from __future__ import annotations

from pathlib import Path

from devstack.settings_file import RELATIVE_PATH

DEVSTACK_ENV = {
    "GATEHOUSE_ENV": "development",
    "SECRET_KEY": "a-development-secret-key-of-enough-length",
    "REDIS_URL": "redis://127.0.0.1:6390/0",
    "OIDC_ISSUER": "http://127.0.0.1:9400",
    "OIDC_CLIENT_ID": "gatehouse-dev",
    "OIDC_CLIENT_SECRET": "gatehouse-dev-secret",
    "PATH": "/usr/bin",
}


def make_run_folder(tmp_path: Path) -> Path:
    """A folder like the one `make run` runs in, with its instance/ subfolder."""
    (tmp_path / "instance").mkdir()
    return tmp_path


def write_file(folder: Path, text: str, mode: int = 0o600) -> Path:
    """A settings file that nobody holds (as a killed `make run` leaves it)."""
    path = folder / RELATIVE_PATH
    path.write_text(text)
    path.chmod(mode)
    return path
