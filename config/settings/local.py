"""Laptop defaults: SQLite and the filesystem broker under var/, debug on."""

from .base import *  # noqa: F401,F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
