"""`--set name=value` for the simulations' dataclass settings (the full loop's and the population's)."""

from __future__ import annotations

import dataclasses
import json


def settings_with_overrides(config, *, small: dict | None = None, overrides: list[str] | None = None, what: str):
    """`config` with the --small values, then each `name=value` (JSON when it parses, else text) applied.

    A dict setting takes `name.key=value`. ValueError names what is wrong: the item, an unknown
    setting (with the known ones), or a key on a setting that is not a dict.
    """
    for name, value in (small or {}).items():
        setattr(config, name, json.loads(json.dumps(value)))  # a copy: the defaults stay as they are
    known = [f.name for f in dataclasses.fields(config)]
    for item in overrides or []:
        name, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--set takes name=value, not {item!r}.")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        head, _, sub = name.strip().partition(".")
        if head not in known:
            raise ValueError(f"Unknown {what} setting {head!r}; one of {', '.join(known)}.")
        if sub:
            target = getattr(config, head)
            if not isinstance(target, dict):
                raise ValueError(f"{head} is not a dict of settings; set it as {head}=value.")
            target[sub] = value
        else:
            setattr(config, head, value)
    return config
