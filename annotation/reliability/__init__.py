"""Labeler reliability and agreement: who can be trusted, how much labelers agree, and what looks wrong.

A periodic Celery task (annotation.tasks.quality_refresh_all) recomputes each project whose work
changed, in bounded memory, and caches one report per project; the dashboard and the API only
read that report. The modules, in the order a run uses them:

- config.py      thresholds and limits, each documenting itself
- labels.py      what a comparison judgment says, as labels the models can count
- judgments.py   the project's comparison judgments, streamed in chunks into a compact table
- competence.py  Dawid-Skene and MACE (crowd-kit) per labeler, optionally anchored on known answers
- alpha.py       Krippendorff's alpha per kind of judgment (krippendorff)
- agreement.py   agreement per labeler pair
- flags.py       too fast, position bias, outlier; stored as AnnotationFlag rows
- compute.py     one run: read, estimate, flag, report
- store.py       the cached report, the run lock and the "recompute" request
- display.py     the dashboard's quality section, prepared from the cached report

The API is annotation/api/quality.py. docs/quality.md explains the choices for people who read
the numbers.
"""
