"""Active sampling lives in the loop wing now (loop/active_sampling.py).

This name is kept only for annotation's settings page, which schedules a scoring through it; once
annotation imports loop.active_sampling itself, this module goes (.importlinter names the import).
"""

from loop.active_sampling import active_sampling_schedule  # noqa: F401
