"""All user-facing message text of the checks, in one place so wording stays consistent.

Style: name the stages in backticks, say what happens to the data, end without a period. Each
template is a `Template`: its backticks mark code spans, which findings keep as data
(`Finding.message_parts`), so renderers draw them as code whatever the analysed names contain.
"""

from __future__ import annotations

from ..spans import Template

DEDUP_BEFORE_VALIDATION = Template(
    "dedup stage `{dedup}`{dedups} runs before validation stage `{validate}`{validates} on the same data: when "
    "the copy dedup keeps is invalid, validation drops it and the valid duplicate is already gone"
)
DEDUP_THEN_VALIDATE = Template(
    "`{stage}` deduplicates before it validates ({detail}): when the copy kept is the one with the missing "
    "value, the filter drops it and the complete duplicate is already gone"
)
#: why a stage has a role, shown after its name: " (validates: drops rows where `customer_id` is null)"
ROLE_EVIDENCE = Template(" ({verb}: {evidence})")
CONTENTION_FANOUT = Template("every branch of fan-out stage `{stage}` ({mechanism}) uses {resources}")
CONTENTION_GROUP = Template(
    "{stages} could run in parallel but share {resource}, which is not safe to use concurrently"
)
UNBOUNDED_FANOUT = Template("fan-out in `{stage}` has no bound: {details}")
UNBOUNDED_FANOUT_DRIVER = Template("fan-out has no bound: {details}")
SWALLOWED = Template("`{stage}` swallows exceptions ({detail}): failures vanish without a trace")
SWALLOWED_BRANCH = Template(
    "fan-out branch `{stage}` swallows exceptions ({detail}): the driver never learns the branch failed"
)
EXIT_STATUS = Template("`{stage}` ignores a command's failure ({detail}): a failed command looks like success")
#: appended to a finding that groups every site of its rule in one pipeline (`ONE_PER_PIPELINE`)
MORE_SITES = Template(" (and {count} more in this pipeline: {places})")
#: appended to a finding that groups every site of its rule about the same stages (`ONE_PER_STAGES`)
MORE_STAGE_SITES = Template(" (and {count} more: {places})")
MISSING_TIMEOUT = Template("`{stage}` waits without a timeout: {details}")
MISSING_TIMEOUT_DRIVER = Template("the driver waits without a timeout: {details}")
ORDER_DEPENDENT_STATE = Template(
    "`{stage}` carries state across records ({detail}): reordering or splitting its input changes the result"
)
HIDDEN_STATE = Template(
    "`{reader}` reads {targets}, which `{writer}` sets last: no argument or return value carries it, so "
    "reordering them or running them apart breaks silently"
)
UNDECLARED = Template(
    "`{target}` depends on `{source}` ({via}) but no declared dependency orders them: the scheduler may run "
    "`{target}` first"
)
UNDECLARED_GROUP = Template(
    "{stages} depend on each other through {via} but no declared dependency orders them: the scheduler may "
    "run them in any order, or at once"
)
NON_IDEMPOTENT_RETRY = Template("`{stage}` retries a non-idempotent write: {detail}")
NON_IDEMPOTENT_RETRY_DRIVER = Template("the driver retries a non-idempotent write: {detail}")
COINCIDENTAL_ORDER = Template(
    "{stages} could start together: the code runs them in sequence ({orderings}) but no data or control "
    "dependency orders them"
)
