import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_world_model(tmp_path_factory):
    """A Push world model trained in seconds at 32x32 (deterministic family): (run dir, data dir)."""
    import torch

    from cosmos_sim.data import CollectConfig, collect
    from cosmos_sim.dynamics.train import train_dynamics
    from cosmos_sim.tokenizer import preset, train_tokenizer
    from cosmos_sim.training import TrainConfig

    root = tmp_path_factory.mktemp("tiny_wm")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        collect(CollectConfig(world="push", policy="mix", skill=(0.3, 1.0), image_size=32, episodes=6),
                root / "data", progress=False)
        train_tokenizer(root / "data", root / "tok", preset("tiny", 32), TrainConfig(steps=15, batch_size=4),
                        progress=False)
        train_dynamics(root / "data", root / "tok", root / "dyn", "deterministic", "tiny",
                       TrainConfig(steps=20, batch_size=8, lr=3e-3, warmup_steps=2), progress=False)
    finally:
        torch.set_num_threads(threads)
    return root / "dyn", root / "data"
