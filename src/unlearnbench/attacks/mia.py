"""Population membership-inference attack on per-sample losses (docs/protocol.md §4).

Members = forget set, non-members = val or test. Both are shuffled and truncated to
the smaller size; a logistic regression on the single loss feature is scored by
accuracy over StratifiedShuffleSplit(n_splits=10, test_size=0.1, random_state=123).
0.5 means the two sets are indistinguishable. `population_mia` is the first per-model
attack of attacks/registry.py: every evaluation runs it.
"""

from __future__ import annotations

import numpy as np

MIA_SEED = 123


# the fewest members and non-members an attack is fitted on (its 10-fold cross-validation)
MIN_MEMBERS = 10

def mia_accuracy(member_losses: np.ndarray, nonmember_losses: np.ndarray, seed: int = MIA_SEED) -> float:
    # Imported here: scikit-learn takes a second to import, which table and figure jobs
    # (they import the method registry, hence evaluate) need not pay.
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import StratifiedShuffleSplit

    rng = np.random.default_rng(seed)
    members = rng.permutation(np.asarray(member_losses, dtype=np.float64))
    nonmembers = rng.permutation(np.asarray(nonmember_losses, dtype=np.float64))
    n = min(len(members), len(nonmembers))
    if n < MIN_MEMBERS:
        raise ValueError(f"MIA needs at least {MIN_MEMBERS} members and non-members, got {len(members)} and {len(nonmembers)}")
    x = np.concatenate([members[:n], nonmembers[:n]])[:, None]
    y = np.concatenate([np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.int64)])
    cv = StratifiedShuffleSplit(n_splits=10, test_size=0.1, random_state=seed)
    # cross_val_score(LogisticRegression(), x, y, cv=cv, scoring="accuracy").mean(), fold by
    # fold: the same number without its per-fold checks and joblib dispatch, which took
    # half of its 36 ms (every evaluation runs two attacks; docs/performance.md#design)
    scores = [accuracy_score(y[test], LogisticRegression().fit(x[train], y[train]).predict(x[test]))
              for train, test in cv.split(x, y)]
    return float(np.mean(scores))


def population_mia(predictions) -> dict[str, float]:
    """The registry's per-model attack (attacks/registry.py): forget set against val
    (`val_mia`, the search objective's) and against test (`test_mia`, the tables').
    A model with non-finite outputs on either set gets NaN: its losses there are a
    constant, and an MIA over them would read as "indiscernible" (docs/protocol.md §4)."""
    forget = predictions["forget"]
    out = {}
    for key, other in (("val_mia", "val"), ("test_mia", "test")):
        healthy = forget.finite.all() and predictions[other].finite.all()
        out[key] = mia_accuracy(forget.losses, predictions[other].losses) if healthy else float("nan")
    return out
