"""Stage timings read from what `stagegraph instrument` writes, OpenTelemetry/Jaeger exports or a CSV.

Every format becomes the same `Timings`: per (pipeline, stage) the wall-clock samples (seconds),
CPU samples when known, and outcomes. Percentiles are nearest-rank, so every reported value is a
value that was observed. A CSV of percentiles has no samples; it is turned into 100 synthetic
samples along the quantile curve (see `from_percentiles`), which keeps every later step one code path.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

#: attribute names the instrumented code puts on OpenTelemetry spans
SPAN_STAGE, SPAN_PIPELINE, SPAN_RUN, SPAN_CPU, SPAN_OUTCOME = (
    "stagegraph.stage", "stagegraph.pipeline", "stagegraph.run", "stagegraph.cpu_s", "stagegraph.outcome",
)


class TimingsError(ValueError):
    """The timings file can't be read; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class Record:
    """One finished run of one stage."""

    stage: str
    pipeline: str | None
    run: str
    wall: float
    cpu: float | None = None
    outcome: str = "ok"


@dataclass(frozen=True, slots=True)
class StageTimes:
    """All samples of one stage in one pipeline (pipeline None: the source did not say)."""

    stage: str
    pipeline: str | None
    walls: tuple[float, ...]
    cpus: tuple[float, ...] = ()
    runs: tuple[str, ...] = ()
    errors: int = 0
    synthetic: bool = False  # built from percentiles, not observed samples

    def quantile(self, q: float) -> float:
        return quantile(self.walls, q)

    @property
    def cpu_ratio(self) -> float | None:
        """CPU time over wall time (median of both); None when CPU time was not recorded."""
        if not self.cpus:
            return None
        wall = quantile(self.walls, 0.5)
        return min(1.0, quantile(self.cpus, 0.5) / wall) if wall > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Timings:
    source: str
    format: str  # "jsonl", "otlp", "jaeger", "otel-console", "csv"
    stages: tuple[StageTimes, ...] = field(default_factory=tuple)

    def for_pipeline(self, pipeline_id: str, stage_ids: Iterable[str]) -> dict[str, StageTimes]:
        """The samples of a pipeline's stages; records without a pipeline id match by stage id."""
        wanted = set(stage_ids)
        found = {t.stage: t for t in self.stages if t.pipeline == pipeline_id and t.stage in wanted}
        for t in self.stages:
            if t.pipeline is None and t.stage in wanted and t.stage not in found:
                found[t.stage] = t
        return found


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile: the smallest observed value with at least a fraction q at or below it."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered) - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def max_quantile(groups: Sequence[Sequence[float]], q: float) -> float:
    """The q-quantile of max(X1..Xn) for independent branches, each distributed as its samples.

    P(max <= t) = prod_i F_i(t) with F_i the empirical distribution; the answer is the smallest
    observed value where that product reaches q. This is what a fan-out waits for.
    """
    groups = [sorted(g) for g in groups if g]
    if not groups:
        return 0.0
    candidates = sorted({v for g in groups for v in g})
    for t in candidates:
        product = 1.0
        for g in groups:
            product *= _count_at_most(g, t) / len(g)
        if product >= q - 1e-12:
            return t
    return candidates[-1]


def _count_at_most(ordered: Sequence[float], t: float) -> int:
    import bisect

    return bisect.bisect_right(ordered, t)


def from_percentiles(p50: float, p95: float, p99: float) -> tuple[float, ...]:
    """100 synthetic samples whose nearest-rank p50/p95/p99 are the given values.

    Below the median nothing is known, so those samples sit at p50 (a fan-out's tail does not
    depend on them); between the given points the curve is linear; the top percent continues the
    p95 -> p99 slope, an estimate of the tail beyond p99 that the max of several branches reaches.
    """
    points = [(0.50, p50), (0.95, p95), (0.99, p99)]
    slope = (p99 - p95) / 0.04
    samples: list[float] = []
    for k in range(1, 101):
        q = k / 100
        if q <= 0.50:
            value = p50
        elif q <= 0.99:
            (q0, v0), (q1, v1) = next((a, b) for a, b in itertools.pairwise(points) if q <= b[0])
            value = v0 + (v1 - v0) * (q - q0) / (q1 - q0)
        else:
            value = p99 + slope * (q - 0.99)
        samples.append(round(value, 9))
    return tuple(samples)


# ------------------------------------------------------------------ reading

def load(path: Path) -> Timings:
    """Read a timings file, recognising its format from its content."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TimingsError(f"{path}: cannot read the timings: {exc}") from None
    return parse(text, str(path))


def parse(text: str, source: str = "<timings>") -> Timings:
    stripped = text.lstrip()
    if not stripped:
        raise TimingsError(f"{source}: the timings file is empty")
    if stripped[0] not in "{[":
        return _group(source, "csv", _csv(text, source))
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict) and "resourceSpans" in whole:
        return _group(source, "otlp", _otlp(whole))
    if isinstance(whole, dict) and "data" in whole:
        return _group(source, "jaeger", _jaeger(whole))
    records: list[Record] = []
    kinds: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise TimingsError(f"{source}:{number}: not a JSON line: {exc}") from None
        if not isinstance(item, dict):
            raise TimingsError(f"{source}:{number}: expected a JSON object")
        if "resourceSpans" in item:
            kinds.add("otlp")
            records.extend(_otlp(item))
        elif "context" in item and "start_time" in item:
            kinds.add("otel-console")
            records.extend(_console_span(item))
        elif item.get("event", "end") == "end":
            kinds.add("jsonl")
            records.append(_own_record(item, source, number))
    return _group(source, "+".join(sorted(kinds)) or "jsonl", records)


def _own_record(item: dict[str, Any], source: str, number: int) -> Record:
    try:
        return Record(
            stage=str(item["stage"]), pipeline=_opt_str(item.get("pipeline")), run=str(item.get("run", "")),
            wall=float(item["wall_s"]), cpu=_opt_float(item.get("cpu_s")), outcome=str(item.get("outcome", "ok")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TimingsError(f"{source}:{number}: a timing record needs stage and wall_s: missing or bad {exc}") from None


def _opt_str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _opt_float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _csv(text: str, source: str) -> Iterator[Record]:
    reader = csv.DictReader(io.StringIO(text))
    columns = {c.strip().lower() for c in reader.fieldnames or ()}
    if not {"stage", "p50", "p95", "p99"} <= columns:
        raise TimingsError(f"{source}: a timings CSV needs the columns stage,p50,p95,p99 (optional: pipeline, cpu)")
    for number, raw in enumerate(reader, 2):
        row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
        try:
            p50, p95, p99 = float(row["p50"]), float(row["p95"]), float(row["p99"])
        except ValueError as exc:
            raise TimingsError(f"{source}:{number}: {exc}") from None
        if not 0 <= p50 <= p95 <= p99:
            raise TimingsError(f"{source}:{number}: expected 0 <= p50 <= p95 <= p99")
        ratio = _opt_float(row.get("cpu") or None)
        for k, wall in enumerate(from_percentiles(p50, p95, p99)):
            yield Record(row["stage"], _opt_str(row.get("pipeline")), f"synthetic-{k}", wall,
                         None if ratio is None else wall * ratio, "synthetic")


def _attr_value(value: dict[str, Any]) -> Any:
    for key in ("stringValue", "doubleValue", "intValue", "boolValue"):
        if key in value:
            return value[key]
    return None


def _otlp(data: dict[str, Any]) -> Iterator[Record]:
    for resource_spans in data.get("resourceSpans", ()):
        scopes = resource_spans.get("scopeSpans") or resource_spans.get("instrumentationLibrarySpans") or ()
        for scope in scopes:
            for span in scope.get("spans", ()):
                attrs = {a.get("key"): _attr_value(a.get("value", {})) for a in span.get("attributes", ())}
                wall = (int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])) / 1e9
                yield _span_record(span.get("name", ""), str(span.get("traceId", "")), wall, attrs,
                                   (span.get("status") or {}).get("code") in (2, "STATUS_CODE_ERROR"))


def _jaeger(data: dict[str, Any]) -> Iterator[Record]:
    for trace in data.get("data", ()):
        for span in trace.get("spans", ()):
            attrs = {t.get("key"): t.get("value") for t in span.get("tags", ())}
            error = attrs.get("error") in (True, "true")
            yield _span_record(span.get("operationName", ""), str(span.get("traceID", "")),
                               float(span.get("duration", 0)) / 1e6, attrs, error)


def _console_span(item: dict[str, Any]) -> Iterator[Record]:
    """A span as the Python SDK's ConsoleSpanExporter prints it (ISO times, attributes as a dict)."""
    start = datetime.fromisoformat(str(item["start_time"]).replace("Z", "+00:00"))
    end = datetime.fromisoformat(str(item["end_time"]).replace("Z", "+00:00"))
    status = (item.get("status") or {}).get("status_code", "")
    yield _span_record(str(item.get("name", "")), str((item.get("context") or {}).get("trace_id", "")),
                       (end - start).total_seconds(), dict(item.get("attributes") or {}), status == "ERROR")


def _span_record(name: str, trace: str, wall: float, attrs: dict[str, Any], error: bool) -> Record:
    outcome = str(attrs.get(SPAN_OUTCOME) or ("error" if error else "ok"))
    return Record(
        stage=str(attrs.get(SPAN_STAGE) or name), pipeline=_opt_str(attrs.get(SPAN_PIPELINE)),
        run=str(attrs.get(SPAN_RUN) or trace), wall=wall, cpu=_opt_float(attrs.get(SPAN_CPU)), outcome=outcome,
    )


def _group(source: str, fmt: str, records: Iterable[Record]) -> Timings:
    by_key: dict[tuple[str | None, str], list[Record]] = {}
    for record in records:
        by_key.setdefault((record.pipeline, record.stage), []).append(record)
    stages = []
    for (pipeline, stage), items in sorted(by_key.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
        cpus = tuple(r.cpu for r in items if r.cpu is not None)
        stages.append(StageTimes(
            stage=stage, pipeline=pipeline, walls=tuple(r.wall for r in items),
            cpus=cpus if len(cpus) == len(items) else (), runs=tuple(r.run for r in items),
            errors=sum(r.outcome == "error" for r in items), synthetic=all(r.outcome == "synthetic" for r in items),
        ))
    if not stages:
        raise TimingsError(f"{source}: no stage timings found")
    return Timings(source, fmt, tuple(stages))
