"""Policies that act in any backend."""

from cosmos_sim.policies.base import Policy, RandomPolicy, batch_obs
from cosmos_sim.policies.modifiers import ModifiedPolicy
from cosmos_sim.policies.scripted import ScriptedPolicy

__all__ = ["Policy", "RandomPolicy", "batch_obs", "ScriptedPolicy", "ModifiedPolicy"]
