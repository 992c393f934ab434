"""Simulated labelers and the full-loop run of the whole recipe, end to end on a laptop.

labelers.py  drives the real HTTP API as N labelers judging by the synthetic task's gold function
             (pure Python: no Django, so it can run against any FeedbackLoop server).
services.py  creates the simulated users, their tokens and memberships (Django).
full_loop.py runs the recipe end to end through the API, a Celery worker and a web server.
scoring.py   gold-score evaluation of the loop's models, run as a subprocess (torch, no Django).
report.py    the printed table and the offline HTML report with charts.
"""
