"""The claim's rules as SQL fragments, each written once, for the statements of claim.py, submit.py and reads.py.

Each fragment is a condition on a task row under the alias `t`; its parameters are listed in
its docstring, in the order they appear.
"""

from .names import sql


def has_room(*, others_only: bool) -> str:
    """The capacity rule: the task can take one more label while done + live leases < required.

    Parameters: now; with `others_only`, then the labeler, whose own lease does not count (the
    lease statement renews it in place, and the heartbeat extends it). An expired lease counts for
    nothing, so no reaper is needed.
    """
    others = " AND l.{lease.labeler} <> %s" if others_only else ""
    return sql(
        "t.{task.done} + (SELECT COUNT(*) FROM {lease} l WHERE l.{lease.task} = t.{task.id}"
        " AND l.{lease.expires_at} > %s" + others + ") < t.{task.required}"
    )


# Parameter: the labeler. Annotated or skipped: a labeler gets each task at most once.
NOT_DONE_BY = sql(
    "NOT EXISTS (SELECT 1 FROM {annotation} a WHERE a.{annotation.task} = t.{task.id} AND a.{annotation.labeler} = %s)"
)


def authored_by(task: str = "t.{task.id}") -> str:
    """Whether the labeler wrote one of the responses the task shows; a labeler never judges their own.

    Parameter: the labeler (after the task's, when `task` is a parameter "%s"). One probe of the
    task's shown responses, which are few.
    """
    return sql(
        "EXISTS (\n"
        "    SELECT 1 FROM {taskresponse} tr JOIN {response} r ON r.{response.id} = tr.{taskresponse.response}\n"
        "    WHERE tr.{taskresponse.task} = " + task + " AND r.{response.author} = %s\n"
        "  )"
    )


# Parameter: the labeler.
NONE_AUTHORED_BY = "NOT " + authored_by()

# Parameter: the labeler. A gold task is served to each labeler at most once: any lease of theirs,
# live or expired, means it was served.
NEVER_SERVED_TO = sql(
    "NOT EXISTS (SELECT 1 FROM {lease} l WHERE l.{lease.task} = t.{task.id} AND l.{lease.labeler} = %s)"
)

# Parameter: the kind. The claim's optional filter on the kind of task.
KIND_IS = sql("AND t.{task.kind} = %s")


def not_in(count: int) -> str:
    """Parameters: `count` task ids the caller skips (their row was locked, or full by the time of the lease)."""
    return sql("AND t.{task.id} NOT IN ({marks})", marks=", ".join(["%s"] * count))


# The claim's order: the highest priority first, then the oldest. The claim indexes follow it.
CLAIM_ORDER = sql("t.{task.priority} DESC, t.{task.id} ASC")
