"""Registries that map config strings to advantage estimators and losses (no if/else chains), with what each
needs from the rollout collector, so that a combination that cannot work is refused before training."""

from __future__ import annotations

from typing import Callable

ADVANTAGES: dict[str, Callable] = {}
LOSSES: dict[str, Callable] = {}
# what each collector hands the advantage and the loss: fixed-length step rollouts (per-step rewards, values,
# episode ends) or whole episode groups from identical resets (one return per episode, no critic values)
COLLECTOR_OUTPUTS = {"steps": {"step_rewards", "returns", "old_values"}, "groups": {"episode_returns"}}
ADVANTAGE_INPUTS: dict[str, set] = {}
LOSS_INPUTS: dict[str, set] = {}
KL_LOSSES: set[str] = set()  # losses that add algo.kl_coef * KL(policy || reference)


def register_advantage(name: str, needs: tuple = ()) -> Callable:
    """Decorator: make an advantage function selectable as ``algo.advantage=<name>``; ``needs``: the collector
    outputs it reads (``COLLECTOR_OUTPUTS``)."""

    def wrap(fn):
        ADVANTAGES[name], ADVANTAGE_INPUTS[name] = fn, set(needs)
        return fn

    return wrap


def register_loss(name: str, needs: tuple = (), kl_term: bool = False) -> Callable:
    """Decorator: make a loss function selectable as ``algo.loss=<name>``; ``needs``: the collector outputs its
    batch must carry (``COLLECTOR_OUTPUTS``); ``kl_term``: it adds ``algo.kl_coef`` times a KL to a reference."""

    def wrap(fn):
        LOSSES[name], LOSS_INPUTS[name] = fn, set(needs)
        if kl_term:
            KL_LOSSES.add(name)
        return fn

    return wrap


def get_advantage(name: str) -> Callable:
    """Look up a registered advantage function."""
    if name not in ADVANTAGES:
        raise KeyError(f"unknown advantage {name!r}; registered: {sorted(ADVANTAGES)}")
    return ADVANTAGES[name]


def get_loss(name: str) -> Callable:
    """Look up a registered loss function."""
    if name not in LOSSES:
        raise KeyError(f"unknown loss {name!r}; registered: {sorted(LOSSES)}")
    return LOSSES[name]


def combination_problem(collector: str, advantage: str, loss: str, kl_coef: float = 0.0) -> str | None:
    """Why ``algo.collector``, ``algo.advantage``, ``algo.loss`` and ``algo.kl_coef`` cannot work together (None
    if they can), naming the valid choices."""
    if collector not in COLLECTOR_OUTPUTS:
        return f"algo.collector must be one of {sorted(COLLECTOR_OUTPUTS)}, got {collector!r}"
    get_advantage(advantage), get_loss(loss)  # unknown names: KeyError with the registered ones
    outputs = COLLECTOR_OUTPUTS[collector]
    fitting = lambda table: sorted(n for n, needs in table.items() if needs <= outputs)  # noqa: E731
    if not ADVANTAGE_INPUTS[advantage] <= outputs:
        return (f"algo.advantage={advantage} needs {sorted(ADVANTAGE_INPUTS[advantage])}, which the {collector} "
                f"collector does not produce: with algo.collector={collector} use algo.advantage in "
                f"{fitting(ADVANTAGE_INPUTS)}")
    if not LOSS_INPUTS[loss] <= outputs:
        return (f"algo.loss={loss} needs {sorted(LOSS_INPUTS[loss])}, which the {collector} collector does not "
                f"produce: with algo.collector={collector} use algo.loss in {fitting(LOSS_INPUTS)}")
    if kl_coef > 0 and loss not in KL_LOSSES:
        return (f"algo.kl_coef={kl_coef} needs a loss with a KL term ({sorted(KL_LOSSES)}); algo.loss={loss} has "
                "none, so the coefficient would be ignored: set algo.kl_coef=0 or use algo=grpo")
    return None
