"""What every benchmark's `main` does around its run: a throwaway folder, a clean stop on SIGTERM, its duration."""

from __future__ import annotations

import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def benchmark_folder(prefix: str = "gatehouse-bench-") -> Iterator[Path]:
    """A scratch folder for the servers a benchmark starts; says on stderr how long the run took."""
    # A SIGTERM (a CI timeout, a `kill`) unwinds like Ctrl-C, so every server the benchmark started is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        yield Path(folder)
    sys.stdout.flush()  # so this note on stderr lands after the JSON line, not in the middle of it
    print(f"(took {time.monotonic() - started:.0f} s)", file=sys.stderr)
