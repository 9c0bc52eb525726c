#!/usr/bin/env python3
"""Validate the field-corpus labels and regenerate the corpus table in benchmarks/field/README.md.

Usage:
  table.py            rewrite the table between the `<!-- table -->` markers of README.md
  table.py --check    validate every label; exit 1 when one is invalid (the README is not touched)
  table.py --print    print the table to stdout

A label is invalid when a required key is missing, a stage named in a pair or hazard is not in
`order`, a relation/dep_kind/kind/style value is not one LABELLING.md allows, the commit is not 40
hex digits, or its repository is listed in ../shared/reserved-repos.txt (always a hard error).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DEFAULT_LABELS = HERE / "labels"
DEFAULT_README = HERE / "README.md"
DEFAULT_RESERVED = REPO_ROOT.parent / "shared" / "reserved-repos.txt"

STYLES = {"plain", "class", "airflow", "airflow-taskflow", "luigi", "prefect", "dagster", "kedro", "celery", "sklearn"}
RELATIONS = {"depends", "independent"}
DEP_KINDS = {"data", "control", "resource"}
CONFIDENCES = {"low", "high"}
HAZARD_KINDS = {
    "dedup-before-validation",
    "shared-resource-contention",
    "unbounded-fanout",
    "swallowed-exception",
    "missing-timeout",
    "order-dependent-state",
    "hidden-state-dependency",
    "undeclared-dependency",
    "non-idempotent-retry",
    "other",
}
REQUIRED = ("id", "source", "pipeline", "style", "order", "pairs", "hazards")
TOP_KEYS = {*REQUIRED, "notes", "labelled_by"}
PAIR_KEYS = {"a", "b", "relation", "dep_kind", "via", "shared_resource", "confidence", "notes"}
HAZARD_KEYS = {"kind", "stages", "why", "confidence", "notes"}
ID_RE = re.compile(r"^[a-z0-9_-]+$")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9._-]+$")
START_MARK = "<!-- table -->"
END_MARKS = ("<!-- /table -->", START_MARK)


@dataclass
class Checked:
    """One label file after validation: `fatal` problems make it unrunnable, `errors` make it invalid."""

    path: Path
    label: dict[str, Any] | None
    fatal: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.fatal and not self.errors

    @property
    def id(self) -> str:
        if self.label is not None and isinstance(self.label.get("id"), str):
            return str(self.label["id"])
        return self.path.stem


def read_reserved(path: Path | None) -> set[str] | None:
    """Lower-cased owner/name of every reserved repository, or None when the list cannot be read."""
    if path is None or not path.is_file():
        return None
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(normalise_repo(line))
    return names


def normalise_repo(repo: str) -> str:
    repo = repo.strip().lower()
    for prefix in ("https://github.com/", "http://github.com/", "github.com/", "github:"):
        if repo.startswith(prefix):
            repo = repo[len(prefix):]
    return repo.removesuffix(".git").strip("/")


def id_prefix(repo: str) -> str:
    owner, _, name = repo.partition("/")
    return "__".join(re.sub(r"[^a-z0-9_-]", "-", part.lower()) for part in (owner, name)) + "__"


def validate(path: Path, reserved: set[str] | None) -> Checked:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Checked(path, None, fatal=[f"cannot read label: {exc}"])
    if not isinstance(data, dict):
        return Checked(path, None, fatal=["label is not a JSON object"])
    c = Checked(path, data)
    for key in REQUIRED:
        if key not in data:
            (c.fatal if key in ("source", "pipeline", "order") else c.errors).append(f"missing key {key!r}")
    for key in sorted(set(data) - TOP_KEYS):
        c.warnings.append(f"unknown key {key!r}")

    label_id = data.get("id")
    if "id" in data:
        if not isinstance(label_id, str) or not ID_RE.match(label_id):
            c.errors.append(f"id {label_id!r} is not lower-case [a-z0-9_-]")
        elif label_id != path.stem:
            c.errors.append(f"id {label_id!r} does not match the file name {path.name!r}")

    source = data.get("source")
    if "source" in data:
        if not isinstance(source, dict):
            c.fatal.append("source is not an object")
        else:
            for key in ("repo", "commit", "path"):
                if not isinstance(source.get(key), str):
                    c.fatal.append(f"source.{key} is missing or not a string")
            repo, commit, spath = source.get("repo"), source.get("commit"), source.get("path")
            if isinstance(repo, str):
                if not REPO_RE.match(repo):
                    c.fatal.append(f"source.repo {repo!r} is not owner/name")
                if reserved is not None and normalise_repo(repo) in reserved:
                    c.fatal.append(f"source.repo {repo!r} is RESERVED (../shared/reserved-repos.txt): never label it")
                if isinstance(label_id, str) and not label_id.startswith(id_prefix(repo)):
                    c.warnings.append(f"id does not start with {id_prefix(repo)!r}")
            if isinstance(commit, str) and not COMMIT_RE.match(commit):
                c.fatal.append(f"source.commit {commit!r} is not 40 lower-case hex digits")
            if isinstance(spath, str):
                parts = Path(spath).parts
                if spath.startswith("/") or ".." in parts or spath.startswith("~"):
                    c.fatal.append(f"source.path {spath!r} must be relative to the repository root, without '..'")

    if "pipeline" in data and (not isinstance(data["pipeline"], str) or not data["pipeline"]):
        c.fatal.append("pipeline is not a non-empty string")
    if "style" in data and data["style"] not in STYLES:
        c.errors.append(f"style {data['style']!r} is not one of {sorted(STYLES)}")

    order = data.get("order")
    stages: set[str] = set()
    if "order" in data:
        if not isinstance(order, list) or not order or not all(isinstance(s, str) and s for s in order):
            c.fatal.append("order is not a non-empty list of stage names")
        else:
            stages = set(order)
            dupes = sorted({s for s in order if order.count(s) > 1})
            if dupes:
                c.errors.append(f"order repeats {dupes} (a second call is 'name#2')")

    pairs = data.get("pairs")
    if "pairs" in data and not isinstance(pairs, list):
        c.errors.append("pairs is not a list")
        pairs = []
    seen_pairs: set[frozenset[str]] = set()
    for i, pair in enumerate(pairs or []):
        where = f"pairs[{i}]"
        if not isinstance(pair, dict):
            c.errors.append(f"{where} is not an object")
            continue
        where = f"pairs[{i}] ({pair.get('a')} / {pair.get('b')})"
        for key in ("a", "b", "relation"):
            if key not in pair:
                c.errors.append(f"{where}: missing {key!r}")
        for key in sorted(set(pair) - PAIR_KEYS):
            c.warnings.append(f"{where}: unknown key {key!r}")
        for key in ("a", "b"):
            if key in pair and stages and pair[key] not in stages:
                c.errors.append(f"{where}: {key}={pair[key]!r} is not a stage in order")
        if "a" in pair and pair.get("a") == pair.get("b"):
            c.errors.append(f"{where}: a and b are the same stage")
        relation = pair.get("relation")
        if "relation" in pair and relation not in RELATIONS:
            c.errors.append(f"{where}: relation {relation!r} is not one of {sorted(RELATIONS)}")
        if relation == "depends":
            if "dep_kind" not in pair:
                c.errors.append(f"{where}: a depends pair needs dep_kind ({'/'.join(sorted(DEP_KINDS))})")
            elif pair["dep_kind"] not in DEP_KINDS:
                c.errors.append(f"{where}: dep_kind {pair['dep_kind']!r} is not one of {sorted(DEP_KINDS)}")
        elif relation == "independent" and "dep_kind" in pair:
            c.errors.append(f"{where}: an independent pair has no dep_kind")
        if "confidence" in pair and pair["confidence"] not in CONFIDENCES:
            c.errors.append(f"{where}: confidence {pair['confidence']!r} is not one of {sorted(CONFIDENCES)}")
        if not str(pair.get("via", "")).strip() and pair.get("confidence") != "low":
            c.warnings.append(f"{where}: no 'via' (every pair says why)")
        key_pair = frozenset((str(pair.get("a")), str(pair.get("b"))))
        if key_pair in seen_pairs:
            c.errors.append(f"{where}: the same pair is labelled twice")
        seen_pairs.add(key_pair)
    order_list = data.get("order") if isinstance(data.get("order"), list) else []
    c.errors.extend(_ordered_independent_pairs(pairs or [], [str(s) for s in order_list]))

    hazards = data.get("hazards")
    if "hazards" in data and not isinstance(hazards, list):
        c.errors.append("hazards is not a list")
        hazards = []
    for i, hazard in enumerate(hazards or []):
        where = f"hazards[{i}]"
        if not isinstance(hazard, dict):
            c.errors.append(f"{where} is not an object")
            continue
        kind = hazard.get("kind")
        where = f"hazards[{i}] ({kind})"
        if kind not in HAZARD_KINDS:
            hint = " (a note, not a hazard)" if kind == "coincidental-order" else ""
            c.errors.append(f"{where}: kind {kind!r} is not a rule id{hint}")
        for key in sorted(set(hazard) - HAZARD_KEYS):
            c.warnings.append(f"{where}: unknown key {key!r}")
        hstages = hazard.get("stages")
        if hstages is None and kind != "other":
            c.errors.append(f"{where}: missing 'stages'")
        elif hstages is not None and (not isinstance(hstages, list) or not all(isinstance(s, str) for s in hstages)):
            c.errors.append(f"{where}: stages is not a list of stage names")
        elif hstages:
            for s in hstages:
                if stages and s not in stages:
                    c.errors.append(f"{where}: stage {s!r} is not a stage in order")
        if not str(hazard.get("why", "")).strip():
            c.warnings.append(f"{where}: no 'why'")
    return c


def _ordered_independent_pairs(pairs: list[Any], order: list[str]) -> list[str]:
    """Independent pairs whose stages a chain of labelled `depends` pairs already orders.

    The scorer counts dependencies transitively (two stages may run concurrently only when neither
    reaches the other), so such a pair can never be scored right: label it `depends`, naming the chain.
    """
    position = {stage: i for i, stage in enumerate(order)}

    def run_order(pair: dict[str, Any]) -> tuple[str, str]:
        a, b = str(pair.get("a")), str(pair.get("b"))
        return (b, a) if position.get(a, 0) > position.get(b, 0) else (a, b)

    chain = nx.DiGraph()
    for pair in pairs:
        if isinstance(pair, dict) and pair.get("relation") == "depends" and pair.get("confidence") != "low":
            chain.add_edge(*run_order(pair))
    errors = []
    for pair in pairs:
        if not isinstance(pair, dict) or pair.get("relation") != "independent" or pair.get("confidence") == "low":
            continue
        a, b = run_order(pair)
        if chain.has_node(a) and chain.has_node(b) and nx.has_path(chain, a, b):
            path = " -> ".join(nx.shortest_path(chain, a, b))
            errors.append(f"pair {a} / {b}: labelled independent, but the labelled depends pairs {path} order "
                          "them (label it depends, transitively)")
    return errors


def label_files(labels: Path) -> list[Path]:
    return sorted(labels.glob("*.json"))


def validate_all(labels: Path, reserved: set[str] | None) -> list[Checked]:
    return [validate(p, reserved) for p in label_files(labels)]


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_table(checked: list[Checked]) -> str:
    head = "| id | style | repo | commit | path | stages | pairs (dep/ind/low) | hazards |"
    rows = [head, "| --- | --- | --- | --- | --- | ---: | ---: | ---: |"]
    totals = [0, 0, 0, 0, 0, 0]
    for c in checked:
        label = c.label or {}
        source: dict[str, Any] = label["source"] if isinstance(label.get("source"), dict) else {}
        raw_pairs: list[Any] = label["pairs"] if isinstance(label.get("pairs"), list) else []
        pairs = [p for p in raw_pairs if isinstance(p, dict)]
        low = sum(1 for p in pairs if p.get("confidence") == "low")
        dep = sum(1 for p in pairs if p.get("relation") == "depends" and p.get("confidence") != "low")
        ind = sum(1 for p in pairs if p.get("relation") == "independent" and p.get("confidence") != "low")
        hazards = label.get("hazards", []) if isinstance(label.get("hazards"), list) else []
        scored_hazards = sum(1 for h in hazards if isinstance(h, dict) and h.get("kind") != "other")
        order = label.get("order", []) if isinstance(label.get("order"), list) else []
        others = len(hazards) - scored_hazards
        repo = str(source.get("repo", "?"))
        flag = "" if c.ok else " (INVALID)"
        rows.append(
            "| " + " | ".join(_cell(v) for v in (
                f"`{c.id}`{flag}",
                label.get("style", "?"),
                f"[{repo}](https://github.com/{repo})",
                f"`{str(source.get('commit', '?'))[:10]}`",
                f"`{source.get('path', '?')}`",
                len(order),
                f"{len(pairs)} ({dep}/{ind}/{low})",
                f"{scored_hazards}" + (f" (+{others} other)" if others else ""),
            )) + " |"
        )
        for i, n in enumerate((len(order), len(pairs), dep, ind, low, scored_hazards)):
            totals[i] += n
    if checked:
        styles = len({(c.label or {}).get("style") for c in checked})
        repos = len({str(((c.label or {}).get("source") or {}).get("repo", "")).lower() for c in checked})
        rows.append(
            f"| **{len(checked)} cases** | {styles} styles | {repos} repos | | | **{totals[0]}** | "
            f"**{totals[1]}** ({totals[2]}/{totals[3]}/{totals[4]}) | **{totals[5]}** |"
        )
    else:
        rows.append("| *(no labels yet)* | | | | | | | |")
    return "\n".join(rows)


def replace_table(text: str, table: str) -> str | None:
    """`text` with the block between the table markers replaced, or None when the markers are missing."""
    start = text.find(START_MARK)
    if start < 0:
        return None
    body_start = start + len(START_MARK)
    ends = [(i, m) for m in END_MARKS if (i := text.find(m, body_start)) >= 0]
    if not ends:
        return None
    end, _mark = min(ends)
    return text[:body_start] + "\n" + table + "\n" + text[end:]


def report(checked: list[Checked], out: Any = sys.stderr) -> int:
    bad = 0
    for c in checked:
        if c.ok and not c.warnings:
            continue
        status = "ok" if c.ok else "INVALID"
        bad += not c.ok
        print(f"{c.path.name}: {status}", file=out)
        for msg in c.fatal + c.errors:
            print(f"  error: {msg}", file=out)
        for msg in c.warnings:
            print(f"  warning: {msg}", file=out)
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--check", action="store_true", help="validate the labels; exit 1 when one is invalid")
    ap.add_argument("--print", dest="print_only", action="store_true", help="print the table instead of writing it")
    ap.add_argument("--labels", type=Path, default=DEFAULT_LABELS, help="label folder (default: %(default)s)")
    ap.add_argument("--readme", type=Path, default=DEFAULT_README, help="README to update (default: %(default)s)")
    ap.add_argument("--reserved", type=Path, default=DEFAULT_RESERVED,
                    help="reserved-repos list (default: %(default)s)")
    args = ap.parse_args(argv)

    reserved = read_reserved(args.reserved)
    if reserved is None:
        print(f"warning: {args.reserved} not found: reserved repositories are NOT checked", file=sys.stderr)
    if not args.labels.is_dir():
        ap.error(f"no label folder {args.labels}")
    checked = validate_all(args.labels, reserved)
    bad = report(checked)
    table = render_table(checked)

    if args.check:
        try:
            current = args.readme.read_text(encoding="utf-8")
        except OSError:
            current = None
        if current is not None and replace_table(current, table) not in (None, current):
            print(f"note: the table in {args.readme} is out of date (run table.py)", file=sys.stderr)
        print(f"{len(checked)} labels, {bad} invalid", file=sys.stderr)
        return 1 if bad else 0
    if args.print_only:
        print(table)
        return 0
    try:
        text = args.readme.read_text(encoding="utf-8")
    except OSError as exc:
        ap.error(f"cannot read {args.readme}: {exc}")
    new = replace_table(text, table)
    if new is None:
        ap.error(f"{args.readme} has no {START_MARK} ... {END_MARKS[0]} markers")
    if new != text:
        args.readme.write_text(new, encoding="utf-8")
        print(f"updated {args.readme} ({len(checked)} labels)", file=sys.stderr)
    else:
        print(f"{args.readme} is up to date ({len(checked)} labels)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
