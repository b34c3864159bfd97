"""Meta-World v3's own scripted experts as `module:callable` policies for `cosmos-sim` (the `metaworld` extra):
`metaworld_experts:push_v3` is `metaworld.policies.SawyerPushV3Policy`, acting on the env's 39-d observation.
Degrade them with the usual modifiers (`metaworld_experts:push_v3@noise=0.3`, `@speed=0.5`, `@act=0.5`).
benchmarks/twins.py puts this directory on PYTHONPATH for the commands it runs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _policy_class(name: str):
    import metaworld.policies as mp

    task, _, version = name.rpartition("_")  # "button_press_topdown_v3" -> ("button_press_topdown", "v3")
    cls = "Sawyer" + "".join(w.capitalize() for w in task.split("_")) + version.upper() + "Policy"
    if not hasattr(mp, cls):
        raise AttributeError(f"Meta-World has no scripted policy {cls} (from {name!r})")
    return getattr(mp, cls)


def __getattr__(name: str) -> Callable[[np.ndarray], np.ndarray]:
    if name.startswith("_"):
        raise AttributeError(name)
    policy = _policy_class(name)()

    def act(obs: np.ndarray) -> np.ndarray:
        return np.clip(policy.get_action(np.asarray(obs, np.float64)), -1.0, 1.0).astype(np.float32)

    act.__name__ = name
    return act
