"""Hand-built Reports for the renderer tests: realistic, hostile and large.

The analysis engine is written concurrently, so renderers are tested on Reports built here:
two pipelines with every edge kind, parallel groups sharing resources, findings of each
severity and diagnostics; the same shape with hostile strings everywhere analysed text goes;
and a large report (20+ pipelines, one with 80 stages) for collapse and per-pipeline files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from stagegraph.model import (
    Diagnostic,
    Edge,
    Effect,
    FanOut,
    Finding,
    Location,
    ParallelGroup,
    Pipeline,
    Report,
    Resource,
    Stage,
    Summary,
)

#: strings that try to break out of every format we write
HOSTILE = (
    '"]; x -> y [label="pwn',
    "</script><script>alert(1)</script>",
    "@octocat",
    "#123",
    "a|b",
    "`rm -rf`",
    "line1\nline2",
    "{{ 7*7 }}",
    "back\\slash\\",
    "<img src=x onerror=alert(2)>",
    "} subgraph cluster_evil { z",
    "%% click x call alert(3)",
    "[link](javascript:alert(4))",
    "&amp; &lt;",
)
HOSTILE_ALL = " ".join(HOSTILE)


def summarise(pipelines: tuple[Pipeline, ...], findings: tuple[Finding, ...], files: int) -> Summary:
    """The summary the engine would compute, so renderers see consistent numbers."""
    edges = [e for p in pipelines for e in p.edges]
    counts = Counter(f.severity for f in findings)
    return Summary(
        files_analysed=files,
        pipelines=len(pipelines),
        stages=sum(len(p.stages) for p in pipelines),
        real_edges=sum(1 for e in edges if e.kind in ("data", "control")),
        coincidental_edges=sum(1 for e in edges if e.kind == "order"),
        unknown_edges=sum(1 for e in edges if e.kind == "unknown"),
        fanout_candidates=sum(1 for p in pipelines for g in p.parallel_groups),
        findings_by_severity=tuple((k, counts[k]) for k in ("error", "warning", "note") if counts[k]),
    )


def _stage(sid: str, file: str, line: int, *, roles: tuple[str, ...] = (), reads: tuple[Effect, ...] = (),
           writes: tuple[Effect, ...] = (), resources: tuple[Resource, ...] = (), fanout: FanOut | None = None,
           name: str | None = None) -> Stage:
    return Stage(id=sid, name=name or sid, file=file, line=line, definition=Location(file, line + 100),
                 reads=reads, writes=writes, resources=resources, roles=roles, fanout=fanout,
                 qualname=f"etl.{sid}")


def sample_report(t: Callable[[str], str] = lambda s: s) -> Report:
    """Two pipelines with data/control/unknown/order edges, shared resources, findings and diagnostics.

    `t` transforms every string that comes from analysed code; `hostile_report` uses it to
    inject hostile text everywhere while keeping the structure identical.
    """
    f1 = t("etl/orders_etl.py")
    engine = Resource("database", t("engine"), "sqlalchemy.engine.Engine.begin", f1, 52, True, True)
    shop = Resource("http", t("shop.example.com"), "requests.get", f1, 16)
    fx = Resource("http", t("fx.example.com"), "requests.get", f1, 24)
    v = lambda name: Effect("variable", t(name), f1, 80, key=t(name))  # noqa: E731
    main_stages = (
        _stage(t("fetch_orders"), f1, 81, roles=(t("extract"),),
               writes=(v("orders"), Effect("file", t("/data/raw/orders.json"))), resources=(shop,)),
        _stage(t("fetch_fx_rates"), f1, 82, roles=(t("extract"),), writes=(v("rates"),), resources=(fx,)),
        _stage(t("dedup"), f1, 83, roles=(t("dedup"),), reads=(v("orders"),), writes=(v("orders"),)),
        _stage(t("validate"), f1, 84, roles=(t("validate"),), reads=(v("orders"),),
               writes=(v("orders"), Effect("file", t("/data/rejects/orders.csv")))),
        _stage(t("convert"), f1, 85, roles=(t("transform"),), reads=(v("orders"), v("rates")), writes=(v("orders"),)),
        _stage(t("load"), f1, 86, roles=(t("load"),), reads=(v("orders"),),
               writes=(Effect("table", t("staging.orders")),), resources=(engine,)),
        _stage(t("refresh_customer_dim"), f1, 87, roles=(t("load"),),
               reads=(Effect("table", t("staging.customers")),), writes=(Effect("table", t("dw.customers")),),
               resources=(engine,)),
        _stage(t("publish_report"), f1, 88, roles=(t("notify"),), reads=(Effect("table", t("staging.orders")),),
               resources=(engine,)),
    )
    s = [st.id for st in main_stages]
    main = Pipeline(
        id=t("etl/orders_etl.py::main"), name=t("main"), style="plain", file=f1, line=78, stages=main_stages,
        edges=(
            Edge(s[0], s[1], "order", True),
            Edge(s[0], s[2], "data", True, (t("orders"),)),
            Edge(s[2], s[3], "data", True, (t("orders"),)),
            Edge(s[3], s[4], "data", True, (t("orders"),)),
            Edge(s[1], s[4], "data", True, (t("rates"),)),
            Edge(s[4], s[5], "data", True, (t("orders"),)),
            Edge(s[5], s[6], "order", True, (), (t("engine"),)),
            Edge(s[6], s[7], "order", True, (), (t("engine"),)),
            Edge(s[5], s[7], "data", True, (t("staging.orders"),), (t("engine"),)),
            Edge(s[3], s[7], "control", True, (t("rejects"),)),
            Edge(s[4], s[6], "unknown", False, (t("helper(conn) is unresolved"),)),
        ),
        parallel_groups=(
            ParallelGroup((s[0], s[1])),
            ParallelGroup((s[5], s[6]), (t("engine"),)),
        ),
    )

    f2 = t("dags/warehouse.py")
    api = Resource("http", t("api.example.com"), "requests.Session.get", f2, 30, False, True)
    dw = Resource("database", t("warehouse_conn"), "psycopg2.connect", f2, 41, False)
    wh_stages = (
        _stage(t("extract_accounts"), f2, 60, roles=(t("extract"),), writes=(Effect("xcom", t("accounts")),),
               resources=(api,)),
        _stage(t("extract_invoices"), f2, 61, roles=(t("extract"),), writes=(Effect("xcom", t("invoices")),),
               resources=(api,)),
        _stage(t("transform"), f2, 62, roles=(t("transform"),),
               reads=(Effect("xcom", t("accounts")), Effect("xcom", t("invoices"))),
               writes=(Effect("file", t("/tmp/ledger.parquet")),),
               fanout=FanOut("executor", t("ThreadPoolExecutor()"), 45, capped=False)),
        _stage(t("load_dw"), f2, 63, roles=(t("load"),), reads=(Effect("file", t("/tmp/ledger.parquet")),),
               writes=(Effect("table", t("dw.ledger")),), resources=(dw,)),
        _stage(t("notify"), f2, 64, roles=(t("notify"),), resources=(Resource("http", t("hooks.slack.com")),)),
    )
    w = [st.id for st in wh_stages]
    warehouse = Pipeline(
        id=t("dags/warehouse.py::warehouse_nightly"), name=t("warehouse_nightly"), style="airflow", file=f2, line=55,
        stages=wh_stages,
        edges=(
            Edge(w[0], w[1], "order", True),
            Edge(w[0], w[2], "data", True, (t("xcom accounts"),)),
            Edge(w[1], w[2], "data", True, (t("xcom invoices"),)),
            Edge(w[2], w[3], "data", True, (t("/tmp/ledger.parquet"),)),
            Edge(w[3], w[4], "control", True, (t("trigger_rule=all_success"),)),
        ),
        parallel_groups=(ParallelGroup((w[0], w[1]), (t("http: api.example.com"),)),),
    )
    pipelines = (main, warehouse)
    findings = (
        Finding("dedup-before-validation", "error",
                t("dedup keeps the first record per id before validation drops invalid ones"),
                f1, 83, "fp-dedup-1", 5, main.id, (s[2], s[3]),
                (Location(f1, 84),)),
        Finding("shared-resource-contention", "warning",
                t("extract_accounts and extract_invoices could run together but share a capacity-limited session"),
                f2, 60, "fp-contention-1", None, warehouse.id, (w[0], w[1])),
        Finding("unbounded-fanout", "warning", t("ThreadPoolExecutor() has no max_workers"), f2, 45,
                "fp-fanout-1", None, warehouse.id, (w[2],)),
        Finding("order-dependent-state", "note", t("refresh_customer_dim carries a running total across rows"),
                f1, 87, "fp-state-1", None, main.id, (s[6],)),
    )
    diagnostics = (
        Diagnostic(t("legacy/broken.py"), "syntax-error", t("invalid syntax (expected ':')"), 12),
        Diagnostic(t("data/latin1_export.py"), "encoding-error", t("not valid UTF-8 and no coding cookie")),
    )
    return Report("0.1.0", pipelines, findings, diagnostics, summarise(pipelines, findings, 4))


def hostile_report() -> Report:
    """`sample_report` with hostile text appended to every analysed string (names, ids, paths, via, messages)."""
    return sample_report(lambda s: f"{s} {HOSTILE_ALL}")


def big_report(pipelines: int = 22, long_stages: int = 80) -> Report:
    """Many small pipelines plus one long one whose stages are mostly a coincidental chain."""
    built: list[Pipeline] = []
    findings: list[Finding] = []
    for i in range(pipelines):
        n = long_stages if i == 0 else 4
        file = f"jobs/job_{i:02d}.py"
        stages = tuple(_stage(f"step_{j:03d}", file, 10 + j, roles=("transform",)) for j in range(n))
        edges = [Edge(stages[j].id, stages[j + 1].id, "order", True) for j in range(n - 1)]
        if i == 0:
            edges += [Edge("step_010", "step_011", "data", True, ("frame",)),
                      Edge("step_040", "step_070", "unknown", False, ("dynamic getattr",))]
            findings.append(Finding("dedup-before-validation", "error", "dedup before validate", file, 50,
                                    "fp-big", None, f"{file}::job_{i:02d}", ("step_040",)))
        built.append(Pipeline(f"{file}::job_{i:02d}", f"job_{i:02d}", "plain", file, 5, stages, tuple(edges), ()))
    p = tuple(built)
    return Report("0.1.0", p, tuple(findings), (), summarise(p, tuple(findings), pipelines))
