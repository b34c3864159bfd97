"""`cosmos-sim twin refine`: when a policy leaves the twin's data, gather real episodes with it, refit, re-rank.

The Dyna idea applied to evaluation. Each round:
1. every policy runs in the twin (`check_episodes` learned episodes); the ones whose off-data share passes the
   flag (cosmos_sim.trust) are the round's flagged policies; none flagged: done;
2. `episodes` real episodes of each flagged policy in the env itself, states alone (nothing rendered), saved as
   OUT/round_R/real.safetensors;
3. the state model and the task head are refit (from their weights, not from scratch) on the model's own data
   (when its dataset is still where the model says) and every round's real episodes; every fifth real episode
   is held out to recalibrate the trust thresholds and the termination threshold with the rest of the held-out
   data. The latent dynamics is left as it is: the states decide rewards, termination and trust.
   The refit model is OUT/round_R/world_model.safetensors.
Finally every policy runs in the env and in the last model: the ranking before and after, the flags before and
after, and the real steps it took (refine.json, refine.md).

A killed run resumes from OUT: a round's real episodes and its model are each written once, atomically, and
a round with both is not done again.
"""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cosmos_sim.config import arg
from cosmos_sim.errors import InputError
from cosmos_sim.evaluation.compare_env import EnvConfigMixin

FILE = "refine.json"
REAL = "real.safetensors"
REAL_SEED = 700_000  # real episodes of round r, policy p: seeds REAL_SEED + 10_000 r + 1000 p + i
CHECK_SEED = 50_000  # the learned episodes that measure trust (other seeds than the final ranking's)
HOLD_OUT_EVERY = 5


@dataclass(frozen=True)
class RefineConfig(EnvConfigMixin):
    env: str = arg("Reacher-v5", "the Gymnasium env id the twin was trained on")
    env_kwargs: str = arg("{}", "the env's kwargs as JSON (as collected)")
    policies: tuple[str, ...] = arg(("random",), "the policies to rank (as compare --env takes them)")
    episodes: int = arg(10, "real episodes per flagged policy and round")
    rounds: int = arg(3, "rounds at most (each: check trust, gather, refit); stops early when none is flagged")
    check_episodes: int = arg(16, "learned episodes per policy to measure its off-data share")
    rank_episodes: int = arg(30, "episodes per policy and backend for the final ranking (0: leave it out)")
    state_steps: int = arg(1500, "state-model updates per refit")
    task_steps: int = arg(1500, "task-head updates per refit")
    lr: float = arg(1e-3, "refit learning rate (the weights start from the model's)")
    seed: int = arg(0, "seeds of the final ranking (episode i: SEED+i) and of the refits")
    device: str | None = arg(None, "device of the world model (none: cuda when available)")

    def __post_init__(self):
        from cosmos_sim.evaluation.compare_env import expand_env_policies

        object.__setattr__(self, "policies", tuple(expand_env_policies(self.policies)))
        for name in ("episodes", "rounds", "check_episodes"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("rank_episodes", "state_steps", "task_steps"):
            if int(getattr(self, name)) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}")


# --- the steps ---------------------------------------------------------------------------------------------
def trust_check(world: str, model: Any, policies: list[str], episodes: int, device: str) -> dict[str, dict]:
    """Each policy's learned return and trust over `episodes` learned episodes (seeds CHECK_SEED..)."""
    from cosmos_sim.evaluation.closed_loop import evaluate_policies

    res = evaluate_policies(world, "world_model", policies, episodes=episodes, seed=CHECK_SEED, model=model,
                            device=device)
    return {p: {"return": r["return"]["mean"], **r["trust"]} for p, r in res.items()}


def gather(world: str, policies: list[str], episodes: int, round_index: int, progress: bool) -> dict[str, np.ndarray]:
    """`episodes` real episodes of each policy, states alone: flat states, actions, task targets and offsets."""
    from cosmos_sim.data.collect import CollectConfig, collect_states

    states, actions, task = [], [], {}
    for j, spec in enumerate(policies):
        cfg = CollectConfig(world=world, backend="env", policy=spec, episodes=episodes,
                            base_seed=REAL_SEED + 10_000 * round_index + 1000 * j)
        s, a = collect_states(cfg, progress=progress, task=task)
        states += s
        actions += a
    lengths = [len(a) for a in actions]
    return {"states": np.concatenate(states), "actions": np.concatenate(actions),
            "rewards": np.concatenate(task["rewards"]).astype(np.float32),
            "terminated": np.concatenate(task["terminated"]).astype(np.float32),
            "success": np.concatenate(task["success"]).astype(np.float32),
            "offsets": np.cumsum([0, *lengths]).astype(np.int64)}


def dataset_steps(data_dir: Path) -> dict[str, np.ndarray] | None:
    """The model's own dataset as `gather` lays out steps (first view of each episode); None when it is gone."""
    from cosmos_sim.data.dataset import EpisodeDataset
    from cosmos_sim.errors import CosmosSimError

    try:
        ds = EpisodeDataset(data_dir)
    except (CosmosSimError, OSError):
        return None
    eps = [ds.steps(i) for i in range(len(ds))]
    keys = ("states", "actions", "rewards", "terminated", "success")
    return {k: np.concatenate([e[k] for e in eps]).astype(np.float32) for k in keys} | {
        "offsets": np.cumsum([0, *(len(e["actions"]) for e in eps)]).astype(np.int64)}


def episodes_of(steps: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    o = steps["offsets"]
    out = []
    for e in range(len(o) - 1):
        a, b = int(o[e]), int(o[e + 1])
        out.append({"states": steps["states"][a + e:b + e + 1], "actions": steps["actions"][a:b],
                    "rewards": steps["rewards"][a:b], "terminated": steps["terminated"][a:b],
                    "success": steps["success"][a:b]})
    return out


def refit(model: Any, train: list[dict], held: list[dict], config: RefineConfig, seed: int, progress: bool) -> Any:
    """The model with its state model and task head refit on `train` episodes and its trust and termination
    thresholds recalibrated on `held` (each a dict of one episode's arrays)."""
    from cosmos_sim.dynamics.train import fit_state_model, real_state_cache, state_windows, task_data
    from cosmos_sim.task_head import calibrate_task_head, fit_task_head
    from cosmos_sim.trust import calibrate_trust

    def cache(eps: list[dict]) -> dict[str, torch.Tensor]:
        return real_state_cache(model, np.concatenate([e["states"] for e in eps]),
                                np.concatenate([e["actions"] for e in eps]), [len(e["actions"]) for e in eps])

    def targets(eps: list[dict]) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(np.concatenate([e[k] for e in eps])) for k in ("rewards", "terminated", "success")}

    c = cache(train)
    ids = list(range(len(train)))
    head = copy.deepcopy(model.state_head).requires_grad_(True)
    horizon = max(1, min(6, min(len(e["actions"]) for e in train)))
    if config.state_steps:
        fit_state_model(head, state_windows(c, ids, horizon), config.state_steps, lr=config.lr, seed=seed,
                        device=model.device, progress=progress)
    new = model.with_state_head(head.to(model.device).eval())
    new.info = dict(model.info)
    if model.task_head is not None:
        task = copy.deepcopy(model.task_head).requires_grad_(True)
        if config.task_steps:
            fit_task_head(task, task_data(c, targets(train), ids), steps=config.task_steps, lr=config.lr, seed=seed,
                          device=model.device, progress=progress, normalize=False)
        task = task.to(model.device).eval()
        if held:
            hc = cache(held)
            record = calibrate_task_head(task, task_data(hc, targets(held), list(range(len(held)))))
            new.info["refine_termination_calibration"] = record.get("termination_calibration")
        new.task_head = task
    trust = calibrate_trust(new, [(torch.from_numpy(e["states"]), torch.from_numpy(e["actions"])) for e in held])
    if trust is not None:
        new.info["trust"] = trust
    return new


# --- the loop ------------------------------------------------------------------------------------------------
def refine(config: RefineConfig, model: Any, out: str | os.PathLike, progress: bool = True) -> dict:
    from safetensors.numpy import load_file, save

    from cosmos_sim.device import resolve_device
    from cosmos_sim.envs.learned_env import load_twin_model
    from cosmos_sim.fileio import atomic_write_bytes, atomic_write_json
    from cosmos_sim.world_model import FILE as MODEL_FILE
    from cosmos_sim.world_model import WorldModel

    dev = resolve_device(config.device)
    wm, world = load_twin_model(model, dev, config.world_name)  # another env or kwargs fails here, first
    if wm.trust is None:
        from cosmos_sim.trust import NO_ENSEMBLE

        raise InputError(f"twin refine needs a model calibrated for trust: "
                         f"{NO_ENSEMBLE if wm.state_head.members == 1 else 'retrain it with this version'}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record_path = out / FILE
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    if record and record.get("config") != config.to_dict():
        raise InputError(f"{out} holds a refine run with another config: use a new --out")
    record = record or {"config": config.to_dict(), "model": str(model), "rounds": []}
    own = dataset_steps(Path(wm.info.get("data", ""))) if wm.info.get("data") else None
    own_eps = episodes_of(own) if own is not None else []
    held_own = [own_eps[i] for i in wm.info.get("held_out_episodes", []) if i < len(own_eps)]
    train_own = [e for i, e in enumerate(own_eps) if i not in set(wm.info.get("held_out_episodes", []))]
    real: list[dict] = []
    current = wm
    policies = list(config.policies)
    for r in range(config.rounds):
        rdir = out / f"round_{r}"
        done = r < len(record["rounds"])
        check = record["rounds"][r]["check"] if done else trust_check(world.name, current, policies,
                                                                       config.check_episodes, str(dev))
        flagged = [p for p in policies if check[p]["flagged"]]
        if not flagged:
            if not done:
                record["rounds"].append({"round": r, "check": check, "flagged": [], "real_steps": 0})
                atomic_write_json(record_path, record)
            break
        t0 = time.perf_counter()
        if (rdir / REAL).is_file():
            steps = load_file(rdir / REAL)
        else:
            steps = gather(world.name, flagged, config.episodes, r, progress)
            rdir.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(rdir / REAL, save(steps, metadata={"kind": "refine_real_steps", "round": str(r)}))
        eps = episodes_of(steps)
        real += eps
        if (rdir / MODEL_FILE).is_file():
            current = WorldModel.load(rdir / MODEL_FILE, device=dev)
        else:
            train = train_own + [e for i, e in enumerate(real) if i % HOLD_OUT_EVERY != HOLD_OUT_EVERY - 1]
            held = held_own + [e for i, e in enumerate(real) if i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1]
            current = refit(current, train, held, config, seed=config.seed * 1000 + r, progress=progress)
            current.info["refine"] = {"round": r, "real_episodes": len(real),
                                      "real_steps": int(sum(len(e["actions"]) for e in real)),
                                      "own_data": own is not None, "built_by": "cosmos-sim twin refine"}
            current.save(rdir / MODEL_FILE)
        if not done:
            record["rounds"].append({"round": r, "check": check, "flagged": flagged,
                                     "real_steps": int(steps["offsets"][-1]), "seconds": time.perf_counter() - t0})
            atomic_write_json(record_path, record)
    final_check = trust_check(world.name, current, policies, config.check_episodes, str(dev))
    record["final_check"] = final_check
    record["real_steps_total"] = int(sum(x["real_steps"] for x in record["rounds"]))
    record["still_flagged"] = [p for p in policies if final_check[p]["flagged"]]
    record["final_model"] = str(next((out / f"round_{x['round']}" / MODEL_FILE for x in reversed(record["rounds"])
                                      if x["flagged"]), Path(str(model))))
    if config.rank_episodes:
        record["ranking"] = rerank(world.name, wm, current, policies, config, str(dev))
    atomic_write_json(record_path, record)
    atomic_write_bytes(out / "refine.md", markdown(record).encode())
    return record


def rerank(world: str, before: Any, after: Any, policies: list[str], config: RefineConfig, device: str) -> dict:
    """Every policy's mean return in the env, in the model before and after, and the Spearman ρ of each."""
    from cosmos_sim.evaluation.closed_loop import evaluate_policies
    from cosmos_sim.evaluation.stats import correlations

    kw = {"episodes": config.rank_episodes, "seed": config.seed}
    env = evaluate_policies(world, "env", policies, **kw)
    b = evaluate_policies(world, "world_model", policies, model=before, device=device, **kw)
    a = evaluate_policies(world, "world_model", policies, model=after, device=device, **kw)
    ref = [env[p]["return"]["mean"] for p in policies]
    rows = [{"policy": p, "env": env[p]["return"]["mean"], "before": b[p]["return"]["mean"],
             "after": a[p]["return"]["mean"], "flagged_before": b[p]["trust"]["flagged"],
             "flagged_after": a[p]["trust"]["flagged"]} for p in policies]
    two = len(policies) > 1
    return {"rows": rows,
            "before": correlations(ref, [r["before"] for r in rows]) if two else None,
            "after": correlations(ref, [r["after"] for r in rows]) if two else None,
            "mae_before": float(np.mean([abs(r["before"] - r["env"]) for r in rows])),
            "mae_after": float(np.mean([abs(r["after"] - r["env"]) for r in rows]))}


def markdown(record: dict) -> str:
    from cosmos_sim.evaluation.report import na

    lines = [f"# twin refine: {record['config']['env']}", "",
             f"Model: `{record['model']}`; refit model: `{record['final_model']}`. Real steps gathered: "
             f"{record['real_steps_total']} over {sum(1 for x in record['rounds'] if x['flagged'])} round(s).", "",
             "| round | flagged | real steps |", "|---:|---|---:|"]
    for x in record["rounds"]:
        lines.append(f"| {x['round']} | {', '.join(f'`{p}`' for p in x['flagged']) or 'none'} | {x['real_steps']} |")
    lines += ["", f"Still flagged after the last refit: {', '.join(record['still_flagged']) or 'none'}.", ""]
    rk = record.get("ranking")
    if rk:
        lines += ["| policy | env return | twin before | twin after | flagged before | flagged after |",
                  "|---|---:|---:|---:|:---:|:---:|"]
        for r in rk["rows"]:
            lines.append(f"| {r['policy']} | {r['env']:.1f} | {r['before']:.1f} | {r['after']:.1f} | "
                         f"{'yes' if r['flagged_before'] else ''} | {'yes' if r['flagged_after'] else ''} |")
        lines += ["", f"Spearman ρ by return: {na((rk['before'] or {}).get('spearman'))} before, "
                      f"{na((rk['after'] or {}).get('spearman'))} after; return MAE {rk['mae_before']:.2f} before, "
                      f"{rk['mae_after']:.2f} after.", ""]
    return "\n".join(lines)


def run_command(config: RefineConfig, model: str, out: str | os.PathLike, progress: bool = True) -> list[str]:
    """`cosmos-sim twin refine`: the env and its kwargs are checked first (an unknown id fails before any work)."""
    from cosmos_sim.envs.source_env import canonical_kwargs, env_world

    env_world(config.env, json.loads(canonical_kwargs(config.env_kwargs)))
    return summary_lines(refine(config, model, out, progress=progress), out)


def summary_lines(record: dict, out: str | os.PathLike) -> list[str]:
    """What `cosmos-sim twin refine` prints."""
    from cosmos_sim.evaluation.report import na

    lines = [f"round {x['round']}: flagged {', '.join(x['flagged']) or 'none'}; {x['real_steps']} real steps"
             for x in record["rounds"]]
    lines.append(f"real steps in all: {record['real_steps_total']}; still flagged: "
                 f"{', '.join(record['still_flagged']) or 'none'}; model: {record['final_model']}")
    rk = record.get("ranking")
    if rk and rk["before"]:
        lines.append(f"Spearman by return: {na(rk['before']['spearman'])} before, {na(rk['after']['spearman'])} after; "
                     f"return MAE {rk['mae_before']:.2f} before, {rk['mae_after']:.2f} after")
    lines.append(f"report: {Path(out) / 'refine.md'}")
    return lines
