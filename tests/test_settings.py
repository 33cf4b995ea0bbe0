"""Settings: each default written once (on the dataclass), every variable in README's table."""

from __future__ import annotations

import re
from pathlib import Path

from server.config import Settings

README = Path(__file__).resolve().parent.parent / "README.md"


class Reads(dict[str, str]):
    """An empty environment that notes every name asked of it."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.names.add(key)
        return default


def readme_settings() -> set[str]:
    """The variables named in the first column of README's settings table (``_S3_BUCKET`` after
    ``YUNBANG_S3_ENDPOINT`` is short for ``YUNBANG_S3_BUCKET``)."""
    names: set[str] = set()
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `YUNBANG_"):
            first_cell = line.split("|")[1]
            names.update("YUNBANG" + n if n.startswith("_") else n for n in re.findall(r"`([A-Z0-9_]+)`", first_cell))
    return names


def test_an_empty_environment_gives_the_dataclass_defaults() -> None:
    assert Settings.from_env({}) == Settings()


def test_every_setting_read_from_the_environment_is_in_the_readme_table() -> None:
    env = Reads()
    Settings.from_env(env)
    assert env.names, "from_env read nothing through its env"
    documented = readme_settings()
    assert not env.names - documented, f"read but not in README's settings table: {sorted(env.names - documented)}"
    assert not documented - env.names, f"in README's table but never read: {sorted(documented - env.names)}"
