"""All user-facing message text of the checks, in one place so wording stays consistent.

Style: name the stages in backticks, say what happens to the data, end without a period.
"""

from __future__ import annotations

DEDUP_BEFORE_VALIDATION = (
    "dedup stage `{dedup}` runs before validation stage `{validate}` on the same data: when the copy dedup "
    "keeps is invalid, validation drops it and the valid duplicate is already gone"
)
CONTENTION_FANOUT = "every branch of fan-out stage `{stage}` ({mechanism}) uses {resources}"
CONTENTION_GROUP = (
    "{stages} could run in parallel but share {resource}, which is not safe to use concurrently"
)
UNBOUNDED_FANOUT = "fan-out in `{stage}` has no bound: {details}"
UNBOUNDED_FANOUT_DRIVER = "fan-out has no bound: {details}"
SWALLOWED = "`{stage}` swallows exceptions ({detail}): failures vanish without a trace"
SWALLOWED_BRANCH = (
    "fan-out branch `{stage}` swallows exceptions ({detail}): the driver never learns the branch failed"
)
MISSING_TIMEOUT = "`{stage}` waits without a timeout: {details}"
MISSING_TIMEOUT_DRIVER = "the driver waits without a timeout: {details}"
ORDER_DEPENDENT_STATE = (
    "`{stage}` carries state across records ({detail}): reordering or splitting its input changes the result"
)
HIDDEN_STATE = (
    "`{reader}` reads {targets}, which only `{writer}` sets: no argument or return value carries it, so "
    "reordering them or running them apart breaks silently"
)
UNDECLARED = (
    "`{target}` depends on `{source}` ({via}) but no declared dependency orders them: the scheduler may run "
    "`{target}` first"
)
NON_IDEMPOTENT_RETRY = "`{stage}` retries a non-idempotent write: {detail}"
NON_IDEMPOTENT_RETRY_DRIVER = "the driver retries a non-idempotent write: {detail}"
COINCIDENTAL_ORDER = (
    "{stages} could start together: the code runs them in sequence ({orderings}) but no data or control "
    "dependency orders them"
)
