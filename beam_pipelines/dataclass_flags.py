"""Command-line flags generated from config dataclasses, and their JSON form.

`add_flags` turns every field of a config dataclass into a flag of the same
name, defaulting to the field's default, with the field's description from
the class docstring's ``Attributes:`` section as its help; `from_flags` reads
the flags back into the dataclass. `model.config` (ModelConfig, TrainConfig)
and `beam_pipelines.config` (InputConfig, PreprocessConfig) use it; it imports
nothing from either package.

How a field becomes a flag:

* `bool` (and `bool | None`, None meaning "not given"): `--name` / `--no-name`;
* `tuple[T, ...]`: comma-separated, `--name a,b`;
* anything else: read with the field's type;
* a field without a default is a required flag;
* field metadata may add `choices` (argparse's) and `type` (a parser of the
  flag's text, in place of the one above).

The help ends with "(default: ...)" unless the default is empty or None (the
description says what that means) or there is none.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing


def add_flags(parser: argparse.ArgumentParser, config_class, title: str | None = None):
    """Adds one flag per field of a config dataclass, defaulting to the field's default.

    Args:
      parser: The parser.
      config_class: The config dataclass.
      title: Title of the flags' group in `--help` (default: the class name).

    Returns:
      The argument group that holds the flags.
    """
    hints = typing.get_type_hints(config_class)
    descriptions = _attribute_docs(config_class)
    group = parser.add_argument_group(title or config_class.__name__)
    for field in dataclasses.fields(config_class):
        kind = hints[field.name]
        default = _default(field)
        help_text = descriptions.get(field.name, "")
        options = {"help": help_text, "required": True}
        if default is not dataclasses.MISSING:
            options = {"help": help_text, "default": default}
            if default not in ("", (), None):
                options["help"] = f"{help_text} (default: {_show(default)})"
        if "choices" in field.metadata:
            options["choices"] = field.metadata["choices"]
        if kind is bool or kind == bool | None:
            group.add_argument(f"--{field.name}", action=argparse.BooleanOptionalAction, **options)
        elif typing.get_origin(kind) is tuple:
            element = typing.get_args(kind)[0]
            group.add_argument(
                f"--{field.name}",
                type=field.metadata.get(
                    "type",
                    lambda text, element=element: tuple(
                        element(v) for v in text.split(",") if v.strip()
                    ),
                ),
                metavar="A,B,...",
                **options,
            )
        else:
            group.add_argument(f"--{field.name}", type=field.metadata.get("type", kind), **options)
    return group


def to_flags(values: dict) -> list[str]:
    """Returns the command-line flags (as `add_flags` reads them) that set these field values."""
    flags = []
    for name, value in values.items():
        if isinstance(value, bool):
            flags.append(f"--{name}" if value else f"--no-{name}")
        elif isinstance(value, tuple | list):
            flags.append(f"--{name}={','.join(str(v) for v in value)}")
        else:
            flags.append(f"--{name}={value}")
    return flags


def from_flags(args: argparse.Namespace, config_class):
    """Returns the config dataclass filled from parsed flags."""
    return config_class(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config_class)})


def to_json(*configs) -> str:
    """Returns one or more config dataclasses as one JSON object (their fields must not clash)."""
    values = {}
    for config in configs:
        values.update(dataclasses.asdict(config))
    return json.dumps(values, indent=2, sort_keys=True)


def from_json(text: str, config_class):
    """Rebuilds a config dataclass from `to_json` output (unknown keys are an error)."""
    return config_class(**json.loads(text))


def check_choice(name, value, choices):
    """Raises ValueError unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _default(field: dataclasses.Field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _attribute_docs(config_class) -> dict[str, str]:
    """Returns {field: description} from the class docstring's Attributes section."""
    docs, name = {}, None
    lines = (config_class.__doc__ or "").split("Attributes:", 1)[-1].splitlines()
    for line in lines:
        text = line.strip()
        head, sep, rest = text.partition(": ")
        if (
            sep
            and head.isidentifier()
            and line.startswith(" " * 6)
            and not line.startswith(" " * 8)
        ):
            name = head
            docs[name] = rest
        elif name and text:
            docs[name] += " " + text
    return {k: v.replace("%", "%%") for k, v in docs.items()}


def _show(value):
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return value
