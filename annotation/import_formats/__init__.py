"""The public formats the import reads besides its own, each in its own module. See docs/import-formats.md.

Each module has NAME (the `format=` value), SOURCE (the external source its labels are credited
to unless the import names another), matches(obj) (does a first object look like this format?)
and read(records) (objects in, base.Item / Rejected / Passed out). The importer
(annotation/importers.py) reads the file, picks the format, and writes what read() yields exactly
as it writes its native lines.
"""

from __future__ import annotations

from types import ModuleType

from . import hh_rlhf, label_studio, oasst, trl, ultrafeedback

# In the order detection tries them: the most specific first (an HH-RLHF row is a TRL pair too).
MODULES: tuple[ModuleType, ...] = (label_studio, oasst, ultrafeedback, hh_rlhf, trl)
BY_NAME: dict[str, ModuleType] = {module.NAME: module for module in MODULES}
NAMES = tuple(BY_NAME)


def detect(obj) -> ModuleType | None:
    """The format a file's first object is in; None for the native format (or anything else)."""
    if isinstance(obj, list):
        return label_studio
    if not isinstance(obj, dict):
        return None
    for module in MODULES:
        if module.matches(obj):
            return module
    return None
