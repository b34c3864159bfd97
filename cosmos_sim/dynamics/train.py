"""Train a dynamics family (plus the state head) on a dataset's latents and export a WorldModel."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cosmos_sim.camera import CameraCoverage
from cosmos_sim.data import EpisodeDataset
from cosmos_sim.device import resolve_device
from cosmos_sim.dynamics.base import build_dynamics, get_family
from cosmos_sim.dynamics.latents import LatentWindows, load_or_build_cache, sequences
from cosmos_sim.dynamics.state_config import (  # the state flags and the twin recipe; importable from here too
    STATE_MODELS,
    DataFacts,
    StateModelConfig,
    recipe_line,
    twin_recipe,
)
from cosmos_sim.errors import DatasetError, InputError, UnknownChoiceError
from cosmos_sim.task_head import (  # the task head's training and metrics live there; importable from here too
    calibrate_task_head,
    calibration_split,
    fit_task_head,
    task_metrics,
)
from cosmos_sim.tokenizer import CausalVideoTokenizer
from cosmos_sim.tokenizer.train import split_episodes
from cosmos_sim.training import TrainConfig, Trainer
from cosmos_sim.training.checkpoint import resolve_checkpoint
from cosmos_sim.trust import calibrate_trust
from cosmos_sim.world_model import FILE, StateHead, TaskHead, WorldModel, object_slots

KIND = "dynamics"


def family_overrides(horizon: int | None = None, render_head: bool = False) -> dict:
    """A family's config fields set by `train dynamics` flags: the rollout `horizon`, the deterministic
    family's state renderer (`RENDERER_OVERRIDES`)."""
    from cosmos_sim.dynamics.deterministic import RENDERER_OVERRIDES

    return ({"horizon": horizon} if horizon else {}) | (RENDERER_OVERRIDES if render_head else {})


def dynamics_config(family: str, preset: str, tokenizer: CausalVideoTokenizer, action_dim: int, **overrides) -> dict:
    """Config dict of a family's preset for this tokenizer's latents and `action_dim` actions.

    The family's module declares its presets and the fields the data fixes (`register_family`);
    `overrides` win over both, and a field the family's config does not have is an error.
    """
    return get_family(family).preset_config(preset, tokenizer.config, action_dim, **overrides)


class DynamicsTrainee(nn.Module):
    """What the trainer optimises: the dynamics family and the state head, side by side.

    The dynamics is conditioned on the action and the (normalized) state it leads to, the way
    `WorldModel.step` runs it after the state head; the true next state comes with a little noise
    so frames stay faithful when the head's rollout drifts. The head keeps learning its own
    rollouts (from the true state at the last context frame) and the static latent reader.
    """

    def __init__(self, dynamics: nn.Module, head: StateHead, state_weight: float = 1.0, state_noise: float = 0.05):
        super().__init__()
        self.dynamics, self.head, self.state_weight, self.state_noise = dynamics, head, state_weight, state_noise

    def training_loss(self, batch):
        z, s, a = batch["latents"], batch["states"], batch["actions"]
        cond = s[:, 1:] + self.state_noise * torch.randn_like(s[:, 1:])
        loss, metrics = self.dynamics.training_loss({**batch, "actions": torch.cat([a, cond], -1)})
        static_mse = ((self.head.static(z.flatten(0, 1)) - s.flatten(0, 1)) ** 2).mean()
        K = self.dynamics.config.context
        rec = state_rollout_mse(self.head, s[:, K - 1], a[:, K - 1:], s[:, K:])
        metrics = {**metrics, "state_mse": static_mse.detach(), "state_rollout_mse": rec.detach()}
        return loss + self.state_weight * (static_mse + rec), metrics


def state_rollout_mse(head: StateHead, start: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor
                      ) -> torch.Tensor:
    """Mean squared error of the head rolled out on its own predictions: start [B, S], actions and targets
    [B, H, .]. An ensemble rolls out every member on its own predictions (inputs [K, B, ...]: each member's
    own batch; [B, ...]: one batch for all) and averages the members' errors."""
    step = head.forward_members if getattr(head, "members", 1) > 1 else head
    s, total = start, 0.0
    for j in range(targets.shape[-2]):
        s = step(s, actions[..., j, :])
        total = total + ((s - targets[..., j, :]) ** 2).mean()
    return total / targets.shape[-2]


def state_windows(cache: dict, episodes: list[int], horizon: int) -> dict[str, torch.Tensor]:
    """Every run of `horizon` steps inside the episodes: start state, next states, actions."""
    fo, so = cache["frame_offsets"].tolist(), cache["step_offsets"].tolist()
    starts, steps = [], []
    for e in episodes:
        n = so[e + 1] - so[e]
        h = min(horizon, n)
        starts += [fo[e] + t for t in range(n - h + 1)] if h == horizon else []
        steps += [so[e] + t for t in range(n - h + 1)] if h == horizon else []
    if not starts:
        raise DatasetError(f"no episode has {horizon} steps for a state window")
    f, st, ar = torch.tensor(starts), torch.tensor(steps), torch.arange(1, horizon + 1)
    return {"start": cache["states"][f], "next": cache["states"][f[:, None] + ar],
            "actions": cache["actions"][st[:, None] + ar - 1]}


def fit_state_model(head: StateHead, windows: dict[str, torch.Tensor], steps: int, batch_size: int = 256,
                    lr: float = 5e-3, seed: int = 0, device: str | torch.device = "cpu",
                    progress: bool = True) -> dict:
    """Train the head's state-space simulator on its own multi-step rollouts (states only: cheap).

    Runs before the latent training, seeded, so a restarted run repeats it exactly; a resumed run
    takes the head from its checkpoint instead.
    """
    from tqdm.auto import tqdm

    head.to(device).train()
    w = {k: v.to(device) for k, v in windows.items()}
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(head.simulator_parameters(), lr=lr, weight_decay=0.0)
    loss = torch.zeros(())
    bar = tqdm(range(steps), desc="train state model", disable=not progress, unit="step")
    for i in bar:
        if i == min(20, steps - 1):
            t_steady = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = lr * max(0.02, 1 - i / max(1, steps))
        # an ensemble's members each draw their own batch: bootstrap resampling, so they disagree off the data
        idx = torch.randint(len(w["start"]), (getattr(head, "members", 1), batch_size), generator=g).to(device)
        if idx.shape[0] == 1:
            idx = idx[0]
        loss = state_rollout_mse(head, w["start"][idx], w["actions"][idx], w["next"][idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    head.cpu()
    steady = max(1, steps - min(20, steps - 1))
    return {"state_steps": steps, "state_rollout_mse": float(loss.detach()),
            "state_update_seconds": (time.perf_counter() - t_steady) / steady if steps else 0.0}


def task_targets(episodes: EpisodeDataset) -> dict[str, torch.Tensor]:
    """Per step, in the latent cache's order: rewards [N], terminated [N] and (when the env reports it)
    success after the step [N]; `has_success` says whether any episode had a success signal. With V camera
    views the cache holds V sequences per episode, so each episode's steps repeat V times."""
    steps = [episodes.steps(i) for i in range(len(episodes))]
    return {k: torch.cat([torch.from_numpy(st[k]) for st in steps for _ in range(episodes.spec.views)])
            for k in ("rewards", "terminated", "success")} | {
        "has_success": torch.tensor(any(bool(st["has_success"]) for st in steps))}


def task_data(norm_cache: dict, targets: dict, episodes: list[int]) -> dict[str, torch.Tensor]:
    """(prev state, action, next state) and the targets of every step of `episodes` (normalized states)."""
    frames = step_frames(norm_cache, episodes)
    so = norm_cache["step_offsets"].tolist()
    steps = torch.cat([torch.arange(so[e], so[e + 1]) for e in episodes])
    return {"prev": norm_cache["states"][frames], "next": norm_cache["states"][frames + 1],
            "actions": norm_cache["actions"][steps], "rewards": targets["rewards"][steps],
            "terminated": targets["terminated"][steps].float(), "success": targets["success"][steps].float()}


def held_out_episodes(cache: dict, episodes: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(states [T+1, S], actions [T, A]) of each of `episodes` (cache sequences), in the world's units."""
    fo, so = cache["frame_offsets"].tolist(), cache["step_offsets"].tolist()
    return [(cache["states"][fo[e]:fo[e] + so[e + 1] - so[e] + 1], cache["actions"][so[e]:so[e + 1]])
            for e in episodes]


def state_model_slots(state_model: str, world) -> list[list[int]] | None:
    """The object slots the chosen state model uses (None: the MLP)."""
    if state_model not in STATE_MODELS:
        raise UnknownChoiceError("state model", state_model, STATE_MODELS)
    if state_model == "mlp":
        return None
    slots = object_slots(world.state_layout.entries)
    if not slots:
        raise InputError(f"state model 'objects' needs a world of like objects (entries <object>_<part> shared "
                         f"by two or more objects); {world.name}'s state has none: use 'mlp'")
    return slots


STATE_SEED_OFFSET = 1_000_000  # extra state episodes use seeds this far past the dataset's


def extra_state_windows(manifest: dict, episodes: int, stats: dict, horizon: int, progress: bool = False,
                        task: dict | None = None) -> dict[str, torch.Tensor]:
    """State-model windows from `episodes` state-only rollouts collected as the dataset was (same world,
    backend, policy and skill range; seeds from the dataset's base seed plus STATE_SEED_OFFSET).
    `task` (a dict) receives those episodes' steps for a reward/termination head (`task_data`'s layout)."""
    from cosmos_sim.data.collect import CollectConfig, collect_states

    c = manifest["collection"]
    cfg = CollectConfig(world=c["world"], backend=c["backend"], policy=c["policy"], skill=tuple(c["skill"]),
                        episodes=episodes, base_seed=int(c["base_seed"]) + STATE_SEED_OFFSET,
                        image_size=int(c.get("image_size", 64)))
    targets: dict | None = {} if task is not None else None
    states, actions = collect_states(cfg, progress=progress, task=targets)
    s = (torch.from_numpy(np.concatenate(states)) - stats["state_mean"]) / stats["state_std"]
    cache = state_cache(s, torch.from_numpy(np.concatenate(actions)), [len(a) for a in actions])
    eps = list(range(len(actions)))
    if task is not None:
        task.update(task_data(cache, {k: torch.from_numpy(np.concatenate(v)) for k, v in targets.items()}, eps))
    return state_windows(cache, eps, horizon)


def state_cache(states: torch.Tensor, actions: torch.Tensor, steps: list[int]) -> dict[str, torch.Tensor]:
    """Episodes of states alone laid out as a latent cache is, for `state_windows` and `step_frames`:
    flat states [sum(T_e + 1), S], actions [sum(T_e), A], `steps` the T_e of each episode in order."""
    lengths = torch.tensor([0] + [int(n) for n in steps])
    return {"states": states, "actions": actions, "step_offsets": torch.cumsum(lengths, 0),
            "frame_offsets": torch.cumsum(lengths + torch.tensor([0] + [1] * len(steps)), 0)}


def real_state_cache(model, states: np.ndarray, actions: np.ndarray, steps: list[int]) -> dict[str, torch.Tensor]:
    """`state_cache` of real episodes' flat states and actions (world units), normalized as `model` sees them."""
    s = model.normalize_state(torch.from_numpy(np.asarray(states, np.float32)).to(model.device)).cpu()
    return state_cache(s, torch.from_numpy(np.asarray(actions, np.float32)), steps)


def step_frames(cache: dict, episodes: list[int]) -> torch.Tensor:
    """Indices of the frames (states) in `episodes` that an action follows."""
    fo, so = cache["frame_offsets"].tolist(), cache["step_offsets"].tolist()
    return torch.cat([torch.arange(fo[e], fo[e] + so[e + 1] - so[e]) for e in episodes])


def normalization(cache: dict, episodes: list[int], discrete: bool) -> dict[str, torch.Tensor]:
    fo = cache["frame_offsets"].tolist()
    frames = torch.cat([torch.arange(fo[e], fo[e + 1]) for e in episodes])
    z, s = cache["latents"][frames], cache["states"][frames]
    D = z.shape[1]
    if discrete:  # FSQ codes stay on their grid
        lm, ls = torch.zeros(D, 1, 1), torch.ones(D, 1, 1)
    else:
        lm = z.mean(dim=(0, 2, 3)).view(D, 1, 1)
        ls = z.std(dim=(0, 2, 3)).clamp_min(1e-3).view(D, 1, 1)
    sm, ss = s.mean(0), s.std(0).clamp_min(1e-3)
    steps = step_frames(cache, episodes)
    step_std = ((cache["states"][steps + 1] - cache["states"][steps]) / ss).std(0).clamp_min(1e-4)
    return {"latent_mean": lm, "latent_std": ls, "state_mean": sm, "state_std": ss, "delta_scale": step_std}


def train_dynamics(data_dir: str | os.PathLike, tokenizer_path: str | os.PathLike, out: str | os.PathLike,
                   family: str = "deterministic", preset: str = "small", train_config: TrainConfig | None = None,
                   overrides: dict | None = None, resume: bool = False, device: str | None = None,
                   progress: bool = True, evaluate=None, state: StateModelConfig | None = None,
                   cross_view: bool = False, log=None) -> dict:
    """Returns the trainer's result plus `world_model` (path of the exported file).

    `state` (`StateModelConfig`): the state model, fitted first. Its `episodes` are extra episodes of states
    alone (`collect_states` with the dataset's own collection settings and seeds past its own). Its `steps`
    run before the latent training; a resumed run skips them (its head is in the checkpoint);
    `train_config.time_limit_s` covers them too: their time is taken off the trainer's. `model`: "mlp" (one
    network over the whole state) or "objects" (an interaction network over the world's like objects,
    `object_slots`; for worlds of several objects such as Drop). `members`: K > 1 trains an ensemble of K
    MLP state models on bootstrapped batches; the learned env then reports their disagreement as
    `info["uncertainty"]`. None: DEFAULT_MEMBERS for the MLP (five predict as well as one wide MLP:
    docs/benchmarks.md), one for the object-centric model. `task_steps`: updates of the
    reward/termination/success head, for a Gymnasium env's data (`TaskHead`).
    `cross_view` (data of several views): windows whose targets come from another view than their context
    (see `LatentWindows`), so the model renders the state from the pose it is told.
    """
    data_dir, out = Path(data_dir), Path(out)
    train_config = train_config or TrainConfig()
    episodes = EpisodeDataset(data_dir)
    from cosmos_sim.worlds import get_world

    world = get_world(episodes.world)
    state = state or StateModelConfig()
    slots = state_model_slots(state.model, world)
    tok_path = resolve_checkpoint(tokenizer_path)
    tokenizer = CausalVideoTokenizer.load(tok_path)
    if tokenizer.config.image_size != episodes.spec.image_size[0]:
        from cosmos_sim.errors import DatasetMismatchError

        raise DatasetMismatchError(f"tokenizer is for {tokenizer.config.image_size}px frames, "
                                   f"{data_dir} holds {episodes.spec.image_size}")
    # the dynamics is conditioned on the action and the next state (see DynamicsTrainee)
    cfg = dynamics_config(family, preset, tokenizer, world.action_dim + world.state_dim, **(overrides or {}))
    dev = resolve_device(device)
    cache = load_or_build_cache(data_dir, tokenizer, tok_path, out / "cache", device=dev, progress=progress)
    facts = None
    if world.learned_task:  # a twin or a dataset: the recipe reads the data
        first = sequences(cache, list(range(len(episodes))), "first")
        so = cache["step_offsets"]
        facts = DataFacts(steps=int(sum(int(so[e + 1] - so[e]) for e in first)), episodes=len(episodes),
                          state_dim=world.state_dim, collectable=world.simulator)
    given = state
    state = state.resolved(train_config.steps, objects=bool(slots), facts=facts)
    recipe = None if facts is None else {"facts": asdict(facts), "rule": twin_recipe(facts, train_config.steps),
                                         "given": {k: v for k, v in asdict(given).items() if v is not None},
                                         "used": asdict(state)}
    if recipe is not None and log is not None:
        log(recipe_line(recipe))
    train_eps, held = split_episodes(len(episodes))
    train_seqs, train_eps = sequences(cache, train_eps), sequences(cache, train_eps, "first")  # cache indices
    stats = normalization(cache, train_seqs, tokenizer.config.kind == "discrete")
    norm_cache = dict(cache)
    norm_cache["latents"] = (cache["latents"] - stats["latent_mean"]) / stats["latent_std"]
    norm_cache["states"] = (cache["states"] - stats["state_mean"]) / stats["state_std"]
    torch.manual_seed(train_config.seed)
    dyn = build_dynamics(family, cfg)
    K = cfg["context"]
    H = dyn.config.window - K  # frames after the context per window
    windows = LatentWindows(norm_cache, K, H, train_seqs, cross_view=cross_view)
    head = StateHead(tokenizer.config.latent_dim, tokenizer.config.latent_size, world.state_dim, world.action_dim,
                     slots=slots, members=state.members)
    head.set_statistics(stats, cache["states"], step_frames(cache, train_eps))
    state_result = {}
    extra_task: dict | None = {} if world.learned_task else None  # the extra episodes' steps, for the task head
    ckpts = sorted((out / "checkpoints").glob("step-*.safetensors"))
    if state.steps > 0 and not (resume and ckpts):
        t0 = time.perf_counter()
        runs = state_windows(norm_cache, train_eps, state.horizon)
        if state.episodes > 0:
            extra = extra_state_windows(episodes.manifest, state.episodes, stats, state.horizon, progress,
                                        task=extra_task)
            runs = {k: torch.cat([v, extra[k]]) for k, v in runs.items()}
        state_result = fit_state_model(head, runs, state.steps,
                                       seed=train_config.seed, device=dev, progress=progress)
        state_result["state_seconds"] = time.perf_counter() - t0
        state_result["state_episodes"] = state.episodes
        if train_config.time_limit_s:
            train_config = replace(train_config,
                                   time_limit_s=max(1.0, train_config.time_limit_s - state_result["state_seconds"]))
    task_head, task_result = None, {}
    if world.learned_task:  # a Gymnasium env or recorded dataset: reward, termination and success are learned
        targets = task_targets(episodes)
        task_head = TaskHead(world.state_dim, world.action_dim, has_success=bool(targets["has_success"]),
                             members=state.task_members)
        t0 = time.perf_counter()
        train_steps = task_data(norm_cache, targets, train_eps)
        if extra_task:
            train_steps = {k: torch.cat([v, extra_task[k]]) for k, v in train_steps.items()}
        task_result = fit_task_head(task_head, train_steps, steps=state.task_steps, seed=train_config.seed, device=dev,
                                    progress=progress)
        task_result["task_seconds"] = time.perf_counter() - t0
        # thresholds chosen on half the held-out episodes, accuracy reported on the other half (cosmos_sim.task_head)
        cal_eps, eval_eps = calibration_split(sequences(cache, held, "first"), seed=train_config.seed)
        calibration = calibrate_task_head(task_head, task_data(norm_cache, targets, cal_eps) if cal_eps else None)
        task_result["task_metrics"] = task_metrics(task_head, task_data(norm_cache, targets, eval_eps or train_eps),
                                                   float(train_steps["rewards"].mean()), calibration)
        if train_config.time_limit_s:  # the head's time counts against the budget too
            train_config = replace(train_config,
                                   time_limit_s=max(1.0, train_config.time_limit_s - task_result["task_seconds"]))
    trainee = DynamicsTrainee(dyn, head)
    collection = episodes.manifest.get("collection", {})
    info = {"data": str(data_dir), "tokenizer": str(tok_path), "held_out_episodes": held, "preset": preset,
            "world_hash": world.definition_hash(),
            "backend": collection.get("backend", "mujoco"), "camera": collection.get("camera", "fixed")}
    info["cross_view"] = bool(cross_view)
    if recipe is not None:
        info["recipe"] = recipe
    info["views"] = episodes.spec.views
    info["camera_coverage"] = CameraCoverage.of(info["camera"], world.default_camera, world.camera_range).to_dict()
    trainer = Trainer(trainee, windows, train_config, out, kind=KIND,
                      model_config={"family": family, "dynamics": cfg, "head": head.config}, device=device,
                      progress=progress, extra_metadata=info, evaluate=evaluate)
    result = trainer.fit(resume=resume)
    ema = trainer.ema.to("cpu")
    model = WorldModel(tokenizer.cpu(), ema.dynamics, ema.head, world=world.name,
                       state_layout=[list(e) for e in world.state_layout.entries],
                       action_names=list(world.action_names),
                       info=info | {"steps": trainer.step} | ({"task_metrics": task_result["task_metrics"]}
                                                               if task_result else {}),
                       task_head=task_head, **{k: v for k, v in stats.items() if k != "delta_scale"})
    # per-step trust: each ensemble part's disagreement along the held-out episodes (cosmos_sim.trust)
    trust = calibrate_trust(model, held_out_episodes(cache, sequences(cache, held, "first")))
    if trust is not None:
        model.info["trust"] = trust
    if trainer.rank == 0:
        result["world_model"] = str(model.save(out / FILE))
        result["parameters"] = sum(p.numel() for p in dyn.parameters())
        result.update(state_result)
        result.update(task_result)
        (out / "result.json").write_text(json.dumps({k: v for k, v in result.items() if k != "evals"}, indent=1,
                                                    default=str) + "\n")
    return result


def train_world_model(data_dir: str | os.PathLike, out: str | os.PathLike, tokenizer: str = "cv8",
                      family: str = "deterministic", preset: str = "small",
                      tokenizer_train: TrainConfig | None = None, dynamics_train: TrainConfig | None = None,
                      resume: bool = False, device: str | None = None, progress: bool = True, log=None,
                      **dynamics_kwargs) -> dict:
    """Both stages: OUT/tokenizer (a preset name), then OUT/dynamics; the world model is copied to
    OUT/world_model.safetensors. With `resume`, a finished stage is skipped and a stage cut short
    continues from its checkpoints, so re-running after an interruption picks up where it stopped.

    `dynamics_kwargs` go to `train_dynamics` (`state=StateModelConfig(...)`, `cross_view=`, `overrides=`).
    Returns the stages' results (None where skipped), their wall seconds and the world model's path.
    """
    import shutil

    from cosmos_sim.tokenizer.train import train_tokenizer

    log = log or (lambda msg: None)
    out = Path(out)
    tok_dir, dyn_dir, file = out / "tokenizer", out / "dynamics", out / FILE
    result: dict = {"tokenizer": None, "dynamics": None, "world_model": str(file)}
    t0 = time.perf_counter()
    if resume and (tok_dir / "result.json").is_file():
        log("tokenizer already trained")
    else:
        tc = tokenizer_train or TrainConfig()
        log(f"training the {tokenizer} tokenizer ({tc.steps} steps" +
            (f", at most {tc.time_limit_s / 60:g} min)" if tc.time_limit_s else ")"))
        result["tokenizer"] = train_tokenizer(data_dir, tok_dir, tokenizer, tc, progress=progress, device=device,
                                              resume=resume and (tok_dir / "checkpoints").is_dir())
    result["tokenizer_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if resume and file.is_file():
        log("world model already trained")
    else:
        tc = dynamics_train or TrainConfig()
        log(f"training {family} dynamics ({preset}) + state model ({tc.steps} steps" +
            (f", at most {tc.time_limit_s / 60:g} min)" if tc.time_limit_s else ")"))
        r = train_dynamics(data_dir, tok_dir, dyn_dir, family, preset, tc, progress=progress, device=device, log=log,
                           resume=resume and (dyn_dir / "checkpoints").is_dir(), **dynamics_kwargs)
        shutil.copyfile(r["world_model"], file)
        result["dynamics"] = r
    result["dynamics_s"] = time.perf_counter() - t0
    return result


def usage_line(data_dir: str | os.PathLike, out: str | os.PathLike, world_model: str) -> str:
    """What `cosmos-sim train` prints last: the world model trained into `out`, and how to use it."""
    from cosmos_sim.worlds.base import DATASET, GYM_ENV, world_kind

    world = EpisodeDataset(data_dir).world
    if world_kind(world) == DATASET:  # a recorded dataset's world: no simulator, no gym id
        return (f"world model: {world_model}  (compare it open loop: cosmos-sim compare --model {out} "
                f"--data {data_dir} --out REPORT; closed loop needs a simulator)")
    if world_kind(world) == GYM_ENV:
        return f"world model: {world_model}  (use it: gym.make('cosmos_sim/Learned-v0', model='{out}'))"
    return (f"world model: {world_model}  (use it: gym.make('cosmos_sim/<World>-v0', backend='world_model', "
            f"model='{out}'))")
