"""Registries of algorithms, rollout collectors, advantage estimators and losses (config strings, no if/else
chains), with what each produces or needs, so that a combination that cannot work is refused before training.

An algorithm is declared in one file of this package: its loss (and advantage, if new), its config dataclass
when it has settings of its own, and an ``Algorithm`` registered under the name ``algo=<name>`` picks.
Collectors register themselves in ``embodied/rollout/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from embodied.algorithms.config import AlgoConfig
from sims.registry import Registry

ALGORITHMS = Registry("algorithm", package="embodied.algorithms", key="algo=<name>")
COLLECTORS = Registry("collector", package="embodied.rollout", key="algo.collector")
ADVANTAGES = Registry("advantage", package="embodied.algorithms", key="algo.advantage")
LOSSES = Registry("loss", package="embodied.algorithms", key="algo.loss")


def no_checks(cfg) -> list[tuple[bool, str]]:
    """An algorithm without checks of its own."""
    return []


@dataclass(frozen=True)
class Algorithm:
    """What ``algo=<name>`` trains: its config dataclass (whose defaults name its collector, advantage and loss),
    the loop that runs it and checks of its own settings. The reference policy a loss compares with follows from
    the loss (``kl_term``: a frozen copy of the starting policy when algo.kl_coef > 0; ``needs_teacher``: the saved
    policy at ``algo.teacher``, scored on its own inputs).

    trainer: "rl" (collect with the policy, update with the loss), "sft" (gradient steps on datasets) or
    "offpolicy" (env steps into a replay buffer, gradient steps on samples of it).
    checks: ``cfg -> [(ok, message naming the bad value and the fix), ...]`` over the whole TrainConfig.
    """

    name: str
    config: type = AlgoConfig
    trainer: str = "rl"
    checks: Callable = no_checks
    summary: str = ""  # one line for ``embodied-train --list``

    def __post_init__(self):
        if self.trainer not in ("rl", "sft", "offpolicy"):
            raise ValueError(f"Algorithm {self.name!r}: trainer must be 'rl', 'sft' or 'offpolicy', got {self.trainer!r}")
        if not (isinstance(self.config, type) and issubclass(self.config, AlgoConfig)):
            raise ValueError(f"Algorithm {self.name!r}: config must be AlgoConfig or a subclass of it")


def register_algorithm(algorithm: Algorithm) -> Algorithm:
    """Make ``algorithm`` selectable as ``algo=<its name>``."""
    ALGORITHMS.register(algorithm.name)(algorithm)
    return algorithm


def algorithm_of(algo_cfg) -> Algorithm:
    """The registered algorithm ``algo.name`` names, refusing another algorithm's config (an ``algo.name=<name>``
    override instead of ``algo=<name>``: it would keep the other algorithm's settings and defaults)."""
    algorithm = ALGORITHMS.lookup(algo_cfg.name)
    if not isinstance(algo_cfg, algorithm.config):
        raise ValueError(f"algo.name={algo_cfg.name} on a {type(algo_cfg).__name__}: choose the algorithm with "
                         f"algo={algo_cfg.name} (the config group, which brings its {algorithm.config.__name__}), "
                         "not algo.name")
    return algorithm


def register_collector(name: str, outputs: tuple, autoreset: bool, pipelines: bool = False) -> Callable:
    """Class decorator: make a rollout collector selectable as ``algo.collector=<name>``. ``outputs``: what it
    hands the advantage and the loss (e.g. step_rewards, returns, old_values; episode_returns), checked against
    what they need; ``autoreset``: its env resets finished episodes itself; ``pipelines``: it can run as two
    pipelined stages (``dist.pipeline_stages=2``). The class provides ``env_steps_per_iteration(algo, num_envs,
    max_episode_steps, chunk_size)``, ``share(algo, workers)`` and ``checks(cfg)``."""

    def wrap(cls):
        cls.outputs, cls.autoreset, cls.pipelines = frozenset(outputs), autoreset, pipelines
        return COLLECTORS.register(name, attribute="collector_name")(cls)

    return wrap


def register_advantage(name: str, needs: tuple = ()) -> Callable:
    """Decorator: make an advantage function selectable as ``algo.advantage=<name>``; ``needs``: the collector
    outputs it reads (a collector's ``outputs``)."""

    def wrap(fn):
        fn.needs = frozenset(needs)
        return ADVANTAGES.register(name)(fn)

    return wrap


def register_loss(name: str, needs: tuple = (), kl_term: bool = False, needs_teacher: bool = False,
                  reports_approx_kl: bool = False) -> Callable:
    """Decorator: make a loss function selectable as ``algo.loss=<name>``; ``needs``: the collector outputs its
    batch must carry (a collector's ``outputs``); ``kl_term``: it adds ``algo.kl_coef`` times a KL to a reference
    (a frozen copy of the starting policy); ``needs_teacher``: it scores actions with the policy at
    ``algo.teacher``; ``reports_approx_kl``: its stats hold ``approx_kl`` (``losses.ratio_stats``), which
    ``algo.target_kl`` reads. The batch carries ``ref_logprob`` whenever a reference or teacher is used."""

    def wrap(fn):
        fn.needs, fn.kl_term, fn.reports_approx_kl = frozenset(needs), kl_term, reports_approx_kl
        fn.needs_teacher = needs_teacher
        return LOSSES.register(name)(fn)

    return wrap


def get_advantage(name: str) -> Callable:
    """Look up a registered advantage function."""
    return ADVANTAGES.lookup(name)


def get_loss(name: str) -> Callable:
    """Look up a registered loss function."""
    return LOSSES.lookup(name)


def combination_problem(collector: str, advantage: str, loss: str, kl_coef: float = 0.0,
                        target_kl: float | None = None) -> str | None:
    """Why ``algo.collector``, ``algo.advantage``, ``algo.loss``, ``algo.kl_coef`` and ``algo.target_kl`` cannot
    work together (None if they can), naming the valid choices."""
    if collector not in COLLECTORS:
        return f"algo.collector must be one of {COLLECTORS.names()}, got {collector!r}"
    advantage_fn, loss_fn = get_advantage(advantage), get_loss(loss)  # unknown names: KeyError with the registered
    outputs = COLLECTORS.lookup(collector).outputs
    fitting = lambda table: sorted(n for n in table.names() if table.lookup(n).needs <= outputs)  # noqa: E731
    if not advantage_fn.needs <= outputs:
        return (f"algo.advantage={advantage} needs {sorted(advantage_fn.needs)}, which the {collector} collector "
                f"does not produce: with algo.collector={collector} use algo.advantage in {fitting(ADVANTAGES)}")
    if not loss_fn.needs <= outputs:
        return (f"algo.loss={loss} needs {sorted(loss_fn.needs)}, which the {collector} collector does not "
                f"produce: with algo.collector={collector} use algo.loss in {fitting(LOSSES)}")
    if kl_coef > 0 and not loss_fn.kl_term:
        kl_losses = [n for n in LOSSES.names() if LOSSES.lookup(n).kl_term]
        return (f"algo.kl_coef={kl_coef} needs a loss with a KL term ({kl_losses}); algo.loss={loss} has "
                "none, so the coefficient would be ignored: set algo.kl_coef=0 or use algo=grpo")
    if target_kl is not None and not loss_fn.reports_approx_kl:
        return (f"algo.target_kl={target_kl} stops the epochs on the loss's approx_kl, which algo.loss={loss} does "
                "not report (add losses.ratio_stats to its stats): set algo.target_kl=null")
    return None
