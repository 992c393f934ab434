"""Is the reward model still right? Each reward model's agreement with the newest human labels on the
current policy's samples: the staleness signal that tells the team to collect again.

See docs/quality.md, "Is the reward model still right?". For each reward model of a project (its
own reward models, and the project's reward model if that one is global):

1. The **current policy** is the newest model version, other than a reward model, that wrote
   responses shown by the project's comparison tasks (Response.model_version).
2. The **labels** are the newest LABELS counting comparison annotations (not skipped, rejected or
   corrected, with a ranking) on tasks that show at least two of the policy's responses.
3. Each label's ranking gives ordered pairs (better, worse) of different groups; the pairs between
   two of the policy's responses are kept. The reward model scores those responses on the `gpu`
   queue, through the same scoring pipeline and subprocess as active sampling
   (training/scoring.py, training.pipelines.score).
4. **Agreement** is the share of the pairs the scores order the same way (equal scores count
   half), the pairwise accuracy that the reward pipeline reports as `eval_accuracy` on held-out
   pairs. It is stored in RewardModelCheck with the policy, the label and pair counts, and when.
5. **Stale** when the agreement is below STALE_BELOW, or more than STALE_DROP below the model's
   own eval accuracy: the labels of the current policy's samples no longer look like the data the
   model was trained on, so it is time to collect comparisons again and retrain it.

A beat sweep (reward_checks_refresh) queues the check of every reward model whose project has new
labels since its last check and whose check is older than REFRESH_SECONDS; engineers and admins
queue it at once from the dashboard or the API.

The package: rule.py (the numbers and the stale rule), labels.py (the policy, its labels and the
rows to score), jobs.py (scheduling, the beat sweep and the gpu task's body) and reads.py (what
the pages and the API show).
"""

from .jobs import (  # noqa: F401
    REFRESH_SECONDS, Outcome, reward_check_execute, reward_check_schedule, reward_checks_refresh,
    reward_checks_schedule_project,
)
from .labels import LABELS, current_policy, newest_labels, project_reward_models, scoring_rows  # noqa: F401
from .reads import check_summary, reward_checks_for_models, reward_checks_for_project  # noqa: F401
from .rule import (  # noqa: F401
    MIN_PAIRS, STALE_BELOW, STALE_DROP, eval_accuracy, pair_agreement, ranking_pairs, stale_verdict,
)
