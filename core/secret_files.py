"""Read settings from secret files, as Docker and Kubernetes hand them out.

With ``RIPOSTE_SECRETS_DIR`` set, a file there named like the setting's variable, in any case
(``riposte_database_password``), gives its value (surrounding blanks and newlines dropped; an
empty file leaves the setting unset). This is pydantic-settings' ``secrets_dir`` convention,
read here so that a setting given both as a variable and as a file stops Riposte instead of
one of them winning silently, and a misnamed file is reported like a misnamed variable.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from core.setting_variables import ENV_PREFIX, variable


def read_secret_files(
    directory: Path, given: set[str], values: dict[str, str], files: dict[str, Path],
    unknown_files: list[Path], *, known: Collection[str],
) -> list[str]:
    """Read the settings the files in ``directory`` give into ``values`` (by setting, with
    ``files`` saying where each came from; ``known``: the settings' names); return the
    problems that stop Riposte."""
    if not directory.is_dir():
        why = "is not a directory" if directory.exists() else "does not exist"
        return [f"{variable('secrets_dir')}: {directory} {why}"]
    problems: list[str] = []
    for path in sorted(directory.iterdir()):
        name = path.name.upper()
        if not name.startswith(ENV_PREFIX) or not path.is_file():
            continue  # the other secrets of the container (a database's password, a key file)
        setting = name.removeprefix(ENV_PREFIX).lower()
        if setting not in known or setting == "secrets_dir":
            unknown_files.append(path)
            continue
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = (exc.strerror or str(exc)) if isinstance(exc, OSError) else "not UTF-8 text"
            problems.append(f"{name}: cannot read the secret file {path}: {why}")
            continue
        if not value:
            continue  # an empty file is a secret not configured: the setting stays unset
        if name in given:
            problems.append(f"{name} is given twice, as a variable and as the secret file "
                            f"{path}: remove one of them")
            continue
        values[setting], files[setting] = value, path
    return problems
