"""How much memory a run may take, and what the next file will cost: a run is never OOM-killed.

Every parsed file is held until the checks have run, and the facts layer roughly doubles what
parsing took (measured: luigi's tree and `benchmarks/stage_curve.py --shape bigfile`; parsing
takes 60 to 170 bytes per byte of source, the whole audit 140 to 450). So before each file is
parsed, the run predicts its growth: what parsing has really taken so far (the process's resident
memory now, less at the start), times `FACTS_FACTOR`, plus the next file's size times
`PARSE_COST` times `FACTS_FACTOR`. When that is over the budget (`--max-memory`, else most of
what the machine or its cgroup has available at the start), the file is one `over-memory-budget`
diagnostic naming it and the run goes on; its functions are then unknown to their callers, which
the open-world effect model treats as `unknown`, never as "no effect".
"""

from __future__ import annotations

import os
import re
import resource
import sys
from pathlib import Path

#: bytes of memory one byte of source may take while parsed, rounded up from the worst case measured
PARSE_COST = 250
#: what the whole audit takes per byte that parsing took (the facts layer, graphs and checks)
FACTS_FACTOR = 2.5
#: the share of the available memory a run takes as its budget when none is given
DEFAULT_SHARE = 0.8
#: the diagnostic code of a file left out because it does not fit the budget
OVER_BUDGET = "over-memory-budget"

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes from `500M`, `4G`, `1.5GiB` or a plain number of bytes; ValueError otherwise."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size (examples: 800M, 4G, 2000000000)")
    number = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if number < 1:
        raise ValueError(f"{text!r} is not a size above zero")
    return int(number)


def megabytes(size: int) -> str:
    mb = size / (1 << 20)
    return f"{mb:,.0f} MB" if mb >= 1 else "under 1 MB"


def available() -> int | None:
    """Bytes this process can still take: the smaller of the machine's `MemAvailable` and what its
    cgroup's limit leaves; None where neither can be read (then no budget applies)."""
    found = [n for n in (_meminfo_available(), _cgroup_left()) if n is not None]
    return min(found) if found else None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_left() -> int | None:
    for limit_file, usage_file in (("memory.max", "memory.current"),
                                   ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            limit = Path("/sys/fs/cgroup", limit_file).read_text(encoding="ascii").strip()
            usage = Path("/sys/fs/cgroup", usage_file).read_text(encoding="ascii").strip()
            if limit.isdigit() and usage.isdigit() and int(limit) < 1 << 60:
                return max(0, int(limit) - int(usage))
        except (OSError, ValueError):
            continue
    return None


def resident() -> int | None:
    """Bytes of this process's resident memory now (Linux), else its peak so far, else None."""
    try:
        return int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        pass
    try:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    except OSError:
        return None


class Budget:
    """The memory parsed files may take in one run (limit None: unlimited), and the check per file."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.start = resident() if limit is not None else None

    @classmethod
    def for_run(cls, max_memory: int | None) -> Budget:
        """`max_memory` bytes, or `DEFAULT_SHARE` of what is available now."""
        if max_memory is not None:
            return cls(max_memory)
        free = available()
        return cls(None if free is None else int(free * DEFAULT_SHARE))

    def taken(self) -> int:
        """Bytes parsing has taken since the run started (0 where memory cannot be read)."""
        now = resident()
        return 0 if now is None or self.start is None else max(0, now - self.start)

    def admit(self, size: int) -> str | None:
        """None when a file of `size` bytes fits what is left of the budget, else why it does not."""
        if self.limit is None:
            return None
        taken = self.taken()
        need = int(size * PARSE_COST * FACTS_FACTOR)
        if int(taken * FACTS_FACTOR) + need <= self.limit:
            return None
        left = max(0, self.limit - int(taken * FACTS_FACTOR))
        return (f"not analysed: a file of {size:,} bytes may need about {megabytes(need)} of memory to analyse, "
                f"and this run has about {megabytes(left)} left of its {megabytes(self.limit)} budget "
                "(set it with --max-memory or STAGEGRAPH_MAX_MEMORY); callers see its functions as unknown")
