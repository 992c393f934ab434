"""PostgreSQL, checking a reused connection's health only after the connection sat idle.

With CONN_HEALTH_CHECKS, Django sends SELECT 1 before the first statement of every request that
reuses a persistent connection: on the labeler API that is two more round trips per label, and
bench/labeling.py measured 148-159 labels/s with it against 179-194 without. A connection that
ran a statement a few seconds ago is almost surely alive; should the server have gone away since,
the failing statement marks the connection and Django drops it at the end of that request, as it
does with no check at all (the labeling page keeps the draft, and a retry with the same client_id
stores it once). So the check runs only when the connection has been unused for IDLE_SECONDS:
after a quiet spell, when a server restart or an idle timeout may have closed it unseen.
"""

import time

from django.db.backends.postgresql import base

IDLE_SECONDS = 10.0


class DatabaseWrapper(base.DatabaseWrapper):
    last_used = float("-inf")  # monotonic time of the last cursor handed out

    def create_cursor(self, name=None):
        self.last_used = time.monotonic()
        return super().create_cursor(name)

    def close_if_health_check_failed(self):
        if self.connection is not None and time.monotonic() - self.last_used < IDLE_SECONDS:
            self.health_check_done = True  # busy a moment ago: alive
            return
        super().close_if_health_check_failed()
