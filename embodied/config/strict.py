"""Refuse config keys that no schema field reads: Hydra's ``+key=value`` adds any key, and a typo such as
``+env.num_env=4`` would otherwise be dropped without a word."""

from __future__ import annotations

import dataclasses
import typing

from omegaconf import DictConfig, OmegaConf


def unknown_keys(node: DictConfig, schema: type, prefix: str = "") -> list[str]:
    """Dotted keys of ``node`` that are not fields of the dataclass ``schema`` (recursing into dataclass fields;
    dict-typed fields such as ``policy.vision`` take any keys)."""
    hints = typing.get_type_hints(schema)
    fields = {f.name for f in dataclasses.fields(schema)}
    unknown = []
    for key in node.keys():
        if key not in fields:
            unknown.append(f"{prefix}{key}")
        elif dataclasses.is_dataclass(hints[key]) and isinstance(node[key], DictConfig):
            # the node's own dataclass: a subclass of the field's type where one was chosen (algo=grpo: GRPOConfig)
            own = OmegaConf.get_type(node[key])
            schema_of_key = own if dataclasses.is_dataclass(own) else hints[key]
            unknown += unknown_keys(node[key], schema_of_key, f"{prefix}{key}.")
    return unknown


def to_typed(cfg: DictConfig, schema: type, command: str):
    """The config as its dataclass, or a one-line exit naming the keys no field reads or the value a schema's own
    check refuses (e.g. a negative safety limit)."""
    unknown = unknown_keys(cfg, schema)
    if unknown:
        raise SystemExit(f"{command}: unknown config keys {unknown}: no setting reads them (a typo? "
                         f"`{command} --help` shows the composed config)")
    try:
        return OmegaConf.to_object(cfg)
    except ValueError as error:
        raise SystemExit(f"{command}: {error}") from None
