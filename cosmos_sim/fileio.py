"""Atomic writes: a temp file beside the target, fsync, then `os.replace`, so readers never see half a file.

`mkstemp` creates its file 0600 whatever the umask; `publish` gives it the permissions a plain `open`
would (0666 less the umask) before moving it into place, so shared datasets and models stay readable.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def default_mode() -> int:
    """0666 less the process umask: what `open(path, "w")` would create."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Move a finished temp file into place with a normal file's permissions."""
    os.chmod(tmp, default_mode())
    os.replace(tmp, path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    return atomic_write_bytes(path, (json.dumps(obj, indent=indent, default=str) + "\n").encode())


def read_json_file(path: Path, missing: str, what: str = "JSON") -> Any:
    """The JSON in `path`: a missing file is a DatasetError saying `missing`, unreadable JSON a CorruptDataError
    naming the file and `what` it should have been."""
    from cosmos_sim.errors import CorruptDataError, DatasetError

    if not path.is_file():
        raise DatasetError(missing)
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise CorruptDataError(f"{path}: unreadable {what} ({e})") from None


def update_results(path: str | os.PathLike, section: str, key: str, value: Any, device: str = "cpu") -> dict:
    """Put one entry into a benchmark's results file: `file[section][key] = value`, with the machine beside it.

    The file is read again just before writing (another run of the same benchmark may have added entries since
    this one started) and written atomically (a killed run leaves the last whole file). Returns the results.
    """
    import platform

    path = Path(path)
    results = json.loads(path.read_text()) if path.is_file() else {}
    results.setdefault(section, {})[key] = value
    results["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(), "device": device}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, results, indent=1)
    return results
