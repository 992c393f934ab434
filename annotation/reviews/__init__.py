"""Review: reviewers check a share of each labeler's work, and every flagged annotation.

- sampling.py: what gets reviewed (the per-labeler draw at submit, and `review_items_enqueue`
  for flagged annotations). Writes.
- claiming.py: the review claim's SQL (leases, SKIP LOCKED), as annotation/sql/claim.py does it
  for labelers.
- services.py: claim the next review, and store a verdict (accept, reject with a comment, or
  correct), idempotent on the client's id.
- selectors.py: what a reviewer sees of an item, the reviews of a labeler's work, and the
  dashboard's counts per labeler.

A rejected annotation stops counting (the task's `done`, exports, the dashboard) and its task
reopens for one more label; a correction is the reviewer's own annotation and counts in place of
the original. docs/quality.md ("Review") is the user's account of it.
"""
