"""Issue 13, items 1-4: findings that must not disappear in diff mode, baselines, SARIF and suppressions.

Every test drives the real command line (in-process, through click's runner, so the suite stays
fast) on a real git repository in a tmp dir.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
from workflow_helpers import Ran, commit, git, make_repo, shift_lines, stagegraph

from stagegraph.render.json import schema

REFUNDS = '''\
"""Weekly refunds job."""
import requests


def fetch_refunds():
    rows = requests.get("https://api.example.com/refunds").json()
    return rows


def post_summary(rows):
    requests.post("https://hooks.example.com/summary", json=rows, timeout=10)


def main():
    rows = fetch_refunds()
    post_summary(rows)
'''

#: the same job with a second remote call without a timeout inside the stage that already had one
REFUNDS_TWO_CALLS = REFUNDS.replace(
    '    return rows\n\n\ndef post_summary',
    '    rows += requests.get("https://api.example.com/chargebacks").json()\n    return rows\n\n\ndef post_summary',
    1,
)


def site_prints(report: dict[str, Any]) -> set[str]:
    """Every cause in a report: a grouped finding's sites each, any other finding's own fingerprint."""
    return {fp for f in report["findings"] for fp in f.get("site_fingerprints", [f["fingerprint"]])}


def as_json(proc: Ran) -> dict[str, Any]:
    assert proc.returncode in (0, 1), proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def test_a_second_cause_in_an_existing_finding_is_new_in_diff_mode_and_against_a_baseline(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"jobs/weekly_refunds.py": REFUNDS})
    base = as_json(stagegraph(root, "audit", ".", "--format", "json"))
    assert [f["rule"] for f in base["findings"]] == ["missing-timeout"]
    assert stagegraph(root, "baseline", ".").returncode == 0
    (root / "jobs/weekly_refunds.py").write_text(REFUNDS_TWO_CALLS, encoding="utf-8")

    diff = stagegraph(root, "audit", ".", "--diff-base", "main", "--format", "json")
    assert diff.returncode == 1, diff.stdout
    data = as_json(diff)
    assert data["delta"]["findings"] == {"new": 1, "fixed": 0, "unchanged": 1}
    assert [(f["rule"], f["line"]) for f in data["findings"]] == [("missing-timeout", 7)]
    assert "chargebacks" in data["findings"][0]["message"]

    against = stagegraph(root, "audit", ".", "--baseline", ".stagegraph-baseline.json", "--format", "json")
    assert against.returncode == 1
    assert [f["line"] for f in as_json(against)["findings"]] == [7]


def test_cause_fingerprints_survive_line_shifts_and_unrelated_edits(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"jobs/weekly_refunds.py": REFUNDS_TWO_CALLS})
    before = site_prints(as_json(stagegraph(root, "audit", ".", "--format", "json")))
    assert len(before) == 2
    edited = shift_lines(REFUNDS_TWO_CALLS, 5).replace("    post_summary(rows)\n", "    post_summary(rows)  # done\n")
    (root / "jobs/weekly_refunds.py").write_text(edited, encoding="utf-8")
    after = site_prints(as_json(stagegraph(root, "audit", ".", "--format", "json")))
    assert after == before
    diff = stagegraph(root, "audit", ".", "--diff-base", "main", "--format", "json")
    assert diff.returncode == 0 and as_json(diff)["delta"]["findings"] == {"new": 0, "fixed": 0, "unchanged": 2}


def test_identical_causes_in_one_stage_are_two_causes_of_one_finding(tmp_path: Path) -> None:
    again = '    rows = requests.get("https://api.example.com/refunds").json()\n'
    twice = REFUNDS.replace("    return rows\n\n\ndef post", again + "    return rows\n\n\ndef post", 1)
    root = make_repo(tmp_path / "repo", {"jobs/weekly_refunds.py": twice})
    data = as_json(stagegraph(root, "audit", ".", "--format", "json"))
    assert len(data["findings"]) == 1 and len(site_prints(data)) == 2


def test_sites_of_one_pipeline_are_one_finding_and_each_site_is_its_own_baseline_entry(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"jobs/weekly_refunds.py": REFUNDS_TWO_CALLS})
    data = as_json(stagegraph(root, "audit", ".", "--format", "json"))
    jsonschema.validate(data, schema())
    [finding] = data["findings"]
    assert (finding["rule"], finding["line"]) == ("missing-timeout", 6)
    assert finding["message"].endswith("(and 1 more in this pipeline: jobs/weekly_refunds.py:7)")
    assert [r["line"] for r in finding["related"]] == [7]
    assert finding["site_fingerprints"][0] == finding["fingerprint"] and len(set(finding["site_fingerprints"])) == 2
    assert stagegraph(root, "baseline", ".").returncode == 0
    entries = json.loads((root / ".stagegraph-baseline.json").read_text(encoding="utf-8"))["findings"]
    assert sorted(e["fingerprint"] for e in entries) == sorted(finding["site_fingerprints"])
    against = stagegraph(root, "audit", ".", "--baseline", ".stagegraph-baseline.json", "--format", "json")
    assert against.returncode == 0 and as_json(against)["findings"] == []


SCRAPER = '''\
"""Nightly scraper: one stage with several swallow points, and one that drops its workers' futures."""
import json
from concurrent.futures import ThreadPoolExecutor


def scrape(pages):
    rows = []
    for page in pages:
        try:
            rows.append(json.loads(page))
        except Exception:
            pass
        try:
            rows[-1]["seen"] = True
        except Exception:
            pass
    return rows


def store(row):
    with open("out.jsonl", "a") as fh:
        fh.write(json.dumps(row))


def fan_out(rows):
    with ThreadPoolExecutor(max_workers=4) as pool:
        for row in rows:
            pool.submit(store, row)
        try:
            json.dumps(rows)
        except Exception:
            pass


def main(pages):
    rows = scrape(pages)
    fan_out(rows)
'''


def test_swallow_sites_of_one_stage_are_one_finding_per_kind_of_cause(tmp_path: Path) -> None:
    """Two `except: pass` in `scrape` are one finding with two sites; in `fan_out`, the dropped future and
    the `except: pass` are different fixes, so two findings. A third site added later is new against
    the baseline, though the finding it joins is not."""
    root = make_repo(tmp_path / "repo", {"jobs/scraper.py": SCRAPER})
    data = as_json(stagegraph(root, "audit", ".", "--format", "json"))
    jsonschema.validate(data, schema())
    swallowed = [f for f in data["findings"] if f["rule"] == "swallowed-exception"]
    by_stage = sorted((tuple(f["stages"]), len(f.get("site_fingerprints", [f["fingerprint"]]))) for f in swallowed)
    assert by_stage == [(("fan_out",), 1), (("fan_out",), 1), (("scrape",), 2)]
    [scrape] = [f for f in swallowed if f["stages"] == ["scrape"]]
    assert scrape["message"].endswith("(and 1 more: jobs/scraper.py:15)")
    assert stagegraph(root, "baseline", ".").returncode == 0
    another = "    try:\n        rows.sort()\n    except Exception:\n        pass\n"
    third = SCRAPER.replace("    return rows\n\n\ndef store", another + "    return rows\n\n\ndef store", 1)
    (root / "jobs/scraper.py").write_text(third, encoding="utf-8")
    against = as_json(stagegraph(root, "audit", ".", "--baseline", ".stagegraph-baseline.json", "--format", "json"))
    assert [(f["rule"], f["line"]) for f in against["findings"]] == [("swallowed-exception", 19)]


def test_git_mv_of_a_job_file_is_not_new_findings(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"jobs/weekly_refunds.py": REFUNDS_TWO_CALLS})
    git(root, "mv", "jobs/weekly_refunds.py", "jobs/refunds_weekly.py")
    diff = stagegraph(root, "audit", ".", "--diff-base", "main", "--format", "json")
    assert diff.returncode == 0, diff.stdout
    assert as_json(diff)["delta"]["findings"] == {"new": 0, "fixed": 0, "unchanged": 2}
    # a rename plus an edit is still a rename, and the new cause is still new
    commit(root, "rename")
    (root / "jobs/refunds_weekly.py").write_text(REFUNDS_TWO_CALLS.replace(
        '    return rows\n\n\ndef post',
        '    rows += requests.get("https://api.example.com/disputes").json()\n    return rows\n\n\ndef post', 1),
        encoding="utf-8")
    git(root, "mv", "jobs/refunds_weekly.py", "jobs/refunds.py")
    diff = stagegraph(root, "audit", ".", "--diff-base", "main", "--format", "json")
    assert diff.returncode == 1
    assert as_json(diff)["delta"]["findings"] == {"new": 1, "fixed": 0, "unchanged": 2}


def test_paths_are_relative_to_the_repository_root_in_every_format(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"jobs/weekly_refunds.py": REFUNDS})
    sarif = json.loads(stagegraph(root, "audit", "jobs", "--format", "sarif").stdout)
    (result,) = sarif["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "jobs/weekly_refunds.py"
    assert "jobs/weekly_refunds.py:6:12: warning: missing-timeout" in stagegraph(root / "jobs", "audit", ".").stdout
    data = as_json(stagegraph(root / "jobs", "audit", ".", "--format", "json"))
    assert data["findings"][0]["file"] == "jobs/weekly_refunds.py"
    assert data["pipelines"][0]["id"] == "jobs/weekly_refunds.py::main"
    for fmt in ("markdown", "html"):
        assert "jobs/weekly_refunds.py" in stagegraph(root, "audit", "jobs", "--format", fmt).stdout


def test_outside_git_paths_are_relative_to_the_current_folder(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs/weekly_refunds.py").write_text(REFUNDS, encoding="utf-8")
    ceiling = {"GIT_CEILING_DIRECTORIES": str(tmp_path.parent)}
    data = as_json(stagegraph(tmp_path, "audit", "jobs", "--format", "json", env=ceiling))
    assert data["findings"][0]["file"] == "jobs/weekly_refunds.py"


def test_diff_mode_sarif_uploads_the_full_set_with_baseline_states(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"jobs/weekly_refunds.py": REFUNDS})
    (root / "jobs/weekly_refunds.py").write_text(REFUNDS_TWO_CALLS, encoding="utf-8")
    ran = stagegraph(root, "audit", ".", "--diff-base", "main", "--format", "sarif", "--out-dir", "out")
    assert ran.returncode == 1
    for text in (ran.stdout, (root / "out/report.sarif").read_text(encoding="utf-8")):
        results = json.loads(text)["runs"][0]["results"]
        states = sorted((r["locations"][0]["physicalLocation"]["region"]["startLine"], r["baselineState"])
                        for r in results)
        assert states == [(6, "unchanged"), (7, "new")]
    data_dir = Path(__file__).resolve().parent / "data"
    jsonschema.validate(json.loads(ran.stdout), json.loads((data_dir / "sarif-schema-2.1.0.json").read_text()))
    # the JSON keeps `findings` for the new ones only (the contract), and lists the others apart
    data = as_json(stagegraph(root, "audit", ".", "--diff-base", "main", "--format", "json"))
    jsonschema.validate(data, schema())
    assert [f["line"] for f in data["findings"]] == [7]
    assert [f["line"] for f in data["unchanged_findings"]] == [6]


def test_suppressions_that_do_nothing_are_reported_and_silenced_findings_counted(tmp_path: Path) -> None:
    lines = REFUNDS_TWO_CALLS.splitlines(keepends=True)
    lines[5] = lines[5].rstrip("\n") + "  # stagegraph: ignore[missing-timout]\n"  # a typo: nothing is silenced
    lines[6] = lines[6].rstrip("\n") + "  # stagegraph: ignore[missing-timeout]\n"
    lines[10] = lines[10].rstrip("\n") + "  # stagegraph: ignore[swallowed-exception]\n"  # nothing to silence
    root = make_repo(tmp_path / "repo", {"jobs/weekly_refunds.py": "".join(lines)})
    data = as_json(stagegraph(root, "audit", ".", "--format", "json"))
    assert [f["line"] for f in data["findings"]] == [6]
    assert data["summary"]["suppressed"] == 1 and [f["line"] for f in data["suppressed_findings"]] == [7]
    assert data["suppression_problems"] == [
        {"file": "jobs/weekly_refunds.py", "line": 6, "rule": "missing-timout", "problem": "unknown-rule"},
        {"file": "jobs/weekly_refunds.py", "line": 11, "rule": "swallowed-exception", "problem": "unused"},
    ]
    text = stagegraph(root, "audit", ".").stdout
    assert "1 suppressed inline" in text
    assert "jobs/weekly_refunds.py:6: stagegraph: ignore[missing-timout]: unknown rule id" in text
    assert "jobs/weekly_refunds.py:11: stagegraph: ignore[swallowed-exception]: unused suppression" in text
    results = json.loads(stagegraph(root, "audit", ".", "--format", "sarif").stdout)["runs"][0]["results"]
    assert [(r["locations"][0]["physicalLocation"]["region"]["startLine"], "suppressions" in r) for r in results] \
        == [(6, False), (7, True)]
    assert results[1]["suppressions"][0]["kind"] == "inSource"
    markdown = stagegraph(root, "audit", ".", "--format", "markdown").stdout
    assert "Suppressions that do nothing" in markdown and "missing-timout" in markdown


def test_code_spans_are_data_rendered_per_format_and_never_forged_by_analysed_text(tmp_path: Path) -> None:
    """Item 12: messages keep code spans as data; HTML draws <code>, Markdown code spans, text backticks."""
    hostile = REFUNDS.replace("https://api.example.com/refunds", "https://api.example.com/`*x*`")
    root = make_repo(tmp_path / "repo", {"jobs/weekly_refunds.py": hostile})
    data = as_json(stagegraph(root, "audit", ".", "--format", "json"))
    (finding,) = data["findings"]
    assert finding["message"].startswith("`fetch_refunds` waits without a timeout")  # the contract's field as before
    assert finding["message_parts"][0] == {"text": "fetch_refunds", "code": True}
    assert all(not p["code"] for p in finding["message_parts"][1:])  # the URL's backticks stay prose
    html = stagegraph(root, "audit", ".", "--format", "html").stdout
    assert "<td><code>fetch_refunds</code> waits without a timeout" in html
    assert "`fetch_refunds`" not in html and "<code>*x*</code>" not in html
    markdown = stagegraph(root, "audit", ".", "--format", "markdown").stdout
    assert "| `fetch_refunds` waits without a timeout" in markdown and "\\`fetch" not in markdown
    assert "\\`\\*x\\*\\`" in markdown  # analysed backticks are escaped, not a code span
    assert "`fetch_refunds` waits without a timeout" in stagegraph(root, "audit", ".").stdout


def test_sarif_rule_descriptors_come_from_the_runs_own_catalog(tmp_path: Path) -> None:
    """Item 21: every format is rendered from the Report alone, so a user's rule catalog reaches SARIF."""
    team = ('[[rule]]\nid = "missing-timeout"\nseverity = "error"\ntitle = "Team rule: every call has a timeout"\n'
            'summary = "s"\nwhy = "w"\nbad = "b"\ngood = "g"\nfix = "f"\n')
    root = make_repo(tmp_path / "repo", {"jobs/weekly_refunds.py": REFUNDS, "team_rules.toml": team,
                                         "stagegraph.toml": 'rule-catalogs = ["team_rules.toml"]\n'})
    ran = stagegraph(root, "audit", ".", "--format", "sarif")
    assert ran.returncode == 1
    run = json.loads(ran.stdout)["runs"][0]
    rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "missing-timeout")
    assert rule["shortDescription"]["text"] == "Team rule: every call has a timeout"
    assert rule["defaultConfiguration"]["level"] == "error" and run["results"][0]["level"] == "error"
