"""The promotion decision: may a challenger replace the champion?

A pure function of the two models' metrics on the same holdout, the model tests and
the spec, so every rule can be tested on its own. A challenger is promoted only when
all of these hold:

- it passed its model tests (latency, size);
- its promotion metric clears the spec's absolute floor;
- there is no champion, or it beats the champion by at least the spec's margin,
  measured on the same holdout rows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_lifecycle.spec import ModelSpec


@dataclass(frozen=True)
class Decision:
    """Outcome of a comparison: ``promote`` or not, and every reason."""

    promote: bool
    metric: str
    challenger: float
    champion: float | None
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def summary(self) -> str:
        return "; ".join(self.reasons)


def decide(
    spec: ModelSpec,
    *,
    challenger_metrics: dict[str, float],
    champion_metrics: dict[str, float] | None,
    model_tests: dict[str, bool] | None = None,
) -> Decision:
    """Decide on promotion from holdout metrics (both computed on the same rows)."""
    metric = spec.promotion.metric
    higher = spec.higher_is_better(metric)
    new = challenger_metrics[metric]
    old = champion_metrics[metric] if champion_metrics else None
    reasons: list[str] = []
    ok = True

    failed_tests = sorted(k for k, passed in (model_tests or {}).items() if not passed)
    if failed_tests:
        ok = False
        reasons.append(f"failed model tests: {', '.join(failed_tests)}")
    if new is None or (isinstance(new, float) and math.isnan(new)):
        ok = False
        reasons.append(f"{metric} could not be computed on the holdout")
    elif spec.promotion.floor is not None:
        clears = new >= spec.promotion.floor if higher else new <= spec.promotion.floor
        if not clears:
            ok = False
            reasons.append(f"{metric} {new:.4f} does not clear the floor {spec.promotion.floor}")
        else:
            reasons.append(f"{metric} {new:.4f} clears the floor {spec.promotion.floor}")
    if old is None:
        reasons.append("no champion to beat")
    elif new is not None and not math.isnan(new):
        gain = (new - old) if higher else (old - new)
        if gain >= spec.promotion.margin and gain > 0:
            reasons.append(f"beats champion {metric} {old:.4f} by {gain:.4f} (margin {spec.promotion.margin})")
        else:
            ok = False
            reasons.append(
                f"does not beat champion {metric} {old:.4f} by the margin {spec.promotion.margin} "
                f"(challenger {new:.4f}, gain {gain:+.4f})"
            )
    return Decision(promote=ok, metric=metric, challenger=new, champion=old, reasons=reasons)
