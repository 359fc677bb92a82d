"""The tabletop suite's tasks, instruction templates and held-out splits (LIBERO-style families in one scene).

One scene for every task: red, green and blue cubes, yellow, purple and white target discs. A task is one or two
goals; a goal moves a *subject* cube (named by colour, or by position for the spatial family) to a destination:
``place`` on a target, ``push`` to the robot's left or right, ``stack`` on another cube.

Splits (``env.split``): ``train`` runs the training tasks with the training templates; ``paraphrase`` the same
tasks worded by templates no training episode uses; ``composition`` colour x goal pairings no training task has,
worded by the training templates. Every colour, target, side and goal kind of a held-out composition appears in
training, only never together.
"""

from __future__ import annotations

from dataclasses import dataclass

CUBES = ("red", "green", "blue")
TARGETS = ("yellow", "purple", "white")
SIDES = {"left": 1.0, "right": -1.0}  # the robot's left is +y (it faces +x)
# spatial referents: how the subject is named, and which cube that is (extreme of the axis, +1 largest)
REFERENTS = {
    "leftmost": ("the leftmost cube", 1, 1.0),
    "rightmost": ("the rightmost cube", 1, -1.0),
    "nearest": ("the cube nearest the robot", 0, -1.0),
    "farthest": ("the cube farthest from the robot", 0, 1.0),
}

# (training templates, held-out paraphrases) of each goal kind; {s}: the subject, {t}: target, {side}, {b}: cube
TEMPLATES = {
    "place": (("put {s} on the {t} target", "move {s} to the {t} target", "place {s} onto the {t} target"),
              ("pick up {s} and set it down on the {t} target", "carry {s} over to the {t} target")),
    "push": (("push {s} to the {side}", "slide {s} to the {side}", "nudge {s} towards the {side}"),
             ("shove {s} over to the {side} side", "move {s} sideways to the {side} without lifting it")),
    "stack": (("stack {s} on the {b} cube", "put {s} on top of the {b} cube", "place {s} onto the {b} cube"),
              ("set {s} down on top of the {b} cube", "pile {s} onto the {b} cube")),
}
# how the two goals of a long task are joined
JOINS = (("{a}, then {b}", "first {a}, then {b}", "{a} and after that {b}"),
         ("{a}; once that is done, {b}", "begin by doing this: {a}. next, {b}"))
SPLITS = ("train", "paraphrase", "composition")


@dataclass(frozen=True)
class Goal:
    """One goal: ``kind`` (place | push | stack) moves ``subject`` (a colour, or a spatial referent) to ``to``
    (a target colour, a side, or the colour of the cube to stack on)."""

    kind: str
    subject: str
    to: str

    def text(self, template: str) -> str:
        """This goal worded by ``template``."""
        subject = REFERENTS[self.subject][0] if self.subject in REFERENTS else f"the {self.subject} cube"
        return template.format(s=subject, t=self.to, side=self.to, b=self.to)


@dataclass(frozen=True)
class SuiteTask:
    """A task of the suite: its family (spatial | object | goal | long) and one or two goals."""

    family: str
    goals: tuple[Goal, ...]

    def instruction(self, variant: int, held_out_wording: bool) -> str:
        """The instruction in wording ``variant`` (cycled) of the training or the held-out templates."""
        pick = 1 if held_out_wording else 0
        texts = [g.text(_cycle(TEMPLATES[g.kind][pick], variant)) for g in self.goals]
        if len(texts) == 1:
            return texts[0]
        return _cycle(JOINS[pick], variant).format(a=texts[0], b=texts[1])

    @property
    def name(self) -> str:
        """The canonical wording (first training template): the task's row in evaluation tables."""
        return f"{self.family}: {self.instruction(0, held_out_wording=False)}"


def _cycle(options: tuple[str, ...], variant: int) -> str:
    return options[variant % len(options)]


def _place(subject, target):
    return Goal("place", subject, target)


def _push(subject, side):
    return Goal("push", subject, side)


def _stack(subject, base):
    return Goal("stack", subject, base)


# family -> (training tasks, held-out compositions)
FAMILIES = {
    "spatial": ((SuiteTask("spatial", (_place("leftmost", "yellow"),)),
                 SuiteTask("spatial", (_place("rightmost", "purple"),)),
                 SuiteTask("spatial", (_place("nearest", "white"),)),
                 SuiteTask("spatial", (_place("farthest", "yellow"),))),
                ()),
    "object": (tuple(SuiteTask("object", (_place(c, t),)) for c, t in [
                   ("red", "yellow"), ("red", "purple"), ("green", "purple"), ("green", "white"),
                   ("blue", "yellow"), ("blue", "white")]),
               tuple(SuiteTask("object", (_place(c, t),)) for c, t in [
                   ("red", "white"), ("green", "yellow"), ("blue", "purple")])),
    "goal": ((SuiteTask("goal", (_push("red", "left"),)), SuiteTask("goal", (_push("green", "left"),)),
              SuiteTask("goal", (_push("green", "right"),)), SuiteTask("goal", (_push("blue", "right"),)),
              SuiteTask("goal", (_stack("red", "green"),)), SuiteTask("goal", (_stack("green", "blue"),)),
              SuiteTask("goal", (_stack("blue", "red"),)), SuiteTask("goal", (_stack("blue", "green"),))),
             (SuiteTask("goal", (_push("red", "right"),)), SuiteTask("goal", (_push("blue", "left"),)),
              SuiteTask("goal", (_stack("red", "blue"),)), SuiteTask("goal", (_stack("green", "red"),)))),
    "long": ((SuiteTask("long", (_place("red", "yellow"), _push("green", "right"))),
              SuiteTask("long", (_place("green", "purple"), _push("blue", "right"))),
              SuiteTask("long", (_place("blue", "white"), _push("red", "left")))),
             (SuiteTask("long", (_place("blue", "yellow"), _push("green", "left"))),)),
}
# env.suite -> its families
SUITES = {"tabletop": tuple(FAMILIES), **{f"tabletop_{family}": (family,) for family in FAMILIES}}


def suite_tasks(suite: str, split: str) -> tuple[SuiteTask, ...]:
    """The tasks of ``split`` in ``suite``; ValueError naming the choices for an unknown suite or split, or a
    split the suite has no tasks in."""
    if suite not in SUITES:
        raise ValueError(f"env.suite={suite!r} is not a suite; choose one of {sorted(SUITES)}")
    if split not in SPLITS:
        raise ValueError(f"env.split={split!r} is not a split; choose one of {list(SPLITS)}")
    held_out = split == "composition"
    tasks = tuple(task for family in SUITES[suite] for task in FAMILIES[family][held_out])
    if not tasks:
        raise ValueError(f"suite {suite!r} has no held-out compositions (its families: {list(SUITES[suite])}); "
                         f"use env.split=train or paraphrase")
    return tasks
