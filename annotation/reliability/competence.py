"""Each labeler's competence, by two standard crowd models from crowd-kit, on the choice label.

- Dawid-Skene (crowdkit.aggregation.DawidSkene) learns a confusion matrix per labeler: how often
  they answer each label when each label is true. A labeler's competence is the probability that
  their answer is the true one, Σ_c prior(c) · P(answer c | true c). A labeler who always picks the
  first response has a column of ones in the "1" row and scores about prior("1"); a random one
  scores about 1 / the number of labels; a careful one near 1.
- MACE (crowdkit.aggregation.MACE, as in Potato) models each answer as either known (then it is
  the true label) or spam (then drawn from the labeler's own habits); its competence is the
  probability of "known". crowd-kit 1.4.2 initialises every restart from the same seed, so one
  restart gives exactly what ten would.

Known answers. DawidSkene.fit takes `true_labels` (a Series by task): on those tasks EM pins the
posterior to the known label at every step, so the confusion matrices learn from known answers and
from agreement at once. Gold tasks are passed this way. MACE in crowd-kit takes no known labels,
so its figure rests on agreement alone.

Which tasks: those with two or more labels, plus those with a known label. A task judged once
says nothing about its labeler without a known answer, and would only make them agree with
themselves. Rows are sorted by (task, labeler) before fitting, so the result depends on the data,
never on the order rows were read in.

crowd-kit and pandas are imported inside the functions: the web processes never load them.
"""

import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Competence:
    dawid_skene: dict[int, float] = field(default_factory=dict)
    mace: dict[int, float] = field(default_factory=dict)
    items: int = 0  # tasks the models saw
    judgments: int = 0


def crowd_frame(*, tasks, labelers, choices, known: dict | None = None):
    """The (task, worker, label) frame the models are fitted on: multi-labeled or known tasks, sorted."""
    import pandas as pd

    frame = pd.DataFrame({"task": tasks, "worker": labelers, "label": choices})
    counts = frame.groupby("task")["worker"].transform("size")
    keep = counts >= 2
    if known:
        keep |= frame["task"].isin(list(known))
    frame = frame[keep].sort_values(["task", "worker"], kind="stable").reset_index(drop=True)
    return frame


def known_series(*, frame, known: dict | None):
    """Known labels as crowd-kit's true_labels, limited to tasks in the frame and labels someone gave."""
    import pandas as pd

    if not known or frame.empty:
        return None
    given = set(frame["label"])
    present = set(frame["task"])
    pairs = sorted((task, label) for task, label in known.items() if task in present and label in given)
    if not pairs:
        return None
    return pd.Series([label for _, label in pairs], index=pd.Index([task for task, _ in pairs], name="task"))


@contextmanager
def _quiet():
    """crowd-kit 1.4.2 uses pandas arguments that pandas 3 deprecates; keep those warnings out of the logs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def dawid_skene_fit(*, frame, true_labels=None):
    from crowdkit.aggregation import DawidSkene

    with _quiet():
        return DawidSkene(n_iter=100, tol=1e-5).fit(frame, true_labels=true_labels)


def mace_fit(*, frame):
    from crowdkit.aggregation import MACE

    with _quiet():
        return MACE(n_restarts=1, n_iter=50, random_state=0).fit(frame)


def _finite(value) -> float | None:
    """A float for the report, or None where a degenerate fit gave NaN (JSON has no NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


def dawid_skene_competence(model) -> dict:
    """Σ_c prior(c) · P(answer c | true c) per worker, from a fitted DawidSkene."""
    errors, priors = model.errors_, model.priors_
    result = {}
    for worker in errors.index.get_level_values("worker").unique():
        rows = errors.loc[worker]
        result[worker] = _finite(
            sum(priors[label] * rows.loc[label, label] for label in priors.index if label in rows.index)
        )
    return result


def mace_competence(model, frame) -> dict:
    """P(known) per worker, from a fitted MACE; its rows follow the order of pd.factorize(workers)."""
    import pandas as pd

    _, workers = pd.factorize(frame["worker"])
    return {worker: _finite(model.spamming_[i, 1]) for i, worker in enumerate(workers)}


def competence_estimate(*, tasks, labelers, choices, known: dict | None = None) -> Competence:
    """Fit both models on the choice labels (one per judgment) and return each labeler's competence."""
    frame = crowd_frame(tasks=tasks, labelers=labelers, choices=choices, known=known)
    result = Competence(items=int(frame["task"].nunique()), judgments=len(frame))
    if frame["worker"].nunique() < 2 or frame["label"].nunique() < 2:
        return result  # nothing to tell labelers apart by
    model = dawid_skene_fit(frame=frame, true_labels=known_series(frame=frame, known=known))
    result.dawid_skene = dawid_skene_competence(model)
    result.mace = mace_competence(mace_fit(frame=frame), frame)
    return result
