"""config.postgresql: a reused connection is health-checked only after it sat idle (see its docstring)."""

import time

import psycopg2
import pytest
from django.db import DEFAULT_DB_ALIAS, connections

from config.postgresql import base as backend

pytestmark = pytest.mark.django_db
connection = connections[DEFAULT_DB_ALIAS]  # the wrapper itself, not the thread-local proxy
on_postgresql = connection.vendor == "postgresql"


def checks_made(monkeypatch) -> list:
    made = []
    monkeypatch.setattr(connection, "is_usable", lambda: made.append(1) or True)
    monkeypatch.setattr(connection, "health_check_enabled", True)
    return made


def new_request() -> None:
    connection.health_check_done = False  # what close_old_connections does when a request starts


def test_the_platform_runs_on_this_backend_on_postgresql():
    if connection.vendor != "postgresql":  # SQLite (the demo) has no health checks to skip
        assert connection.settings_dict["ENGINE"] == "django.db.backends.sqlite3"
        return
    assert isinstance(connection, backend.DatabaseWrapper)
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


@pytest.mark.skipif(not on_postgresql, reason="SQLite has no health checks; CI runs these on PostgreSQL")
def test_a_busy_connection_is_not_pinged_an_idle_one_is(monkeypatch):
    with connection.cursor() as cursor:  # the connection is open and was just used
        cursor.execute("SELECT 1")
    made = checks_made(monkeypatch)

    new_request()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 2")
    assert made == []  # used a moment ago: no SELECT 1 first

    connection.last_used = time.monotonic() - backend.IDLE_SECONDS - 1
    new_request()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 3")
        assert cursor.fetchone() == (3,)
    assert made == [1]  # idle: checked once, before the request's first statement


@pytest.mark.skipif(not on_postgresql, reason="SQLite has no health checks; CI runs these on PostgreSQL")
@pytest.mark.django_db(transaction=True)  # no test transaction around it: the connection may really close
def test_an_idle_connection_that_died_is_replaced(monkeypatch):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        old_pid = cursor.fetchone()[0]
    old = connection.connection
    monkeypatch.setattr(connection, "health_check_enabled", True)
    # The server ends the session while the connection sits idle, as a restart would.
    admin = psycopg2.connect(**connection.get_connection_params())
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [old_pid])
    admin.close()
    connection.last_used = time.monotonic() - backend.IDLE_SECONDS - 1
    new_request()
    with connection.cursor() as cursor:  # the check finds it dead and connects anew
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != old_pid
    assert old.closed
