"""The loop wing: what closes the human-feedback loop on top of training.

- generation.py, generation_runner.py: a model writes the candidates of the next comparison round.
- evaluation.py: human A/B evaluations and the project leaderboard.
- active_sampling.py: label first the comparisons the project's reward model is least sure of.
- tasks.py: their Celery tasks, under the names they had in training (pinned).
- views.py, urls.py, api/: their pages and API.

Imports go one way: training.pipelines < jobs < training < loop. Nothing in training imports
this package; it reaches loop's work only through Celery task names.
"""
