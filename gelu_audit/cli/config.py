"""Configuration: a team's defaults and accuracy policy in ``pyproject.toml``.

``[tool.gelu-audit]`` holds defaults for the ``accuracy`` options (the same names as the long
options: ``dtype``, ``impl``, ``max-ulp``, ``impl-formula``…) and the per-case limits in
``[[tool.gelu-audit.threshold]]`` tables; ``[tool.gelu-audit.speed]``, ``.paths``, ``.plot``,
``.compare`` and ``.merge`` hold those commands' defaults. ``--config FILE`` names the file
(a ``pyproject.toml``, or a TOML file whose top level is that table); without it the nearest
``pyproject.toml`` from the working directory upward is read, if it has the table.

Precedence, highest first: the command line, the environment (``GELU_AUDIT_<COMMAND>_<OPTION>``,
e.g. ``GELU_AUDIT_ACCURACY_MAX_ULP=4``), the configuration file, the built-in default. That is
click's own order for command line, an option's ``envvar`` and ``default_map``; this module
names the variables after the config keys, builds the ``default_map``, and checks every key and
value first, so that a typo is an error naming the key instead of a silently ignored setting.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from gelu_audit.cli.options import names_nothing
from gelu_audit.errors import UsageError

TABLE = "gelu-audit"
ENV_PREFIX = "GELU_AUDIT"
SUBCOMMAND_TABLES = ("speed", "paths", "plot", "compare", "merge")
"""Sub-tables of ``[tool.gelu-audit]`` that hold another command's defaults."""
NOT_CONFIGURABLE = {"config", "help"}


def _toml() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    import tomli  # the dependency for Python 3.10

    return tomli


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` in ``start`` or a parent directory."""
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def read_table(path: Path, explicit: bool) -> dict[str, Any] | None:
    """``[tool.gelu-audit]`` of ``path``: None when a discovered pyproject.toml has no such
    table; an explicit file without ``[tool...]`` is the table itself."""
    try:
        document = _toml().loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"--config {path}: cannot read it ({error.strerror})") from None
    except ValueError as error:  # tomllib.TOMLDecodeError
        raise UsageError(f"{path}: not valid TOML ({error})") from None
    if "tool" in document:
        tool = document["tool"]
        if not isinstance(tool, dict):
            raise UsageError(f"{path}: `tool` must be a table ([tool.{TABLE}]), not {_toml_kind(tool)}")
        table = tool.get(TABLE)
        if table is None and explicit:
            raise UsageError(f"--config {path}: has no [tool.{TABLE}] table")
        if table is not None and not isinstance(table, dict):
            raise UsageError(f"{path}: tool.{TABLE} must be a table, not {_toml_kind(table)}")
        return table
    return document if explicit else None


def _toml_kind(value: Any) -> str:
    """A TOML value's kind, for an error: what the file holds, in TOML's words."""
    kinds = [(bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string")]
    kinds += [(list, "an array"), (dict, "a table")]
    for kind, words in kinds:
        if isinstance(value, kind):
            return f"{words} ({value!r})" if kind is not dict else words
    return f"a date or time ({value})"  # tomllib's datetime, date and time


def _check_toml_type(key: str, value: Any, param: click.Option, where: str) -> None:
    """A value of the kind the option takes, before click converts it: click would turn 1.7
    into the integer 1, true into 1 and 7 into the folder "7", where a file holds a mistake."""
    items = value if isinstance(value, list) else [value]
    kind = param.type
    for item in items:
        if isinstance(item, list) and not param.multiple and key != "range":
            raise UsageError(f"{where}: {key} takes one value, not a nested array")
        for leaf in item if isinstance(item, list) else [item]:
            if param.is_flag:
                continue  # checked as a boolean by the caller
            if isinstance(leaf, bool):
                ok = False
            elif isinstance(kind, click.types.IntParamType):  # (a string: click says why it is not one)
                ok = isinstance(leaf, int | str) or (isinstance(leaf, float) and leaf.is_integer())
            elif isinstance(kind, click.types.FloatParamType) or key in NUMBERS_AS_TEXT:
                ok = isinstance(leaf, int | float | str)
            else:  # names, paths, choices: a number there is a slip (cache-dir = 7 made a folder "7")
                ok = isinstance(leaf, str)
            if not ok:
                raise UsageError(f"{where}: {key}: {_toml_kind(leaf)} is not a value it takes")


def _long_name(param: click.Parameter) -> str | None:
    names = [o for o in getattr(param, "opts", []) if o.startswith("--")]
    return names[0][2:] if names else None


def command_defaults(
    command: click.Command, ctx: click.Context, table: dict[str, Any], where: str
) -> dict[str, Any]:
    """Validate ``table``'s keys against ``command``'s options and convert every value; the
    ``default_map`` for the command. Errors name the file, table and key."""
    options = {
        name: p
        for p in command.params
        if isinstance(p, click.Option)
        if (name := _long_name(p)) and p.name not in NOT_CONFIGURABLE
    }
    defaults: dict[str, Any] = {}
    for key, value in table.items():
        if key not in options:
            raise UsageError(
                f"{where}: unknown key {key!r} (the keys are the long option names: "
                f"{', '.join(sorted(options))})"
            )
        param = options[key]
        _check_toml_type(key, value, param, where)
        if isinstance(param.type, click.types.StringParamType) and names_nothing(param, value):
            raise UsageError(f"{where}: {key} = {value!r}: an empty value; leave it out for its default")
        if param.multiple:
            value = value if isinstance(value, list) else [value]
            value = [",".join(map(str, v)) if isinstance(v, list) else v for v in value]
        elif isinstance(value, list):  # range = [-8, 8] is "-8:8"; other lists comma-separate
            value = (":" if key == "range" else ",").join(map(str, value))
        if param.is_flag and not isinstance(value, bool):
            raise UsageError(f"{where}: {key} must be true or false, not {value!r}")
        try:
            converted = param.type_cast_value(ctx, value)
        except click.BadParameter as error:
            raise UsageError(f"{where}: {key}: {error.message}") from None
        if isinstance(converted, float) and converted != converted:
            raise UsageError(f"{where}: {key}: not a number")
        _check_meaning(key, converted, where)
        defaults[param.name] = converted
    return defaults


NUMBERS_AS_TEXT = ("range", "sizes", "max-slowdown", "chunk-size", "target")
"""Text options whose value may be written as a TOML number: ``sizes = 1024``,
``max-slowdown = 0.1``, ``target = 0``, ``range = [-8, 8]``."""

_PARSED = ("dtype", "device", "range", "sizes", "max-slowdown", "chunk-size", "shard", "reference-tier")


def _check_meaning(key: str, value: Any, where: str) -> None:
    """Values whose type is a string but whose meaning is checked later: check them now, so
    the error names the file and key."""
    if key not in _PARSED or value is None:
        return
    from gelu_audit.audits.exhaustive import parse_shard
    from gelu_audit.audits.speed import parse_slowdown
    from gelu_audit.cli.accuracy import reference_tier_option
    from gelu_audit.cli.options import parse_chunk_size, parse_sizes
    from gelu_audit.implementations.devices import parse_device
    from gelu_audit.numerics.formats import parse_format
    from gelu_audit.numerics.inputs import parse_range

    parsers = {
        "dtype": parse_format,
        "device": parse_device,
        "range": parse_range,
        "sizes": parse_sizes,
        "max-slowdown": parse_slowdown,
        "chunk-size": parse_chunk_size,
        "shard": parse_shard,
        "reference-tier": reference_tier_option,
    }
    try:
        for item in value if isinstance(value, (list, tuple)) else [value]:
            for part in str(item).split(",") if key in ("dtype", "device") else [item]:
                parsers[key](part)
    except UsageError as error:
        raise UsageError(f"{where}: {key}: {error}") from None


def apply_config(ctx: click.Context, path: str | None) -> None:
    """Read the configuration for ``ctx``'s command and install it as its ``default_map``;
    thresholds go to ``ctx.meta['thresholds']``."""
    from gelu_audit.audits.thresholds import parse_thresholds

    explicit = path is not None
    file = Path(path) if path is not None else find_pyproject(Path.cwd())
    ctx.meta["thresholds"] = ()
    ctx.meta["config_file"] = None
    if file is None:
        return
    table = read_table(file, explicit)
    if table is None:
        return
    if not isinstance(table, dict):
        raise UsageError(f"{file}: [tool.{TABLE}] must be a table")
    command = ctx.command.name or ""
    if command in SUBCOMMAND_TABLES:
        section = table.get(command, {})
        where = f"{file}: [tool.{TABLE}.{command}]"
    else:
        section = {k: v for k, v in table.items() if k not in SUBCOMMAND_TABLES and k != "threshold"}
        where = f"{file}: [tool.{TABLE}]"
        unknown_tables = [k for k, v in section.items() if isinstance(v, dict)]
        if unknown_tables:
            raise UsageError(
                f"{where}: unknown table {unknown_tables[0]!r} "
                f"(the sub-tables are {', '.join(SUBCOMMAND_TABLES)} and threshold)"
            )
        if "threshold" in table:
            ctx.meta["thresholds"] = parse_thresholds(table["threshold"], where)
    if not isinstance(section, dict):
        raise UsageError(f"{where}: must be a table")
    ctx.default_map = {**(ctx.default_map or {}), **command_defaults(ctx.command, ctx, section, where)}
    ctx.meta["config_file"] = str(file)


def install_environment_variables(group: click.Group) -> None:
    """Give every command option its variable, named like its config key:
    ``GELU_AUDIT_<COMMAND>_<LONG_OPTION>`` (``--max-ulp`` of ``accuracy``:
    ``GELU_AUDIT_ACCURACY_MAX_ULP``). Multiple values are separated by spaces."""
    for name, command in group.commands.items():
        for param in command.params:
            long_name = _long_name(param)
            if (
                isinstance(param, click.Option)
                and long_name
                and param.name not in NOT_CONFIGURABLE
                and not param.envvar
            ):
                param.envvar = f"{ENV_PREFIX}_{name}_{long_name}".upper().replace("-", "_")
                param.show_envvar = False


def config_option(function: Any) -> Any:
    """``--config FILE``, processed before every other option so its values become defaults."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if not ctx.resilient_parsing:
            apply_config(ctx, value)
        return value

    return click.option(
        "--config",
        metavar="FILE",
        is_eager=True,
        expose_value=False,
        callback=callback,
        help="Defaults from FILE ([tool.gelu-audit] of a pyproject.toml). "
        "Default: the nearest pyproject.toml.",
    )(function)
