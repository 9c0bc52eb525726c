"""Configuration: discovery by walking up, both file forms, strict keys and rule ids, CLI precedence, sources."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from stagegraph.cli import main
from stagegraph.config import ConfigError, Overrides, find_config_file, load_config


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_pyproject_table_is_found_from_a_subfolder_and_paths_are_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    config_file = _write(tmp_path / "pyproject.toml", """
[project]
name = "x"

[tool.stagegraph]
include = ["src"]
exclude = ["*_test.py"]
rule-catalogs = ["catalogs/rules-extra.toml"]
disable = ["coincidental-order"]
severity = { "missing-timeout" = "error" }
fail-on = "error"
max-file-bytes = 1000
out-dir = "reports"
baseline = ".stagegraph-baseline.json"
""")
    _write(tmp_path / "catalogs/rules-extra.toml", "")
    sub = tmp_path / "src" / "etl"
    sub.mkdir(parents=True)
    config = load_config(sub)
    assert config.file == config_file
    assert config.include == (tmp_path / "src",)
    assert config.exclude == ("*_test.py",)
    assert config.rule_catalogs == (tmp_path / "catalogs/rules-extra.toml",)
    assert config.disable == frozenset({"coincidental-order"})
    assert config.severity == {"missing-timeout": "error"}
    assert config.fail_on == "error"
    assert config.max_file_bytes == 1000
    assert config.out_dir == tmp_path / "reports"
    assert config.baseline == tmp_path / ".stagegraph-baseline.json"
    assert config.sources["fail-on"].endswith("pyproject.toml:tool.stagegraph.fail-on")
    assert config.sources["role-catalogs"] == "default"
    options = config.options()
    assert options.disabled_rules == frozenset({"coincidental-order"})
    assert options.severities == {"missing-timeout": "error"}
    assert options.max_file_bytes == 1000
    assert options.extra_rules == (tmp_path / "catalogs/rules-extra.toml",)


def test_standalone_file_wins_over_pyproject_in_the_same_folder(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    _write(tmp_path / "pyproject.toml", '[tool.stagegraph]\nfail-on = "note"\n')
    standalone = _write(tmp_path / "stagegraph.toml", 'fail-on = "error"\n')
    config = load_config(tmp_path)
    assert config.file == standalone
    assert config.fail_on == "error"
    assert config.sources["fail-on"].endswith("stagegraph.toml:fail-on")


def test_pyproject_without_our_table_is_skipped_and_search_stops_at_the_repo_root(tmp_path: Path) -> None:
    _write(tmp_path / "stagegraph.toml", 'fail-on = "error"\n')  # above the repo: must not apply
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    _write(repo / "pyproject.toml", '[project]\nname = "x"\n')
    assert find_config_file(repo) is None
    assert load_config(repo).fail_on == "warning"


def test_unknown_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    _write(tmp_path / "pyproject.toml", '[tool.stagegraph]\nfail_on = "error"\n')
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert "'tool.stagegraph.fail_on'" in str(info.value)
    assert "pyproject.toml" in str(info.value)


def test_unknown_key_is_exit_2_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    _write(tmp_path / "stagegraph.toml", 'colour = "blue"\n')
    result = CliRunner().invoke(main, ["audit", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown key 'colour'" in result.output
    assert "stagegraph.toml" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('disable = ["dedup-before-validaton"]\n', "unknown rule id 'dedup-before-validaton'"),
        ('[severity]\n"no-such-rule" = "error"\n', "unknown rule id 'no-such-rule'"),
        ('[severity]\n"missing-timeout" = "fatal"\n', "must be one of error, warning, note"),
        ('fail-on = "sometimes"\n', "fail-on must be one of"),
        ("max-file-bytes = -1\n", "max-file-bytes must be a positive integer"),
        ('exclude = "*.py"\nbaseline = 3\n', "baseline must be a path"),
        ("include = [1]\n", "include must be a list of strings"),
        ("fail-on = \n", "invalid TOML"),
    ],
)
def test_bad_values_are_errors_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / ".git").mkdir()
    _write(tmp_path / "stagegraph.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert message in str(info.value)
    assert "stagegraph.toml" in str(info.value)


def test_command_line_overrides_scalars_and_adds_to_lists(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    _write(tmp_path / "stagegraph.toml", """
fail-on = "error"
exclude = ["legacy/*"]
disable = ["coincidental-order"]
[severity]
"missing-timeout" = "note"
""")
    config = load_config(tmp_path, overrides=Overrides(
        fail_on="note", exclude=("gen/*",), disable=("unbounded-fanout",),
        severity={"missing-timeout": "error", "swallowed-exception": "warning"}, max_file_bytes=5,
    ))
    assert config.fail_on == "note"
    assert config.sources["fail-on"] == "command line"
    assert config.exclude == ("legacy/*", "gen/*")
    assert config.sources["exclude"].endswith("stagegraph.toml:exclude + command line")
    assert config.disable == frozenset({"coincidental-order", "unbounded-fanout"})
    assert config.severity == {"missing-timeout": "error", "swallowed-exception": "warning"}
    assert config.max_file_bytes == 5
    assert config.sources["max-file-bytes"] == "command line"


def test_explicit_config_file_is_used_and_a_missing_one_is_an_error(tmp_path: Path) -> None:
    chosen = _write(tmp_path / "elsewhere" / "ci.toml", 'fail-on = "never"\n')
    assert load_config(tmp_path, chosen).fail_on == "never"
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path, tmp_path / "nope.toml")


def test_config_command_prints_values_and_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".git").mkdir()
    _write(tmp_path / "pyproject.toml", '[tool.stagegraph]\nfail-on = "error"\nexclude = ["legacy/*"]\n')
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["config", "."])
    assert result.exit_code == 0, result.output
    lines = {line.split("=")[0].strip(): line for line in result.output.splitlines() if "=" in line}
    assert '"error"' in lines["fail-on"] and "# pyproject.toml:tool.stagegraph.fail-on" in lines["fail-on"]
    assert '["legacy/*"]' in lines["exclude"]
    assert "# default" in lines["max-file-bytes"] and "2000000" in lines["max-file-bytes"]
    assert result.output.startswith("# configuration file: pyproject.toml")


def test_audit_show_config_reflects_flags_and_does_not_analyse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".git").mkdir()
    _write(tmp_path / "stagegraph.toml", 'fail-on = "error"\n')
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["audit", "--show-config", "--fail-on", "note",
                                       "--severity", "missing-timeout=error", "--disable", "unbounded-fanout"])
    assert result.exit_code == 0, result.output
    assert 'fail-on            = "note"' in result.output
    assert "# command line" in result.output
    assert "missing-timeout = \"error\"" in result.output
    assert "pipelines" not in result.output


def test_bad_severity_flag_is_a_usage_error(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["audit", str(tmp_path), "--severity", "missing-timeout"])
    assert result.exit_code == 2
    assert "expected RULE=LEVEL" in result.output
    result = runner.invoke(main, ["audit", str(tmp_path), "--severity", "missing-timeout=loud"])
    assert result.exit_code == 2
    assert "level must be one of" in result.output
    result = runner.invoke(main, ["audit", str(tmp_path), "--disable", "no-such-rule"])
    assert result.exit_code == 2
    assert "unknown rule id 'no-such-rule'" in result.output


def test_include_is_the_default_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".git").mkdir()
    _write(tmp_path / "stagegraph.toml", 'include = ["src"]\n')
    _write(tmp_path / "src" / "a.py", "x = 1\n")
    _write(tmp_path / "other" / "b.py", "y = 2\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["audit", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert '"files_analysed": 1' in result.output
