"""The dynamics family registry: presets, sampling options, and a family registered from the test tree."""

import numpy as np
import pytest

from cosmos_sim.dynamics import FAMILIES, SamplingOption, get_family, latent_shapes, register_family
from cosmos_sim.dynamics.train import StateModelConfig, dynamics_config, train_dynamics
from cosmos_sim.envs.world_model_env import LearnedEnvConfig, WorldModelEnv
from cosmos_sim.errors import CheckpointError, UnknownChoiceError
from cosmos_sim.tokenizer import CausalVideoTokenizer, preset
from cosmos_sim.training import TrainConfig
from cosmos_sim.world_model import WorldModel

from dynamics.toy_family import ToyConfig, ToyDynamics, register


@pytest.fixture
def toy():
    register()
    yield FAMILIES["toy"]
    FAMILIES.pop("toy", None)


def test_builtin_sampling_options():
    diff, ar, det = get_family("diffusion"), get_family("autoregressive"), get_family("deterministic")
    assert diff.sampling_options(steps=2, sampler="heun") == {"steps": 2, "sampler": "heun"}
    assert ar.sampling_options(temperature=0, top_k=np.int64(3)) == {"temperature": 0.0, "top_k": 3}
    assert det.sampling_options() == {}
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="sampling option steps must be an int >= 1"):
            diff.sampling_options(steps=bad)
    with pytest.raises(UnknownChoiceError, match="unknown sampler 'ddim'; valid choices: euler, heun"):
        diff.sampling_options(sampler="ddim")
    for bad in (float("nan"), -1.0, float("inf"), "1"):
        with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
            ar.sampling_options(temperature=bad)
    with pytest.raises(ValueError, match="top_k must be an int >= 0"):
        ar.sampling_options(top_k=-1)
    with pytest.raises(ValueError, match=r"'temperature' does not apply to the diffusion family \(its sampling "
                                         r"options: sampler, steps\)"):
        diff.sampling_options(temperature=1.0)
    with pytest.raises(ValueError, match=r"'steps' does not apply to the autoregressive family \(its sampling "
                                         r"options: temperature, top_k\)"):
        ar.sampling_options(steps=4)
    with pytest.raises(ValueError, match=r"'top_k' does not apply to the deterministic family .*none"):
        det.sampling_options(top_k=1)


def test_every_preset_resolves_from_its_family():
    """Presets and data-derived fields come from each family's module; overrides win; bad names are errors."""
    cv, dv = CausalVideoTokenizer(preset("cv8")), CausalVideoTokenizer(preset("dv8"))
    for name, family in FAMILIES.items():
        tok = dv if name == "autoregressive" else cv
        for p, values in family.presets.items():
            cfg = dynamics_config(name, p, tok, 14)
            assert family.config_cls.from_dict(cfg).to_dict() == cfg
            assert {k: cfg[k] for k in values} == {k: (list(v) if isinstance(v, tuple) else v) for k, v in
                                                     values.items()}
            assert cfg["action_dim"] == 14 and cfg["latent_size"] == 8
    assert dynamics_config("diffusion", "small", cv, 2)["latent_scale"] == 0.5
    assert dynamics_config("autoregressive", "small", dv, 2)["fsq_levels"] == list(dv.config.fsq_levels)
    assert dynamics_config("deterministic", "tiny", cv, 2, horizon=5)["horizon"] == 5
    with pytest.raises(ValueError, match="the deterministic config has no field horizn"):
        dynamics_config("deterministic", "tiny", cv, 2, horizn=5)
    with pytest.raises(UnknownChoiceError, match="unknown diffusion preset 'huge'; valid choices: base, small, tiny"):
        dynamics_config("diffusion", "huge", cv, 2)
    with pytest.raises(ValueError, match="needs a discrete"):
        dynamics_config("autoregressive", "small", cv, 2)
    with pytest.raises(UnknownChoiceError, match="unknown dynamics model 'toy'"):
        dynamics_config("toy", "tiny", cv, 2)


def test_register_family_checks_presets_and_names():
    with pytest.raises(ValueError, match="toy-bad preset 'tiny' sets depth, which ToyConfig does not have"):
        register_family("toy-bad", ToyConfig, presets={"tiny": {"depth": 2}}, config_for=latent_shapes)(ToyDynamics)
    with pytest.raises(ValueError, match="'diffusion' is already registered by cosmos_sim.dynamics.diffusion"):
        register_family("diffusion", ToyConfig, presets={}, config_for=latent_shapes)(ToyDynamics)
    assert "toy-bad" not in FAMILIES and FAMILIES["diffusion"].model_cls.__name__ == "DiffusionDynamics"
    assert SamplingOption(float, minimum=0).check("x", 1) == 1.0


@pytest.mark.slow  # trains
def test_toy_family_trains_loads_and_steps(toy, tiny_world_model, tiny_tokenizer, tmp_path):
    """A family from outside the package goes through the public API: train, save, load, env steps."""
    _, data = tiny_world_model
    r = train_dynamics(data, tiny_tokenizer, tmp_path / "toy", "toy", "tiny",
                       TrainConfig(steps=4, batch_size=4, warmup_steps=1), progress=False,
                       state=StateModelConfig(steps=4))
    m = WorldModel.load(r["world_model"])
    assert m.family == "toy" and isinstance(m.dynamics, ToyDynamics) and m.dynamics.config.width == 8
    assert m.sampling_options(noise=0.5) == {"noise": 0.5}

    def roll(noise):
        env = WorldModelEnv(LearnedEnvConfig(world="push", model=m, sampling={"noise": noise}))
        obs, _ = env.reset(seed=1)
        frames = [env.step(np.array([0.5, -0.5], np.float32))[0]["pixels"] for _ in range(3)]
        env.close()
        return np.stack(frames)

    quiet, a, b = roll(0.0), roll(0.5), roll(0.5)
    assert np.array_equal(a, b) and not np.array_equal(quiet, a)  # seeded noise; the option reaches predict
    with pytest.raises(ValueError, match=r"'steps' does not apply to the toy family \(its sampling options: noise\)"):
        WorldModelEnv(LearnedEnvConfig(world="push", model=m, sampling={"steps": 4}))
    with pytest.raises(ValueError, match="noise must be a finite number >= 0"):
        WorldModelEnv(LearnedEnvConfig(world="push", model=m, sampling={"noise": -1.0}))
    FAMILIES.pop("toy")
    with pytest.raises(CheckpointError, match="dynamics family 'toy' is not registered"):
        WorldModel.load(r["world_model"])
