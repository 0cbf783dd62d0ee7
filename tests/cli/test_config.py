"""Configuration in pyproject.toml: defaults, precedence, thresholds, and errors that name the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import assert_usage_error, run_cli


def project(tmp_path: Path, table: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "kernels"\n\n{table}\n', encoding="utf-8")
    return tmp_path


def settings_of(result) -> dict:
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)["settings"]


BASE = '[tool.gelu-audit]\ndtype = "bf16"\nimpl = ["numpy-erf"]\nrange = "-1:1"\nformat = "json"\n'


def test_config_file_gives_the_defaults(tmp_path: Path) -> None:
    settings = settings_of(run_cli("accuracy", cwd=project(tmp_path, BASE)))
    assert settings["dtypes"] == ["bf16"] and settings["implementations"] == ["numpy-erf"]
    assert settings["range"] == [-1.0, 1.0]


def test_found_from_a_subdirectory(tmp_path: Path) -> None:
    inner = project(tmp_path, BASE) / "src" / "deep"
    inner.mkdir(parents=True)
    assert settings_of(run_cli("accuracy", cwd=inner))["dtypes"] == ["bf16"]


def test_precedence_command_line_then_environment_then_file(tmp_path: Path) -> None:
    root = project(tmp_path, BASE)
    env = {"GELU_AUDIT_ACCURACY_DTYPE": "fp16", "GELU_AUDIT_ACCURACY_SEED": "7"}
    from_env = settings_of(run_cli("accuracy", env=env, cwd=root))
    assert from_env["dtypes"] == ["fp16"] and from_env["seed"] == 7
    from_cli = settings_of(run_cli("accuracy", "-d", "fp32", "--samples", "50", env=env, cwd=root))
    assert from_cli["dtypes"] == ["fp32"] and from_cli["seed"] == 7 and from_cli["samples"] == 50
    built_in = settings_of(
        run_cli("accuracy", "-d", "bf16", "-i", "numpy-erf", "-f", "json", "--range", "-1:1")
    )
    assert built_in["seed"] == 0  # no file here: the built-in default


def test_explicit_config_file(tmp_path: Path) -> None:
    config = tmp_path / "audit.toml"
    config.write_text('dtype = ["fp16"]\nimpl = "numpy-erf"\nrange = [-2, 2]\nformat = "json"\ntop = 2\n')
    settings = settings_of(run_cli("accuracy", "--config", str(config)))
    assert settings["dtypes"] == ["fp16"] and settings["top"] == 2 and settings["range"] == [-2.0, 2.0]
    assert_usage_error(run_cli("accuracy", "--config", str(tmp_path / "none.toml")), "cannot read it")


@pytest.mark.parametrize(
    "table, message",
    [
        ('[tool.gelu-audit]\ndtypes = "fp16"', "[tool.gelu-audit]: unknown key 'dtypes'"),
        ('[tool.gelu-audit]\nsamples = "many"', "[tool.gelu-audit]: samples: 'many' is not a valid integer"),
        ('[tool.gelu-audit]\nagainst = "nothing"', "[tool.gelu-audit]: against:"),
        ('[tool.gelu-audit]\nno-cache = "yes"', "no-cache must be true or false"),
        ("[tool.gelu-audit.nonsense]\nx = 1", "unknown table 'nonsense'"),
        ('[tool.gelu-audit]\ndtype = "fp17"', "[tool.gelu-audit]: dtype: unknown dtype 'fp17'"),
        ("[tool.gelu-audit]\nrange = [8, -8]", "[tool.gelu-audit]: range: malformed range '8:-8'"),
        ('[tool.gelu-audit]\ndevice = "tpu"', "[tool.gelu-audit]: device: unknown device 'tpu'"),
        (
            '[tool.gelu-audit]\nreference-tier = "numpy"',
            "[tool.gelu-audit]: reference-tier: --reference-tier: unknown",
        ),
        ("[[tool.gelu-audit.threshold]]\nmax-ulps = 2", "threshold[0]: unknown key 'max-ulps'"),
        (
            "[[tool.gelu-audit.threshold]]\nmax-ulp = -1",
            "threshold[0]: max-ulp must be a non-negative number",
        ),
        ("[[tool.gelu-audit.threshold]]\ndomain = [8, -8]", "threshold[0]: domain must be [LO, HI]"),
        ('[[tool.gelu-audit.threshold]]\ndtype = "fp16"', "threshold[0]: sets no limit"),
        ('[tool.gelu-audit.speed]\nsizes = "1X"', "sizes"),
        ("[tool.gelu-audit\n", "not valid TOML"),
    ],
)
def test_bad_configuration_names_the_key(tmp_path: Path, table: str, message: str) -> None:
    command = "speed" if ".speed]" in table else "accuracy"
    assert_usage_error(run_cli(command, cwd=project(tmp_path, table)), message)


def test_thresholds_select_cases_and_fail_them(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """
[tool.gelu-audit]
dtype = "fp16"
impl = ["numpy-erf", "torch-erf-composite", "torch-gelu-tanh"]
range = "-8:8"
format = "json"

[[tool.gelu-audit.threshold]]
max-ulp = 4                       # every case

[[tool.gelu-audit.threshold]]
implementation = "torch-gelu-tanh"
against = "formula"
max-ulp = 4
domain = [-2, 8]
""",
    )
    result = run_cli("accuracy", cwd=root)
    assert result.returncode == 1
    document = json.loads(result.stdout)
    verdicts = {c["implementation"]: c["verdict"] for c in document["results"]}
    # The figures are this machine's (the composite's depend on the CPU's erf): read from the report.
    measured = {c["implementation"]: c["exact"]["max_ulp"] for c in document["results"]}
    assert verdicts["numpy-erf"]["passed"]  # float64 erf rounded once: within 4 ULP on any CPU
    assert measured["torch-erf-composite"] > 4
    composite = f"threshold [all cases]: max {measured['torch-erf-composite']:.4g} ULP > 4 (against exact)"
    assert verdicts["torch-erf-composite"]["reasons"] == [composite]
    tanh = verdicts["torch-gelu-tanh"]["reasons"]
    assert (
        tanh[0].startswith(f"threshold [all cases]: max {measured['torch-gelu-tanh']:.4g} ULP > 4")
        and len(tanh) == 2
    )
    assert tanh[1].startswith("threshold [implementation=torch-gelu-tanh]: accurate domain [-")
    assert len(document["settings"]["thresholds"]) == 2


def test_subcommand_tables(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        '[tool.gelu-audit.speed]\nsizes = "1K"\nsamples = 3\nwarmup = 0\nimpl = ["numpy-erf"]\n'
        'format = "json"\n',
    )
    result = run_cli("speed", cwd=root)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["settings"]["sizes"] == [1024]


@pytest.mark.parametrize(
    "command, table",
    [
        ("speed", {"max-slowdown": 0.1, "target": 0, "sizes": [1024, 65536]}),
        ("compare", {"max-slowdown": 0.1}),
        ("accuracy", {"chunk-size": 1048576, "samples": 2e4, "range": [-8, 8], "impl-timeout": 30}),
    ],
)
def test_numbers_are_taken_where_an_option_reads_one(command: str, table: dict[str, object]) -> None:
    """TOML numbers for the text options that mean numbers (sizes, an allowance, a chunk size)
    and a whole float for an integer: taken, as before the kinds were checked."""
    import click

    from gelu_audit.cli.config import command_defaults
    from gelu_audit.cli.main import cli

    chosen = cli.commands[command]
    assert command_defaults(chosen, click.Context(chosen), table, "pyproject.toml")
