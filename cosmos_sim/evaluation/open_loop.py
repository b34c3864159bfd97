"""Open-loop fidelity: replay a reference trajectory's actions and cameras, score every step against it.

The one open-loop evaluator, behind the comparison report and the dynamics and camera benchmarks.
A reference (`Trajectories`) comes from physics (`record`: a policy acting in MuJoCo) or from a
dataset's held-out episodes (`from_dataset`). Candidates are trajectories of the same episodes:
the world model fed the reference's actions and cameras (`rollout_model`), another physics engine
replaying them (`replay`), or the two references a latent model is read against: copying the last
given frame (the floor to beat) and the tokenizer's reconstruction of the true frames (the ceiling).

The start is a parameter: `start="reset"` gives the model one frame, the reset frame, as an env
reset does; `start="context"` gives it its K context frames. Step h is then frame `given - 1 + h`.
`open_loop` returns per-episode, per-step metric arrays `[E, n]`; `curves` (bootstrap CIs) and
`at_horizons` (means) summarise them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from cosmos_sim.errors import InputError
from cosmos_sim.evaluation.masks import BackgroundRenderer, background_renderer
from cosmos_sim.evaluation.metrics import psnr, ssim, to_unit
from cosmos_sim.evaluation.stats import curve
from cosmos_sim.worlds import World, get_world

PSNR_CAP = 60.0  # dB; identical frames would give infinity
STARTS = ("reset", "context")


@dataclass
class Trajectories:
    """E episodes of T steps: frame t is what follows t actions (frame 0: the reset)."""

    pixels: np.ndarray  # uint8 [E, T+1, H, W, 3]
    states: np.ndarray | None  # float32 [E, T+1, S]; None where nothing predicts states (the ceiling)
    actions: np.ndarray  # float32 [E, T, A]
    extrinsics: np.ndarray  # float32 [E, T+1, 4, 4]
    fovy: np.ndarray  # float32 [E, T+1]
    rewards: np.ndarray | None = None  # [E, T]
    success: np.ndarray | None = None  # bool [E, T+1]
    seeds: list[int] | None = None

    @property
    def episodes(self) -> int:
        return self.pixels.shape[0]

    @property
    def steps(self) -> int:
        return self.actions.shape[1]


# --- references ----------------------------------------------------------------------------------
def _stack(episodes: list, world: World) -> Trajectories:
    """Trajectories from `run_episodes` results that kept pixels and the camera."""
    cams = [e.infos["camera"] for e in episodes]
    return Trajectories(
        pixels=np.stack([e.observations["pixels"] for e in episodes]),
        states=np.stack([e.observations["state"] for e in episodes]).astype(np.float32),
        actions=np.stack([e.actions for e in episodes])[..., :world.action_dim],
        extrinsics=np.array([[c.extrinsics() for c in cs] for cs in cams], dtype=np.float32),
        fovy=np.array([[c.fovy for c in cs] for cs in cams], dtype=np.float32),
        rewards=np.stack([e.rewards for e in episodes]), success=np.stack([e.success for e in episodes]),
        seeds=[e.seed for e in episodes])


def record(world: str | World, seeds: Sequence[int], steps: int, policy: str, camera: Any = None,
           image_size: int = 64, backend: str = "mujoco") -> Trajectories:
    """`policy` (a spec such as "scripted:0.75") acting in physics for exactly `steps` steps per seed.

    It keeps stepping after success: a fixed-length reference to compare step by step.
    """
    from cosmos_sim.envs.physics import make_physics_env
    from cosmos_sim.policies.registry import policy_from_spec
    from cosmos_sim.policies.rollout import run_episode

    world = get_world(world)
    env = make_physics_env(world, backend=backend, obs_mode="both", image_size=image_size, camera=camera)
    try:
        eps = [run_episode(env, policy_from_spec(policy, world, seed=s), s, steps=steps, keep_info=("camera",))
               for s in seeds]
    finally:
        env.close()
    return _stack(eps, world)


def replay(world: str | World, backend: str, ref: Trajectories, camera: Any = None,
           poses: Sequence | None = None) -> Trajectories:
    """The reference's seeds (same initial states) and actions in a physics backend.

    The camera: `camera` as given to the reference's env (the same seed draws the same pose), or
    one `CameraPose` per episode in `poses` (a new viewpoint of the same episodes).
    """
    from cosmos_sim.envs.physics import make_physics_env
    from cosmos_sim.policies.rollout import ReplayPolicy, run_episode

    if ref.seeds is None:
        raise InputError("replay needs the reference's seeds")
    world = get_world(world)
    size = ref.pixels.shape[2:4]
    env = make_physics_env(world, backend=backend, obs_mode="both", image_size=size, camera=camera)
    try:
        eps = [run_episode(env, ReplayPolicy(ref.actions[e:e + 1]), s, steps=ref.steps, keep_info=("camera",),
                           reset_options=None if poses is None else {"camera": poses[e]})
               for e, s in enumerate(ref.seeds)]
    finally:
        env.close()
    return _stack(eps, world)


def from_dataset(data_dir: str | os.PathLike, episodes: Sequence[int], steps: int) -> tuple[Trajectories, list[int]]:
    """The first `steps` steps of the listed dataset episodes that have that many; and which those are."""
    from cosmos_sim.data import EpisodeDataset

    ds = EpisodeDataset(data_dir)
    world = get_world(ds.world)
    used, eps = [], []
    for i in episodes:
        ep = ds[i]
        if len(ep["actions"]) >= steps:
            used.append(int(i))
            eps.append(ep)
    if not eps:
        raise InputError(f"no episode of {data_dir} among the {len(episodes)} given has {steps} steps")

    def cut(key: str, n: int) -> np.ndarray:
        return np.stack([ep[key][:n] for ep in eps])

    states = cut("states", steps + 1)
    return Trajectories(pixels=cut("pixels", steps + 1), states=states, actions=cut("actions", steps),
                        extrinsics=cut("extrinsics", steps + 1), fovy=cut("fovy", steps + 1),
                        rewards=cut("rewards", steps), success=np.asarray(world.success(states), bool),
                        seeds=[int(ep["metadata"]["seed"]) for ep in eps]), used


# --- candidates ----------------------------------------------------------------------------------
def given_frames(model, start: str) -> int:
    """How many true frames a rollout starts from: 1 (the reset frame) or the model's context K."""
    if start not in STARTS:
        from cosmos_sim.errors import UnknownChoiceError

        raise UnknownChoiceError("open-loop start", start, STARTS)
    return 1 if start == "reset" else model.context


@torch.no_grad()
def rollout_model(model, ref: Trajectories, start: str = "reset", zero_actions: bool = False, seed: int = 0,
                  sampling: dict | None = None) -> Trajectories:
    """The world model from the reference's first frame(s) and the true state at the last of them, then
    fed the reference's actions and cameras; all episodes in one batch. Rewards and success come from
    the world's own functions on the predicted states."""
    world = get_world(model.world)
    sampling = model.sampling_options(**(sampling or {}))  # a bad option fails here, not in the first step
    c, T = given_frames(model, start), ref.steps
    if c > T:
        raise InputError(f"the reference has {T} steps; starting from {c} frames leaves nothing to predict")
    dev = model.device
    px = torch.from_numpy(ref.pixels)
    ext, fov = torch.from_numpy(ref.extrinsics).to(dev), torch.from_numpy(ref.fovy).to(dev)
    acts = torch.from_numpy(ref.actions).to(dev)
    if zero_actions:
        acts = torch.zeros_like(acts)
    state = model.start(px[:, :c], ext[:, :c], fov[:, :c], states=torch.from_numpy(ref.states[:, c - 1]))
    g = torch.Generator(device=dev).manual_seed(seed)
    frames, states = [px[:, t] for t in range(c)], [torch.from_numpy(ref.states[:, t]) for t in range(c)]
    for t in range(c - 1, T):
        f, s = model.step(state, acts[:, t], ext[:, t + 1], fov[:, t + 1], generator=g, sampling=sampling)
        frames.append(f.cpu())
        states.append(s.cpu())
    states_np = torch.stack(states, 1).numpy()
    actions_np = acts.cpu().numpy()
    return replace(ref, pixels=torch.stack(frames, 1).numpy(), states=states_np, actions=actions_np,
                   rewards=np.asarray(world.reward(states_np[:, 1:], actions_np), np.float64),
                   success=np.asarray(world.success(states_np), bool))


def copy_last(ref: Trajectories, given: int) -> Trajectories:
    """The last given frame and state held still: what a model that predicts no change scores."""
    hold = np.arange(ref.steps + 1).clip(max=given - 1)
    return replace(ref, pixels=ref.pixels[:, hold], states=None if ref.states is None else ref.states[:, hold],
                   rewards=None, success=None)


@torch.no_grad()
def ceiling(model, ref: Trajectories) -> Trajectories:
    """The tokenizer's causal reconstruction of the true frames: the best a latent model can show."""
    from cosmos_sim.tokenizer import Stream
    from cosmos_sim.tokenizer.model import pixels_to_unit, unit_to_pixels

    x = pixels_to_unit(torch.from_numpy(ref.pixels).permute(0, 1, 4, 2, 3).to(model.device))
    rec = unit_to_pixels(model.tokenizer.decode(model.tokenizer.encode(x, Stream()), Stream()))
    return replace(ref, pixels=rec.permute(0, 1, 3, 4, 2).cpu().numpy(), states=None, rewards=None, success=None)


# --- scoring -------------------------------------------------------------------------------------
def object_masks(world: str | World, ref: Trajectories, background: BackgroundRenderer | None = None) -> np.ndarray:
    """bool [E, T+1, H, W]: the reference's object pixels (where it differs from the empty scene)."""
    bg = background or background_renderer(world, ref.pixels.shape[2:4])
    try:
        return np.stack([bg.masks(ref.pixels[e], ref.extrinsics[e], ref.fovy[e]) for e in range(ref.episodes)])
    finally:
        if background is None:
            bg.close()


def step_metrics(world: World, ref: Trajectories, other: Trajectories, masks: np.ndarray, first: int = 1
                 ) -> dict[str, np.ndarray]:
    """Per-episode, per-step metrics [E, T+1-first] of `other` against `ref`, frames first..T.

    psnr, ssim, psnr_objects (NaN where a frame shows no object), state_error/<entry> (Euclidean
    error of each state entry, in the world's units), reward_abs_error and success_agreement
    (where `other` has states, rewards and success).
    """
    a = to_unit(torch.from_numpy(ref.pixels[:, first:]))
    b = to_unit(torch.from_numpy(other.pixels[:, first:]))
    E, n = a.shape[:2]
    fa, fb, m = a.flatten(0, 1), b.flatten(0, 1), torch.from_numpy(masks[:, first:]).flatten(0, 1)
    out = {"psnr": psnr(fa, fb).clamp(max=PSNR_CAP).view(E, n).numpy(), "ssim": ssim(fa, fb).view(E, n).numpy()}
    obj = psnr(fa, fb, mask=m).clamp(max=PSNR_CAP).view(E, n).numpy()
    out["psnr_objects"] = np.where(masks[:, first:].any((-1, -2)), obj, np.nan)
    if other.states is not None:
        L = world.state_layout
        for name in L.names:
            d = L.get(other.states[:, first:], name) - L.get(ref.states[:, first:], name)
            out[f"state_error/{name}"] = np.linalg.norm(d.reshape(E, n, -1), axis=-1)
    if other.rewards is not None and ref.rewards is not None:
        out["reward_abs_error"] = np.abs(other.rewards[:, first - 1:] - ref.rewards[:, first - 1:])
    if other.success is not None and ref.success is not None:
        out["success_agreement"] = (other.success[:, first:] == ref.success[:, first:]).astype(float)
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def open_loop(world: str | World, ref: Trajectories, model=None, *, start: str = "reset",
              others: dict[str, Trajectories] | None = None, references: Sequence[str] = (),
              zero_actions: bool = False, seed: int = 0, sampling: dict | None = None,
              background: BackgroundRenderer | None = None) -> dict:
    """Score the model (as "model"), `others` and the named `references` ("copy_last", "ceiling")
    against `ref`, from the first predicted frame on.

    Returns {"given": frames the model started from, "steps": [1..n], "metrics": {name: {metric: [E, n]}},
    "trajectories": {name: Trajectories}}.
    """
    world = get_world(world)
    unknown = set(references) - {"copy_last", "ceiling"}
    if unknown:
        raise InputError(f"unknown open-loop references {sorted(unknown)}; choose from copy_last, ceiling")
    given = 1 if model is None else given_frames(model, start)
    cands: dict[str, Trajectories] = dict(others or {})
    if model is not None:
        cands["model"] = rollout_model(model, ref, start, zero_actions=zero_actions, seed=seed, sampling=sampling)
    if "copy_last" in references:
        cands["copy_last"] = copy_last(ref, given)
    if "ceiling" in references:
        if model is None:
            raise InputError("the ceiling reference needs the model's tokenizer")
        cands["ceiling"] = ceiling(model, ref)
    masks = object_masks(world, ref, background)
    return {"given": given, "steps": list(range(1, ref.steps + 2 - given)),
            "metrics": {name: step_metrics(world, ref, c, masks, first=given) for name, c in cands.items()},
            "trajectories": cands}


def curves(result: dict, seed: int = 0) -> dict[str, dict[str, dict]]:
    """Per-step mean and 95% bootstrap CI over episodes of every metric of every candidate."""
    return {name: {k: curve(v, seed=seed) for k, v in ms.items()} for name, ms in result["metrics"].items()}


def at_horizons(result: dict, horizons: Sequence[int] = (1, 4, 16, 32)) -> dict[str, dict[int, dict[str, float]]]:
    """Mean over episodes of every metric at each horizon (NaNs, e.g. frames without objects, skipped)."""
    n = len(result["steps"])
    bad = [h for h in horizons if not 1 <= h <= n]
    if bad:
        raise InputError(f"horizons {bad} outside the scored steps 1..{n}")
    out: dict[str, dict[int, dict[str, float]]] = {}
    for name, ms in result["metrics"].items():
        out[name] = {}
        for h in horizons:
            col = {k: v[:, h - 1] for k, v in ms.items()}
            out[name][h] = {k: float(np.nanmean(v)) for k, v in col.items() if np.isfinite(v).any()}
    return out


def held_out(model, data_dir: str | os.PathLike, episodes: Sequence[int], horizons: Sequence[int] = (1, 4, 16, 32),
             zero_actions: bool = False, seed: int = 0, background: BackgroundRenderer | None = None) -> dict:
    """The dynamics benchmark's view: dataset episodes long enough for every horizon, the model from
    its K context frames beside copy-last and the tokenizer ceiling; per-horizon means.

    `position_error_m` is the error of the world's first object entry (e.g. Push's block_pos).
    """
    world = get_world(model.world)
    ref, used = from_dataset(data_dir, episodes, model.context - 1 + max(horizons))
    r = at_horizons(open_loop(world, ref, model, start="context", references=("copy_last", "ceiling"),
                              zero_actions=zero_actions, seed=seed, background=background), horizons)
    entry = world.object_entries[0] if world.object_entries else None
    for per_h in r.values():
        for m in per_h.values():
            if entry is not None and f"state_error/{entry}" in m:
                m["position_error_m"] = m[f"state_error/{entry}"]
    return {"episodes": len(used), "horizons": list(horizons), "position_entry": entry,
            "zero_actions": zero_actions, **r}


# --- camera --------------------------------------------------------------------------------------
@torch.no_grad()
def camera_swap(model, data_dir: str | os.PathLike, episodes: Sequence[int], horizons: Sequence[int] = (1, 4, 16, 32),
                seed: int = 0, min_azimuth_change: float = 20.0) -> dict:
    """Does the model use its camera input? Held-out start states under a new in-range camera pose.

    Each episode is replayed in physics (same seed => same initial state, same recorded actions)
    with the camera moved to a pose B drawn from the world's range (at least `min_azimuth_change`
    degrees of azimuth from the recorded pose A). The model starts from the frames rendered at B and
    rolls out twice: told the camera is at B (`matched`), and told it is still at A (`held`). Both
    are scored against the physics frames at B; a model that uses its camera scores higher matched.
    """
    from cosmos_sim.camera import CameraPose

    world = get_world(model.world)
    K = model.context
    rec, _ = from_dataset(data_dir, episodes, K - 1 + max(horizons))
    rng = np.random.default_rng(seed)
    poses = []
    for e in range(rec.episodes):
        pose_a = CameraPose.from_extrinsics(rec.extrinsics[e, 0], float(rec.fovy[e, 0]))
        pose_b = world.camera_range.sample(rng)
        while abs(pose_b.orbit_params()[0] - pose_a.orbit_params()[0]) < min_azimuth_change:
            pose_b = world.camera_range.sample(rng)
        poses.append(pose_b)
    at_b = replay(world, model.info.get("backend", "mujoco"), rec, poses=poses)
    replayable = np.all(np.isclose(at_b.states[:, 0], rec.states[:, 0], atol=1e-5), axis=-1)
    keep = np.flatnonzero(replayable)  # others were recorded under another seed scheme
    out = {"episodes": int(len(keep)), "skipped": int(rec.episodes - len(keep)), "horizons": list(horizons)}
    if not len(keep):
        return out
    at_b = _select(at_b, keep)
    told_a = _select(rec, keep)
    # the context frames come from B in both rollouts; "held" is then told the recorded pose A
    told_a = replace(at_b, extrinsics=np.concatenate([at_b.extrinsics[:, :K], told_a.extrinsics[:, K:]], 1),
                     fovy=np.concatenate([at_b.fovy[:, :K], told_a.fovy[:, K:]], 1))
    masks = np.zeros(at_b.pixels.shape[:4], bool)
    for name, told in (("matched", at_b), ("held", told_a)):
        pred = rollout_model(model, told, "context", seed=seed)
        score = step_metrics(world, at_b, pred, masks, first=K)["psnr"]
        out[name] = {h: float(score[:, h - 1].mean()) for h in horizons}
    return out


def _select(t: Trajectories, idx: np.ndarray) -> Trajectories:
    def pick(v):
        return None if v is None else v[idx]

    return replace(t, pixels=t.pixels[idx], states=pick(t.states), actions=t.actions[idx],
                   extrinsics=t.extrinsics[idx], fovy=t.fovy[idx], rewards=pick(t.rewards), success=pick(t.success),
                   seeds=None if t.seeds is None else [t.seeds[i] for i in idx])
