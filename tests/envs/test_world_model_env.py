"""The learned backend as Gymnasium envs: checks, determinism, autoreset, bad input."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.wrappers.vector import RecordEpisodeStatistics

import cosmos_sim  # noqa: F401  (registers the ids)
from cosmos_sim.envs.learned_config import LearnedEnvConfig
from cosmos_sim.envs.world_model_env import WorldModelEnv, WorldModelVectorEnv
from cosmos_sim.errors import ActionError, ConfigMismatchError, DatasetMismatchError, UnknownChoiceError
from cosmos_sim.world_model import WorldModel

pytestmark = pytest.mark.slow  # uses the trained tiny world model

ID = "cosmos_sim/Push-v0"


@pytest.fixture(scope="module")
def run(tiny_world_model):
    return tiny_world_model[0]


def learned(world: str, render_mode: str | None = None, **fields) -> WorldModelEnv:
    """The class made by hand: its config, and the gym-required render_mode beside it."""
    return WorldModelEnv(LearnedEnvConfig(world=world, **fields), render_mode=render_mode)


def learned_vec(world: str, num_envs: int = 1, render_mode: str | None = None, **fields) -> WorldModelVectorEnv:
    return WorldModelVectorEnv(LearnedEnvConfig(world=world, **fields), num_envs=num_envs, render_mode=render_mode)


@pytest.mark.parametrize("obs_mode", ["pixels", "state", "both"])
def test_check_env_every_obs_mode(run, obs_mode):
    env = gym.make(ID, backend="world_model", model=run, obs_mode=obs_mode, image_size=32)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_render_and_camera_control(run):
    env = learned("push", model=run, camera="random", camera_control=True, render_mode="rgb_array",
                        obs_mode="state")
    obs, info = env.reset(seed=3)
    assert env.action_space.shape == (5,)
    cam0 = info["camera"]
    obs, r, term, trunc, info = env.step(np.array([0.5, 0.0, 1.0, 0.0, 0.0], np.float32))
    assert info["camera"] != cam0 and env.render().shape == (32, 32, 3)
    env.close()


def test_same_seed_same_observations_and_physics_first_frame(run):
    model = WorldModel.load(run)
    acts = np.random.default_rng(0).uniform(-1, 1, (12, 2)).astype(np.float32)

    def roll(seed):
        env = gym.make(ID, backend="world_model", model=model, camera="random")
        obs, _ = env.reset(seed=seed)
        out = [obs["pixels"]]
        for a in acts:
            out.append(env.step(a)[0]["pixels"])
        env.close()
        return np.stack(out)

    a, b, c = roll(5), roll(5), roll(6)
    assert np.array_equal(a, b)
    assert not np.array_equal(a[0], c[0])
    phys = gym.make(ID, backend="mujoco", image_size=32, camera="random")
    p0, pinfo = phys.reset(seed=5)
    assert np.array_equal(p0["pixels"], a[0])
    learned = gym.make(ID, backend="world_model", model=model, camera="random")
    l0, linfo = learned.reset(seed=5)
    assert np.allclose(l0["state"], p0["state"]) and linfo["camera"] == pinfo["camera"]


def test_vector_env_autoreset_and_episode_statistics(run):
    N, T = 64, 1000
    env = gym.make_vec(ID, num_envs=N, backend="world_model", model=run)
    assert isinstance(env, WorldModelVectorEnv)
    assert env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    env = RecordEpisodeStatistics(env)
    obs, info = env.reset(seed=0)
    rng = np.random.default_rng(0)
    length = np.zeros(N, dtype=int)
    done_prev = np.zeros(N, dtype=bool)
    episodes = 0
    for _ in range(T):
        obs, rew, term, trunc, info = env.step(rng.uniform(-1, 1, (N, 2)).astype(np.float32))
        assert env.observation_space.contains(obs), "observation outside its space"
        assert rew.dtype == np.float32 and term.dtype == bool and trunc.dtype == bool
        length = np.where(done_prev, 0, length + 1)
        done = term | trunc
        if done.any():
            assert np.array_equal(info["episode"]["l"][done], length[done])
            episodes += int(done.sum())
        assert not (done_prev & done).any(), "an env ended on its reset step"
        done_prev = done
    assert episodes >= N * (T // 100 - 1)  # at most 100 steps per Push episode
    env.close()


def test_vector_env_torch_outputs_and_partial_reset(run):
    env = learned_vec("push", num_envs=4, model=run, array_type="torch", obs_mode="both")
    obs, _ = env.reset(seed=1)
    assert obs["pixels"].dtype == torch.uint8 and obs["pixels"].shape == (4, 32, 32, 3)
    obs, rew, term, trunc, info = env.step(torch.zeros(4, 2))
    assert isinstance(rew, torch.Tensor) and rew.dtype == torch.float32 and term.dtype == torch.bool
    before = obs["pixels"].clone()
    obs, _ = env.reset(options={"reset_mask": np.array([True, False, False, False])})
    assert torch.equal(obs["pixels"][1:], before[1:])


def test_vector_env_deterministic(run):
    def roll(seed):
        env = learned_vec("push", num_envs=3, model=run)
        out = [env.reset(seed=seed)[0]["pixels"]]
        for a in np.linspace(-1, 1, 30):
            out.append(env.step(np.full((3, 2), a, np.float32))[0]["pixels"])
        return np.stack(out)

    a, b = roll(2), roll(2)
    assert np.array_equal(a, b) and not np.array_equal(a, roll(3))


def test_dataset_reset_source(run, tiny_world_model):
    env = learned("push", model=run, reset_source=tiny_world_model[1])
    obs, info = env.reset(seed=0)
    assert obs["pixels"].shape == (32, 32, 3)
    env.step(np.zeros(2, np.float32))


def test_branched_resets_start_from_any_recorded_step(run, tiny_world_model, tmp_path):
    """reset_start="any": every start is a recorded (state, frame, camera) of some step, drawn by the seed."""
    from cosmos_sim.data import EpisodeDataset

    data = EpisodeDataset(tiny_world_model[1])
    recorded = {(e, t): data[e]["states"][t] for e in range(len(data)) for t in range(data.num_steps(e))}
    envs = gym.make_vec(ID, num_envs=8, backend="world_model", model=run, reset_source=tiny_world_model[1],
                        reset_start="any", max_episode_steps=5)
    starts = []
    for seed in (0, 100):
        obs, _ = envs.reset(seed=seed)
        for s, px in zip(obs["state"], obs["pixels"], strict=True):
            hits = [k for k, v in recorded.items() if np.array_equal(v, s)]
            assert hits, "a start that is no recorded step"
            e, t = hits[0]
            assert np.array_equal(px, data[e]["pixels"][t])  # the recorded frame of that step
            starts.append(t)
    assert max(starts) > 0  # not only episode starts
    again, _ = envs.reset(seed=100)
    assert np.array_equal(again["state"], obs["state"]) and np.array_equal(again["pixels"], obs["pixels"])
    for _ in range(4):
        *_, truncated, _ = envs.step(np.zeros((8, 2), np.float32))
        assert not truncated.any()
    assert envs.step(np.zeros((8, 2), np.float32))[3].all()  # short branches: max_episode_steps=5
    envs.close()
    first = learned("push", model=run, reset_source=tiny_world_model[1])  # default: episode starts
    assert any(np.array_equal(first.reset(seed=1)[0]["state"], recorded[(e, 0)]) for e in range(len(data)))
    with pytest.raises(UnknownChoiceError, match="unknown reset_start 'middle'"):
        learned("push", model=run, reset_source=tiny_world_model[1], reset_start="middle")
    with pytest.raises(ValueError, match="needs reset_source=DATASET"):
        learned("push", model=run, reset_start="any")
    from cosmos_sim.data import CollectConfig, collect

    collect(CollectConfig(world="reach", image_size=32, episodes=1), tmp_path / "reach", progress=False)
    with pytest.raises(DatasetMismatchError, match="Reach"):  # a dataset of another world
        learned("push", model=run, reset_source=tmp_path / "reach", reset_start="any")


def test_bad_input(run, tmp_path):
    with pytest.raises(TypeError, match="'pretrained'"):  # no model= means the shipped one; 42 is nothing
        gym.make(ID, backend="world_model", model=42)
    with pytest.raises(ConfigMismatchError, match="world: model has 'Push', caller has 'Reach'"):
        learned("reach", model=run)
    with pytest.raises(ConfigMismatchError, match="image_size: model has 32, caller has 64"):
        learned("push", model=run, image_size=64)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            learned("push", model=run, device="cuda")
    with pytest.raises(FileNotFoundError, match="cosmos-sim train"):
        learned("push", model=tmp_path / "nothing")
    # a deterministic model has no sampling options: the family names the option and its (no) options
    no_steps = r"sampling option 'steps' does not apply to the deterministic family \(its sampling options: none\)"
    with pytest.raises(ValueError, match=no_steps):
        learned("push", model=run, sampling={"steps": 4})
    with pytest.raises(ValueError, match=no_steps):
        gym.make(ID, backend="world_model", model=run, sampling={"steps": 4})
    with pytest.raises(ValueError, match=no_steps):
        gym.make_vec(ID, num_envs=2, backend="world_model", model=run, sampling={"steps": 4})
    with pytest.raises(TypeError, match="sampling must be a dict"):
        learned("push", model=run, sampling=4)
    with pytest.raises(TypeError, match="sampling_steps"):  # the per-option keywords are gone
        learned("push", model=run, sampling_steps=4)
    learned("push", model=run, sampling={}).close()
    env = learned("push", model=run)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(2, np.float32))
    env.reset(seed=0)
    for bad in (np.zeros(3, np.float32), np.array([np.nan, 0], np.float32), np.array([np.inf, 0], np.float32)):
        with pytest.raises(ValueError):
            env.step(bad)
    venv = learned_vec("push", num_envs=2, model=run)
    venv.reset(seed=0)
    with pytest.raises(ActionError, match=r"shape \(2, 2\)"):
        venv.step(np.zeros((3, 2), np.float32))
    with pytest.raises(ActionError, match="NaN or inf"):
        venv.step(np.array([[0, 0], [np.nan, 0]], np.float32))


def test_non_finite_predictions_end_the_episode_as_diverged(run):
    """A NaN or out-of-bound predicted state truncates that env with info["diverged"], keeps its last good
    state, and leaves the other envs alone (as a blown-up physics step does)."""
    envs = learned_vec("push", num_envs=3, model=run, obs_mode="state", device="cpu")
    obs, _ = envs.reset(seed=0)
    step = envs.core.model.step

    def broken(state, actions, *a, **kw):
        frames, states = step(state, actions, *a, **kw)
        states = states.clone()
        states[1] = float("nan")
        states[2, 0] = 1e6
        return frames, states

    envs.core.model.step = broken
    before = obs.copy()
    obs, rew, term, trunc, info = envs.step(np.zeros((3, 2), np.float32))
    assert info["diverged"].tolist() == [False, True, True]
    assert trunc[1:].all() and not term[1:].any() and (rew[1:] == 0).all()
    assert np.isfinite(obs).all() and np.array_equal(obs[1:], before[1:])
    assert not info["diverged"][0] and not trunc[0]
    envs.core.model.step = step
    obs, rew, term, trunc, info = envs.step(np.zeros((3, 2), np.float32))  # autoreset of envs 1 and 2
    assert not info["diverged"].any()
    single = learned("push", model=run, obs_mode="state", device="cpu")
    single.reset(seed=0)
    assert single.step(np.zeros(2, np.float32))[4]["diverged"] is False


def test_a_model_of_another_world_definition_is_refused(run):
    m = WorldModel.load(run)
    assert m.info["world_hash"] == cosmos_sim.get_world("push").definition_hash()  # recorded at training
    m.info = {**m.info, "world_hash": "0" * 16}
    with pytest.raises(ConfigMismatchError, match="another definition"):
        learned("push", model=m, device="cpu")


@pytest.mark.parametrize("array_type", ["numpy", "torch"])
def test_same_step_autoreset_mode(run, array_type):
    """autoreset_mode="same_step": a finished env starts over within the step that ended it, its last
    observation in info["final_obs"]; the episodes are the NEXT_STEP env's, one step earlier."""
    from gymnasium.vector import AutoresetMode

    kw = dict(num_envs=3, model=run, obs_mode="state", device="cpu", max_episode_steps=3)
    same = learned_vec("push", autoreset_mode="same_step", array_type=array_type, **kw)
    nxt = learned_vec("push", **kw)
    assert same.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert nxt.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    as_np = (lambda x: x.numpy()) if array_type == "torch" else np.asarray
    np.testing.assert_array_equal(as_np(same.reset(seed=0)[0]), nxt.reset(seed=0)[0])
    a = np.full((3, 2), 0.5, np.float32)
    for _ in range(3):
        o_s, r_s, te_s, tr_s, info = same.step(torch.as_tensor(a) if array_type == "torch" else a)
        o_n, r_n, te_n, tr_n, _ = nxt.step(a)
        np.testing.assert_allclose(as_np(r_s), r_n)
    assert as_np(tr_s).all() and tr_n.all()
    assert info["_final_obs"].all() and info["_final_info"].all()
    np.testing.assert_array_equal(np.stack([as_np(o) for o in info["final_obs"]]), o_n)
    assert info["final_info"][0]["state"].shape == (12,)
    o_n, r_n, te_n, tr_n, _ = nxt.step(a)  # NEXT_STEP resets now: the same first states
    np.testing.assert_array_equal(as_np(o_s), o_n)
    o_s, r_s, te_s, tr_s, info = same.step(a if array_type == "numpy" else torch.as_tensor(a))
    assert not as_np(tr_s).any() and "final_obs" not in info  # the new episodes step on
    with pytest.raises(UnknownChoiceError, match="autoreset_mode"):
        learned_vec("push", autoreset_mode="never", **kw)
    same.close()
    nxt.close()
    # The same keyword for the physics backends' vector envs (Gymnasium's SyncVectorEnv does the work).
    phys = gym.make_vec("cosmos_sim/Push-v0", num_envs=2, backend="mujoco", obs_mode="state",
                        autoreset_mode="same_step", max_episode_steps=2)
    assert phys.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    phys.reset(seed=0)
    phys.step(np.zeros((2, 2), np.float32))
    *_, trunc, info = phys.step(np.zeros((2, 2), np.float32))
    assert trunc.all() and info["_final_obs"].all() and info["final_obs"][0].shape == (12,)
    phys.close()


def test_a_pose_outside_the_training_cameras_warns_or_raises(run):
    """A fixed-camera model asked for its pose turned 15° in azimuth warns once per env (or raises with
    strict_camera=True); its own pose, and poses inside a random-camera range, pass in silence."""
    import warnings

    from cosmos_sim.camera import CameraCoverage, orbit
    from cosmos_sim.envs.world_model_env import CameraCoverageWarning
    from cosmos_sim.errors import CameraError
    from cosmos_sim.worlds import get_world

    world = get_world("push")
    model = WorldModel.load(run)
    cov = model.camera_coverage(world)
    assert cov.mode == "fixed" and model.info["camera_coverage"]["mode"] == "fixed"
    assert CameraCoverage.from_dict(cov.to_dict()) == cov
    d = world.default_camera
    az, el, dist = d.orbit_params()
    turned = orbit(az + 15.0, el, dist, d.target, d.fovy)
    assert cov.covers(d) and not cov.covers(turned)
    env = learned("push", model=run, obs_mode="pixels", camera=turned, device="cpu")
    with pytest.warns(CameraCoverageWarning, match="outside what this world model was trained on"):
        env.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env.reset(seed=1)  # once per env
        learned("push", model=run, obs_mode="pixels", device="cpu", strict_camera=True).reset(seed=0)
        learned("push", model=run, obs_mode="state", camera=turned, device="cpu").reset(seed=0)  # no frames
    strict = learned("push", model=run, obs_mode="pixels", camera=turned, device="cpu", strict_camera=True)
    with pytest.raises(CameraError, match="strict_camera"):
        strict.reset(seed=0)
    vec = learned_vec("push", num_envs=2, model=run, obs_mode="pixels", device="cpu", camera=turned)
    with pytest.warns(CameraCoverageWarning) as record:
        vec.reset(seed=0)
    assert sorted(str(w.message).split(":")[0] for w in record) == ["env 0", "env 1"]
    r = world.camera_range
    ranged = CameraCoverage.of("random", d, r)
    rng = np.random.default_rng(0)
    assert all(ranged.covers(r.sample(rng)) for _ in range(50))
    assert not ranged.covers(orbit(r.azimuth[1] + 10.0, r.elevation[0], r.distance[0], r.target, r.fovy))
    assert not ranged.covers(orbit(r.azimuth[0], r.elevation[0], r.distance[0], r.target, r.fovy + 10.0))


def test_several_views_of_one_learned_state(run):
    """cameras=[...] in the learned world: V latent rollouts per env conditioned on the env's one state. Two
    identical views predict identical frames; other views are a batch dimension; checkers pass for V = 2, 3."""
    import warnings

    from cosmos_sim.camera import orbit
    from cosmos_sim.envs.world_model_env import CameraCoverageWarning
    from cosmos_sim.errors import CameraError, InputError

    d = cosmos_sim.get_world("push").default_camera
    az, el, dist = d.orbit_params()
    other = orbit(az + 20.0, el + 5.0, dist, d.target, d.fovy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CameraCoverageWarning)  # the tiny model knows one fixed camera
        for views in (["default", other], ["default", other, "default"]):
            env = learned("push", model=run, obs_mode="both", cameras=views, device="cpu",
                                render_mode="rgb_array")
            check_env(env, skip_render_check=False)
            assert env.observation_space["pixels"].shape == (len(views), 32, 32, 3)
            runs = []
            for _ in range(2):
                obs, info = env.reset(seed=3)
                out = [obs["pixels"]]
                for _ in range(3):
                    obs, *_, info = env.step(np.array([0.5, -0.5], np.float32))
                    out.append(obs["pixels"])
                runs.append(np.stack(out))
            np.testing.assert_array_equal(*runs)  # same seed, same pixels in every view
            assert len(info["camera"]) == len(views) and info["camera"][1] == other
            assert env.render().shape == (32, 32 * len(views), 3)
            if len(views) == 3:  # views 0 and 2 share a pose: the same frames, step after step
                np.testing.assert_array_equal(runs[0][:, 0], runs[0][:, 2])
                assert not np.array_equal(runs[0][1:, 0], runs[0][1:, 1])
            env.close()
        vec = learned_vec("push", num_envs=2, model=run, obs_mode="pixels", cameras=["default", other],
                                  device="cpu")
        obs, info = vec.reset(seed=0)
        obs, *_, info = vec.step(np.zeros((2, 2), np.float32))
        assert obs.shape == (2, 2, 32, 32, 3) and info["camera"].shape == (2, 2, 10)
        vec.close()
    with pytest.raises(InputError, match="ensemble='sample'"):
        learned("push", model=run, cameras=["default", other], ensemble="sample", device="cpu")
    with pytest.raises(ConfigMismatchError, match="32x32"):
        learned("push", model=run, cameras=[("default", 64), (other, 64)], device="cpu")
    with pytest.raises(CameraError, match="1 to 8 views"):
        learned("push", model=run, cameras=[], device="cpu")
