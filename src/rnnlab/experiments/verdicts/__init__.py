"""Pure functions that turn measured numbers into verdicts.

Each function states its thresholds in its docstring and repeats them in the verdict's reason,
so a reader of the report can check the decision by hand. None of them looks at anything but its
arguments: they are unit-tested on constructed numbers.

The rules live in three modules by subject (:mod:`.gradients`, :mod:`.learning`,
:mod:`.training`); everything is re-exported here, so ``verdicts.decay_slope(...)`` reads the same
wherever it is used.
"""

from rnnlab.experiments.verdicts._common import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    combine,
    controlled,
    explain,
)
from rnnlab.experiments.verdicts.gradients import (
    decay_slope,
    gradient_drops_faster,
    gradient_shrinks_with_depth,
    shared_matrix_spreads_more,
    skip_connections_keep_gradient,
    slower_decay,
)
from rnnlab.experiments.verdicts.learning import (
    attraction_errors_grow,
    beats_chance,
    bidirectional_helps,
    counts_further,
    errors_grow_with_attractors,
    falls_sooner,
    keeps_between_marks,
    needs_right_context,
)
from rnnlab.experiments.verdicts.training import (
    cliff_throws_unclipped,
    clipping_prevents_divergence,
    deep_needs_skips,
    ends_in_inf_or_nan,
    faster_step,
    middle_depth_best,
    parameter_ratio,
    rollback_recovers,
)

__all__ = [
    "INCONCLUSIVE",
    "NOT_SUPPORTED",
    "SUPPORTED",
    "attraction_errors_grow",
    "beats_chance",
    "bidirectional_helps",
    "cliff_throws_unclipped",
    "clipping_prevents_divergence",
    "combine",
    "controlled",
    "counts_further",
    "decay_slope",
    "deep_needs_skips",
    "ends_in_inf_or_nan",
    "errors_grow_with_attractors",
    "explain",
    "falls_sooner",
    "faster_step",
    "gradient_drops_faster",
    "gradient_shrinks_with_depth",
    "keeps_between_marks",
    "middle_depth_best",
    "needs_right_context",
    "parameter_ratio",
    "rollback_recovers",
    "shared_matrix_spreads_more",
    "skip_connections_keep_gradient",
    "slower_decay",
]
