"""The per-task success table: rates per task and the suite's mean over tasks, by hand."""

import pytest

from embodied.rollout.task_table import format_table, task_table


def test_rates_per_task_and_the_mean_weighs_every_task_the_same():
    episodes = [{"success_once": s} for s in (True, False, True, True, False, False)]
    rows = task_table(episodes, ["a", "b", "a", "b", "a", "c"])
    assert [(r["task"], r["episodes"]) for r in rows] == [("a", 3), ("b", 2), ("c", 1), ("mean over tasks", 6)]
    assert [r["success"] for r in rows[:3]] == pytest.approx([2 / 3, 1 / 2, 0.0])
    assert rows[3]["success"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)  # 0.389, not the 0.5 of all episodes
    text = format_table(rows, "suite")
    assert "mean over tasks    0.389         6" in text


def test_one_task_has_no_mean_row_and_a_count_mismatch_is_refused():
    assert task_table([{"success_once": True}], ["Reach"]) == [{"task": "Reach", "episodes": 1, "success": 1.0}]
    with pytest.raises(ValueError, match="2 episodes but 1 task names"):
        task_table([{"success_once": True}] * 2, ["Reach"])
