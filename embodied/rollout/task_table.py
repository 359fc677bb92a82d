"""The per-task success table that multi-task papers report (LIBERO: one row per task, the suite's mean last)."""

from __future__ import annotations


def episode_tasks(env, task: str, num_episodes: int) -> list[str]:
    """The task of evaluation episodes 0..num_episodes-1 (reset ids 0..): a suite (LIBERO's env, or the tabletop
    env's TabletopSuite task) names it per reset id, any other env runs ``task`` in every episode."""
    describe = getattr(env, "episode_task", None) or getattr(getattr(env, "task", None), "episode_task", None)
    if describe is not None:
        return [f"{t.index}: {t.instruction}" for t in describe(range(num_episodes))]
    return [task] * num_episodes


def task_table(episodes: list[dict], tasks: list[str]) -> list[dict]:
    """Rows ``{task, episodes, success}`` (success: the share of episodes that reached success), one per task in
    first-seen order, then with several tasks ``mean over tasks`` (the suite's number: every task weighs the same)."""
    if len(episodes) != len(tasks):
        raise ValueError(f"{len(episodes)} episodes but {len(tasks)} task names")
    rows: dict[str, list[bool]] = {}
    for episode, task in zip(episodes, tasks):
        rows.setdefault(task, []).append(bool(episode["success_once"]))
    table = [{"task": task, "episodes": len(done), "success": sum(done) / len(done)} for task, done in rows.items()]
    if len(table) == 1:
        return table
    mean = sum(row["success"] for row in table) / len(table)
    return table + [{"task": "mean over tasks", "episodes": len(episodes), "success": mean}]


def format_table(rows: list[dict], title: str) -> str:
    """``rows`` as aligned text: success rate and the episode count behind it."""
    width = max(len(row["task"]) for row in rows)
    lines = [title, f"{'task':<{width}}  {'success':>7}  {'episodes':>8}"]
    lines += [f"{row['task']:<{width}}  {row['success']:>7.3f}  {row['episodes']:>8d}" for row in rows]
    return "\n".join(lines)
