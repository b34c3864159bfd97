"""The twin recipe: a learned task's state-model and task-head budgets follow from the data, not from a table."""

from __future__ import annotations

import pytest

from cosmos_sim.dynamics.state_config import (
    RECIPE_MAX_EPISODES,
    RECIPE_TRANSITIONS,
    DataFacts,
    StateModelConfig,
    recipe_line,
    twin_recipe,
)
from cosmos_sim.errors import InputError

LONG = 100_000  # trainer steps of a real (time-boxed) run


def test_the_recipe_grows_with_the_state_and_fills_what_the_data_lacks():
    small, big = DataFacts(20_000, 400, 4, True), DataFacts(20_000, 400, 23, True)
    a, b = twin_recipe(small, LONG), twin_recipe(big, LONG)
    assert a["target_transitions"] == RECIPE_TRANSITIONS[0] and b["target_transitions"] == 230_000
    assert b["episodes"] > a["episodes"] and b["steps"] > a["steps"] and b["task_steps"] > a["task_steps"]
    # the extra episodes make up the missing transitions at the data's mean episode length
    assert a["episodes"] == -(-(RECIPE_TRANSITIONS[0] - 20_000) // 50)
    # enough data already: nothing extra; no simulator (a recorded dataset): nothing can be collected
    assert twin_recipe(DataFacts(500_000, 1000, 4, True), LONG)["episodes"] == 0
    assert twin_recipe(DataFacts(1_000, 10, 23, False), LONG)["episodes"] == 0
    assert twin_recipe(DataFacts(10, 10, 23, True), LONG)["episodes"] == RECIPE_MAX_EPISODES


def test_a_short_run_stays_short():
    r = twin_recipe(DataFacts(120, 3, 10, True), train_steps=5)
    assert r["steps"] == r["task_steps"] == 40 and r["episodes"] <= 25


def test_given_values_win_and_the_line_says_which_came_from_where():
    facts = DataFacts(20_000, 400, 10, True)
    cfg = StateModelConfig(steps=123).resolved(LONG, objects=False, facts=facts)
    rule = twin_recipe(facts, LONG)
    assert cfg.steps == 123 and cfg.episodes == rule["episodes"] and cfg.task_steps == rule["task_steps"]
    line = recipe_line({"facts": vars(facts), "rule": rule, "given": {"steps": 123}, "used": vars(cfg)})
    assert "123 state-model updates (given)" in line and f"{rule['episodes']} extra state episodes (recipe)" in line
    # a world of code (no facts): the old defaults, no extra episodes
    plain = StateModelConfig().resolved(LONG, objects=False)
    assert plain.episodes == 0 and plain.steps == 4000 and plain.task_steps == 3000
    with pytest.raises(InputError, match="state episodes"):
        StateModelConfig(episodes=-1)
    with pytest.raises(InputError, match="task head members"):
        StateModelConfig(task_members=0)
