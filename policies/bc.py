"""Behaviour cloning: a small CNN (and/or state MLP) policy regressed onto a dataset's actions.

Trained with the shared trainer (AdamW, warm-up + cosine, EMA, safetensors checkpoints, exact
resume); the EMA network is exported as `RUN/policy.safetensors`, loadable with `load_policy`.
Episodes can be filtered to successful ones, so a dataset of mixed-skill experts teaches the
skilled behaviour.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from cosmos_sim.config import arg
from cosmos_sim.envs.camera_obs import pose_features
from cosmos_sim.policies.networks import ObsEncoder, encoder_options
from cosmos_sim.policies.saved import FILE, register_policy_kind, save_policy
from cosmos_sim.training import TrainConfig

KIND = "bc"
RELABELS = ("none", "expert")


@dataclass(frozen=True)
class BCConfig:
    obs_mode: str = arg("state", "what the policy sees: state, pixels or both")
    hidden: int = arg(128, "hidden width of the network")
    encoder: str = arg("impala", "pixel encoder: impala (IMPALA's residual CNN) or small (three convolutions)")
    frame_stack: int = arg(2, "frames a pixel policy sees at once (the last k; motion shows from 2)")
    augment: str = arg("shift", "pixel augmentation in training: shift (DrQ's random shift) or none")
    camera_input: str = arg("auto", "give a pixel policy the camera pose: auto (when the data's cameras vary), "
                                    "yes or no")
    successful_only: bool = arg(True, "clone only episodes that reached the goal (not with relabel=expert)")
    relabel: str = arg("none", "none: clone the recorded actions; expert: label every recorded state with the "
                               "world's scripted expert (DART: data from a noisy expert, labels from the clean one)")
    steps: int = arg(2000, "optimizer steps")
    batch_size: int = arg(256, "(observation, action) pairs per step")
    lr: float = arg(1e-3, "peak learning rate")
    ema_decay: float = arg(0.99, "decay of the EMA weights (the exported policy)")
    seed: int = arg(0, "seed of initialisation and data order")

    def __post_init__(self):
        from cosmos_sim.errors import UnknownChoiceError
        from cosmos_sim.policies.networks import check_pixel_options

        if self.obs_mode not in ("state", "pixels", "both"):
            raise UnknownChoiceError("obs_mode", self.obs_mode, ("state", "pixels", "both"))
        check_pixel_options(self.encoder, self.augment, self.frame_stack)
        if self.camera_input not in ("auto", "yes", "no"):
            raise UnknownChoiceError("camera_input", self.camera_input, ("auto", "yes", "no"))
        if self.relabel not in RELABELS:
            raise UnknownChoiceError("relabel", self.relabel, RELABELS)

    def to_dict(self) -> dict:
        """The fields; `relabel` only when it is set, so runs saved before it existed resume as they were."""
        d = asdict(self)
        if d["relabel"] == "none":
            del d["relabel"]
        return d

    def train_config(self) -> TrainConfig:
        """The shared trainer's settings for these steps: a short warm-up, four checkpoints."""
        return TrainConfig(steps=self.steps, batch_size=self.batch_size, lr=self.lr,
                           warmup_steps=min(100, self.steps // 10), checkpoint_every=max(1, self.steps // 4),
                           seed=self.seed, ema_decay=self.ema_decay)


class BCNet(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        self.encoder = ObsEncoder(config["obs_mode"], config["state_dim"], config["image_size"], config["hidden"],
                                  **encoder_options(config))
        self.head = nn.Sequential(nn.Linear(self.encoder.out_dim, config["hidden"]), nn.SiLU(),
                                  nn.Linear(config["hidden"], config["action_dim"]))

    def act_tensor(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.tanh(self.head(self.encoder(obs)))

    def training_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        pred = self.act_tensor(batch)
        loss = ((pred - batch["action"]) ** 2).mean()
        return loss, {"mse": loss.detach()}


@register_policy_kind(KIND)
def build(config: dict) -> BCNet:
    return BCNet(config)


class StepDataset(Dataset):
    """(observation, action) pairs of every step of the chosen episodes, held in memory."""

    def __init__(self, data_dir: str | os.PathLike, obs_mode: str, successful_only: bool, frame_stack: int = 1,
                 relabel: str = "none"):
        from cosmos_sim.data import EpisodeDataset
        from cosmos_sim.errors import DatasetMismatchError

        ds = EpisodeDataset(data_dir)
        self.world = ds.world
        self.image_size = int(ds.spec.image_size[0])
        self.views = int(ds.spec.views)
        self.camera = str((ds.manifest.get("collection") or {}).get("camera", "fixed"))
        pix, states, actions, starts, cams, used, n = [], [], [], [], [], 0, 0
        for i in range(len(ds)):
            ep = ds[i]
            T = len(ep["actions"])
            if successful_only and relabel == "none" and not (ep["terminated"].any()):
                continue
            used += 1
            states.append(ep["states"][:T])
            starts.append(np.full(T, n))
            n += T
            actions.append(ep["actions"])
            if obs_mode in ("pixels", "both"):
                pix.append(ep["pixels"][:T].reshape(T, self.views, *ep["pixels"].shape[-3:]))  # [T, V, H, W, 3]
                cams.append(pose_features(ep["extrinsics"][:T], ep["fovy"][:T]).reshape(T, -1))  # [T, 13 V]
        ds.close()
        if not used:
            raise DatasetMismatchError(f"{data_dir}: no {'successful ' if successful_only else ''}episodes to clone")
        self.episodes = used
        self.states = torch.from_numpy(np.concatenate(states)).float()
        self.actions = torch.from_numpy(np.concatenate(actions)).float()
        if relabel == "expert":  # what the clean expert does in each recorded state (Laskey et al. 2017, DART)
            self.actions = torch.from_numpy(expert_actions(ds.world, self.states.double().numpy())).float()
        self.pixels = torch.from_numpy(np.concatenate(pix)) if pix else None
        self.cameras = torch.from_numpy(np.concatenate(cams)) if cams else None
        # step i sees frames i-k+1 .. i, the episode's first repeated before it starts (as the policy does)
        start = torch.from_numpy(np.concatenate(starts))
        back = torch.arange(int(frame_stack) - 1, -1, -1)
        self.stack_index = torch.maximum(torch.arange(len(start))[:, None] - back[None], start[:, None])

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def cameras_vary(self) -> bool:
        return self.cameras is not None and bool((self.cameras != self.cameras[:1]).any())

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {"state": self.states[i], "action": self.actions[i]}
        if self.cameras is not None:
            item["camera"] = self.cameras[i]
        if self.pixels is not None:  # [H, W, 3kV]: the stacked frames' (oldest first) views' channels side by side
            item["pixels"] = self.pixels[self.stack_index[i]].permute(2, 3, 0, 1, 4).flatten(2)
        return item


def expert_actions(world: str, states: np.ndarray) -> np.ndarray:
    """The world's scripted expert at full skill (no aim error) on states [N, S]: actions [N, A] in [-1, 1]."""
    from cosmos_sim.errors import InputError
    from cosmos_sim.worlds import get_world

    w = get_world(world)
    try:
        a = w.expert(states, np.zeros((len(states), 2)))
    except NotImplementedError:
        raise InputError(f"relabel='expert' needs a scripted expert; world {w.name} has none") from None
    return np.clip(np.asarray(a, dtype=np.float64), -1.0, 1.0)


def train_bc(data_dir: str | os.PathLike, out: str | os.PathLike, config: BCConfig = BCConfig(),
             train_config: TrainConfig | None = None, resume: bool = False, progress: bool = True,
             device: str | None = None) -> dict:
    """Train and export `out/policy.safetensors`; returns the trainer's result plus the policy path.

    The trainer's settings come from `config.train_config()` unless `train_config` is given.
    """
    train_config = train_config or config.train_config()
    from cosmos_sim.training import Trainer
    from cosmos_sim.worlds import get_world

    out = Path(out)
    pixels = config.obs_mode != "state"
    data = StepDataset(data_dir, config.obs_mode, config.successful_only, config.frame_stack if pixels else 1,
                       config.relabel)
    world = get_world(data.world)
    camera_dim = (data.cameras.shape[1] if pixels and (config.camera_input == "yes" or (
        config.camera_input == "auto" and data.cameras_vary)) else 0)
    net_config = {"obs_mode": config.obs_mode, "state_dim": world.state_dim, "image_size": data.image_size,
                  "action_dim": world.action_dim, "hidden": config.hidden} | (
        {"encoder": config.encoder, "frame_stack": config.frame_stack, "augment": config.augment,
         "views": data.views, "camera": data.camera, "camera_dim": camera_dim} if pixels else {})
    torch.manual_seed(train_config.seed)
    net = BCNet(net_config)
    trainer = Trainer(net, data, train_config, out, kind="bc_training",
                      model_config={"bc": config.to_dict(), "net": net_config}, device=device, progress=progress,
                      extra_metadata={"data": str(data_dir), "world": world.name, "episodes": data.episodes})
    result = trainer.fit(resume=resume)
    if trainer.rank == 0:
        path = save_policy(out / FILE, trainer.ema.to("cpu"), KIND, net_config, world.name, config.obs_mode,
                           info={"data": str(data_dir), "bc_config": config.to_dict(), "steps": trainer.step,
                                 "episodes": data.episodes})
        result["policy_path"] = str(path)
    return result


def export_checkpoints(run: str | os.PathLike) -> list[Path]:
    """Each trainer checkpoint a BC run kept, as a policy file (`run/policies/step-N.safetensors`, the EMA weights
    at step N): one run's policies along its training, the rungs of a ladder that differ in skill alone."""
    from cosmos_sim.errors import CheckpointError
    from cosmos_sim.training.checkpoint import load_weights

    run = Path(run)
    found = sorted((run / "checkpoints").glob("step-*.safetensors"))
    if not found:
        raise CheckpointError(f"{run} holds no BC checkpoints (looked for checkpoints/step-*.safetensors)")
    paths = []
    for ckpt in found:
        out = run / "policies" / ckpt.name
        if not out.is_file():
            state, meta = load_weights(ckpt, "bc_training")
            net_config = meta["model_config"]["net"]
            net = BCNet(net_config)
            net.load_state_dict(state)
            save_policy(out, net, KIND, net_config, meta["world"], net_config["obs_mode"],
                        info={"data": meta.get("data"), "bc_config": meta["model_config"]["bc"], "steps": meta["step"],
                              "episodes": meta.get("episodes"), "checkpoint": ckpt.name})
        paths.append(out)
    return paths
