"""The labeler API's hot path in plain SQL: every statement a claim, a submit or a labeler's page runs.

Plain SQL, not the ORM, because these run on every "next" and every submit, and the ORM spent as
long building the statements as PostgreSQL spent running them (run.py prepares each once per
connection). The same text runs on PostgreSQL, with row locks, and on SQLite, which serialises
writers.

- names.py: table and column names, read from the models' _meta; no statement spells one out.
- rules.py: the claim's rules as SQL fragments, each written once (the capacity rule above all).
- claim.py, submit.py, reads.py: the statements, each with why it exists and what it keeps.
- run.py: running them (prepared statements) and loading rows into model instances.
"""
