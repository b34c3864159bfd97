"""What the state model and a learned task head are trained with: `StateModelConfig` (the `cosmos-sim train`
state flags) and the twin recipe that fills in what it leaves None from the data (`twin_recipe`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from cosmos_sim.config import arg
from cosmos_sim.errors import InputError, UnknownChoiceError
from cosmos_sim.task_head import DEFAULT_MEMBERS as TASK_MEMBERS

STATE_MODELS = ("mlp", "objects")
DEFAULT_MEMBERS = 5  # a new MLP state model is an ensemble: it reports its uncertainty


# The twin recipe: a learned task (a Gymnasium env's twin, a recorded dataset) needs its state model and task head
# fed in proportion to the state they must learn, whatever the env: about this many transitions per state
# dimension (between the bounds), made up with unrendered episodes where a simulator can collect them, and
# updates in proportion to those transitions.
TRANSITIONS_PER_STATE_DIM = 10_000
RECIPE_TRANSITIONS = (100_000, 400_000)
RECIPE_MAX_EPISODES = 5_000
TRANSITIONS_PER_STATE_STEP, TRANSITIONS_PER_TASK_STEP = 25, 20
RECIPE_STATE_STEPS, RECIPE_TASK_STEPS = (4_000, 10_000), (3_000, 12_000)


@dataclass(frozen=True)
class DataFacts:
    """What the recipe reads off a dataset: its steps and episodes, the state's size, and whether a simulator
    can collect more (a Gymnasium env's world can; a recorded dataset's cannot)."""

    steps: int
    episodes: int
    state_dim: int
    collectable: bool

    @property
    def mean_length(self) -> float:
        return self.steps / max(1, self.episodes)


def twin_recipe(facts: DataFacts, train_steps: int) -> dict:
    """The budgets of a learned task's state model and head, from the data (see TRANSITIONS_PER_STATE_DIM): the
    transitions aimed at, the unrendered episodes that make them up, and the updates; each update count at most
    8x the trainer's steps, and the transitions no more than those updates use (a short run stays short)."""
    lo, hi = RECIPE_TRANSITIONS
    # a short run (tests, smoke runs) aims no higher than its state-model updates can use
    target = int(min(hi, max(lo, TRANSITIONS_PER_STATE_DIM * facts.state_dim),
                     TRANSITIONS_PER_STATE_STEP * 8 * train_steps))
    missing = max(0, target - facts.steps)
    episodes = min(RECIPE_MAX_EPISODES, -(-missing // max(1, round(facts.mean_length)))) if facts.collectable else 0

    def clamp(x: int, bounds: tuple[int, int]) -> int:
        return int(min(8 * train_steps, max(bounds[0], min(bounds[1], x))))

    return {"target_transitions": target, "episodes": int(episodes),
            "steps": clamp(target // TRANSITIONS_PER_STATE_STEP, RECIPE_STATE_STEPS),
            "task_steps": clamp(target // TRANSITIONS_PER_TASK_STEP, RECIPE_TASK_STEPS)}


@dataclass(frozen=True)
class StateModelConfig:
    """The state model `train_dynamics` fits first, on states alone (cheap), and a Gymnasium env's learned
    reward/termination/success head. The state model decides rewards and success, so it can learn from far
    more motion than the frames show (`episodes`). None: a default that follows the model kind and the
    trainer's steps, or, for a learned task, the twin recipe (`twin_recipe`, from the data) (`resolved`)."""

    model: str = arg("mlp", "mlp, or objects: an interaction network over like objects (Drop)")
    members: int | None = arg(None, "an ensemble of K state models, whose disagreement is info['uncertainty'] "
                                    "(none: 5 for mlp, 1 for objects)")
    steps: int | None = arg(None, "state-model updates before the latent training (none: a learned task's recipe, "
                                  "else 8x --steps, at most 4000; a resumed run skips them)")
    horizon: int = arg(6, "length of the state model's own rollouts it learns from")
    episodes: int | None = arg(None, "extra episodes of states alone (nothing rendered: cheap), collected as the "
                                     "dataset was, for the state model and a learned task head (none: a Gymnasium "
                                     "env's recipe, else 0)")
    task_steps: int | None = arg(None, "updates of a learned reward/termination/success head (none: the recipe)")
    task_members: int = arg(TASK_MEMBERS, "members of that head, whose disagreement is part of the per-step trust")

    def __post_init__(self):
        if self.model not in STATE_MODELS:
            raise UnknownChoiceError("state model", self.model, STATE_MODELS)
        if self.members is not None and self.members < 1:
            raise InputError(f"state model members must be >= 1, got {self.members}")
        if self.task_members < 1:
            raise InputError(f"task head members must be >= 1, got {self.task_members}")
        if self.episodes is not None and self.episodes < 0:
            raise InputError(f"state episodes must be >= 0, got {self.episodes}")

    def resolved(self, train_steps: int, objects: bool, facts: DataFacts | None = None) -> StateModelConfig:
        """Every None filled in, for a trainer of `train_steps` steps and an object-centric model or not; with
        `facts` (a learned task's data), the twin recipe decides the budgets left None."""
        r = twin_recipe(facts, train_steps) if facts is not None else None
        return replace(self, members=(1 if objects else DEFAULT_MEMBERS) if self.members is None else self.members,
                       steps=int(self.steps) if self.steps is not None else r["steps"] if r else
                       min(4000, 8 * train_steps),
                       episodes=int(self.episodes) if self.episodes is not None else r["episodes"] if r else 0,
                       task_steps=(int(self.task_steps) if self.task_steps is not None else r["task_steps"] if r
                                   else min(3000, max(100, 8 * train_steps))))


def recipe_line(recipe: dict) -> str:
    """The recipe's decisions in one line, as `cosmos-sim train` prints them."""
    f, u, given = recipe["facts"], recipe["used"], recipe["given"]

    def src(k: str) -> str:
        return "given" if k in given else "recipe"

    return (f"twin recipe: {f['steps']} steps in {f['episodes']} episodes, state dim {f['state_dim']} -> aim "
            f"{recipe['rule']['target_transitions']} transitions: {u['episodes']} extra state episodes "
            f"({src('episodes')}), {u['steps']} state-model updates ({src('steps')}), {u['task_steps']} task-head "
            f"updates ({src('task_steps')})")
