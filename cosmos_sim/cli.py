"""`cosmos-sim`: the command line. It parses, calls the library, and prints what the library returns.

Each subcommand is one `cmd_*` function plus one `Command` row in `COMMANDS`: its flags are declared in the
row, one by one (`flag`) or generated from a config dataclass (`config_flags`), so `--help` shows the config's
own defaults. A command's help is its function's docstring. User errors (unknown names, bad values, missing
files: the package's `CosmosSimError`s) print one line, `cosmos-sim: error: ...`, on stderr and exit with
status 1 (2 for command-line syntax errors, 130 for Ctrl-C); any other exception is a bug and shows its
traceback. Set COSMOS_SIM_DEBUG=1 to get the traceback of a user error too.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from cosmos_sim.cli_support import (
    EXIT_ERROR,
    EXIT_OK,
    NO_PROGRESS,
    PROG,
    TRACK,
    Command,
    config_flags,
    config_from,
    flag,
    run,
)
from cosmos_sim.config import positive_int
from cosmos_sim.errors import InputError

DEVICE = flag("--device", default=None, help="cpu or cuda (default: cuda when available)")
def _check_device(device: str | None) -> None:
    import torch

    if device is not None and device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} asked for, but CUDA is not available on this machine")


# --- worlds, demo --------------------------------------------------------------------------------------
def cmd_worlds(args: argparse.Namespace) -> None:
    from cosmos_sim.envs.registration import world_info, world_lines
    from cosmos_sim.worlds import world_list

    infos = [world_info(w) for w in world_list(args.names)]
    print(json.dumps(infos, indent=2) if args.json else "\n\n".join("\n".join(world_lines(d)) for d in infos))


def cmd_demo(args: argparse.Namespace) -> None:
    from cosmos_sim import demo

    if args.physics_only:
        s = demo.physics_demo(args.worlds, args.episodes or 20, args.image_size, args.out, seed=args.seed,
                              progress=False if args.no_progress else None)
        print("\n".join(demo.physics_summary_lines(s)))
        return
    _check_device(args.device)
    if not args.train:
        r = demo.run_zoo_demo(args.out, args.worlds, episodes=args.episodes or 30, device=args.device,
                              seed=args.seed, progress=not args.no_progress)
        print("\n".join(demo.zoo_summary_lines(r)))
        return
    cfg = demo.demo_config(args.preset, args.world, episodes=args.episodes, device=args.device, seed=args.seed)
    result = demo.run_demo(cfg, args.out, progress=not args.no_progress)
    print("\n".join(["", f"Done in {sum(result['times'].values()):.0f} s. Summary:", *demo.summary_lines(result)]))


def cmd_models(args: argparse.Namespace) -> None:
    from cosmos_sim.zoo import models_table, shipped_info, shipped_worlds

    infos = [shipped_info(w) for w in shipped_worlds()]
    print(json.dumps(infos, indent=2) if args.json else models_table(infos))


# --- compare, evaluate ---------------------------------------------------------------------------------
COMPARE = "cosmos_sim.evaluation.compare:CompareConfig"
COMPARE_FLAGS = ("world", "policies", "episodes", "open_loop_episodes", "horizon", "open_loop_policy", "videos",
                 "camera", "seed", "device")
EVALUATE = "cosmos_sim.evaluation.closed_loop:EvalConfig"
EVALUATE_FLAGS = ("world", "backend", "policy", "model", "episodes", "seed", "camera", "device")


def cmd_compare(args: argparse.Namespace) -> None:
    from cosmos_sim.evaluation.compare import CompareConfig, compare, load_checked_model, summary_lines

    if args.data is not None:
        return _compare_data(args)
    if args.env is not None:
        return _compare_env(args)
    _require_simulator(args)

    if args.model != "pretrained" and args.physics_only:
        raise InputError("--physics-only compares the physics backends alone: leave out --model")
    backends = ("mujoco", "pybullet") if args.physics_only else CompareConfig.backends
    cfg = config_from(COMPARE, args, COMPARE_FLAGS, backends=backends)
    model = None
    if not args.physics_only:
        _check_device(cfg.device)
        model = load_checked_model(args.model, cfg.world, cfg.device)  # a bad path or world fails here, first
    report = compare(cfg, model, args.out, progress=not args.no_progress)
    print("\n".join(summary_lines(report, args.out)))


def _compare_data(args: argparse.Namespace) -> None:
    """--model RUN --data DIR: open loop against recorded episodes (all a world with no simulator allows)."""
    from cosmos_sim.evaluation.compare_data import DataCompareConfig, compare_data, summary_lines

    if args.model == "pretrained" or args.physics_only or args.env is not None:
        raise InputError("compare --data DIR needs --model RUN and neither --env nor --physics-only")
    _check_device(args.device)
    cfg = DataCompareConfig(open_loop_episodes=args.open_loop_episodes, horizon=args.horizon, seed=args.seed,
                            videos=args.videos, device=args.device)
    print("\n".join(summary_lines(compare_data(cfg, args.model, args.data, args.out, not args.no_progress),
                                  args.out)))


def _require_simulator(args: argparse.Namespace) -> None:
    """A model of a recorded dataset's world (or such a --world) cannot be compared with physics: say so first."""
    from cosmos_sim.worlds.dataset import require_simulator

    world = args.world
    if args.model != "pretrained" and not args.physics_only and Path(args.model).exists():
        from cosmos_sim.training.checkpoint import read_metadata
        from cosmos_sim.world_model import FILE

        path = Path(args.model) / FILE if Path(args.model).is_dir() else Path(args.model)
        if path.is_file():
            world = read_metadata(path).get("world", world)
    require_simulator(world, "closed-loop comparison (policies acting in physics)")


def _compare_env(args: argparse.Namespace) -> None:
    from cosmos_sim.evaluation.compare_env import EnvCompareConfig, compare_env

    _env_world(args)  # an unknown id or bad kwargs fail here, first
    if args.model == "pretrained" or args.physics_only:
        raise InputError("compare --env needs --model RUN (a world model trained on the env's data)")
    _check_device(args.device)
    policies = ("random",) if list(args.policies) == ["ladder"] else args.policies  # "ladder" is the worlds' experts
    cfg = EnvCompareConfig(env=args.env, env_kwargs=args.env_kwargs or "{}", policies=policies,
                           episodes=args.episodes, seed=args.seed, open_loop_episodes=args.open_loop_episodes,
                           horizon=args.horizon, videos=args.videos, device=args.device,
                           open_loop_policy=("random" if args.open_loop_policy == "scripted:0.75"
                                             else args.open_loop_policy))
    r = compare_env(cfg, args.model, args.out, progress=not args.no_progress)
    c, rk = r["ranking"]["return"] or {}, r["ranking"]
    for row in rk["rows"]:
        print(f"{row['name']:>28}  env return {row['env_return']:9.2f}  learned {row['learned_return']:9.2f}")
    rho = c.get("spearman")
    print(f"ranking by return: Spearman {'n/a' if rho is None else f'{rho:.2f}'} over {len(rk['rows'])} policies; "
          f"return spread {rk['return_spread']:.1f}; reward MAE/step {r['open_loop']['reward_mae_per_step']:.4f}")
    print(f"report: {args.out / 'report.md'}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from cosmos_sim.evaluation.closed_loop import run_evaluation, summary_table
    from cosmos_sim.fileio import atomic_write_json

    cfg = config_from(EVALUATE, args, EVALUATE_FLAGS)
    _check_device(cfg.device)
    r = run_evaluation(cfg)
    print(summary_table(r))
    if args.out is not None:
        atomic_write_json(args.out, r)
        print(f"wrote {args.out}")


# --- collect, data -------------------------------------------------------------------------------------
COLLECT = "cosmos_sim.data.collect:CollectConfig"
COLLECT_FLAGS = {"world": (), "backend": (), "policy": (), "skill": (), "episodes": (), "base_seed": "--seed",
                 "camera": (), "image_size": (), "workers": (), "shard_mb": (), "views": ()}
CURATE = "cosmos_sim.data.curate:CurateConfig"
CURATE_FLAGS = ("min_motion", "motion_levels", "drop_diverged", "drop_duplicates")
DATA_DIR = flag("dir", help="dataset directory")
EXPORT = "cosmos_sim.data.interchange:ExportConfig"
EXPORT_FLAGS = {"name": (), "version": "--minari-version", "verify": (), "fps": (), "video_quality": (),
                "data_file_mb": (), "video_file_mb": (), "chunks_size": (), "lossless": ()}
IMPORT = "cosmos_sim.data.interchange:ImportConfig"
IMPORT_FLAGS = ("world", "default_camera", "shard_mb", "image_size")
MERGE = "cosmos_sim.data.merge:MergeConfig"
MERGE_FLAGS = ("link", "verify")


ENV_FLAGS = (flag("--env", default=None, metavar="ID", help="a Gymnasium env id instead of --world (e.g. "
                   "Reacher-v5): its learned twin is gym.make('cosmos_sim/Learned-v0', model=RUN)"),
             flag("--env-kwargs", default=None, metavar="JSON", help="with --env: keyword arguments of gym.make, "
                  "as a JSON object"))


def _env_world(args: argparse.Namespace) -> str | None:
    """--env ID [--env-kwargs JSON] -> the env's world name ("env:ID..."), checked; None without --env."""
    if args.env is None:
        if args.env_kwargs is not None:
            raise InputError("--env-kwargs needs --env ID")
        return None
    from cosmos_sim.envs.source_env import canonical_kwargs, env_world

    return env_world(args.env, json.loads(canonical_kwargs(args.env_kwargs))).name


def cmd_collect(args: argparse.Namespace) -> None:
    from cosmos_sim.data import collect

    extra = {}
    if (name := _env_world(args)) is not None:  # Gymnasium envs have no scripted expert: the default mixes noise
        extra = {"world": name, "policy": "random,explore" if args.policy == "mix" else args.policy}
    config = config_from(COLLECT, args, COLLECT_FLAGS, **extra)
    if args.ray is not None:  # Ray tasks instead of worker processes
        from cosmos_sim.data.ray_collect import RayConfig, collect_ray

        m = collect_ray(config, args.out, RayConfig(address=args.ray), progress=not args.no_progress)
    else:
        m = collect(config, args.out, progress=not args.no_progress)
    print(f"{args.out}: {sum(s['episodes'] for s in m['shards'])} episodes, "
          f"{sum(s['frames'] for s in m['shards'])} frames in {len(m['shards'])} shards")


def cmd_data_info(args: argparse.Namespace) -> None:
    from cosmos_sim.data.inspect import info, info_table

    r = info(args.dir, thumbnails=args.thumbnails or Path(args.dir) / "thumbnails.png")
    print(json.dumps(r, indent=2) if args.json else info_table(r))


def cmd_data_verify(args: argparse.Namespace) -> int:
    from cosmos_sim.data.inspect import verify

    problems = verify(args.dir)
    for name, msg in problems:
        print(f"{name}: {msg}", file=sys.stderr)
    if problems:
        print(f"{PROG}: error: {len(problems)} problem(s) in {args.dir}", file=sys.stderr)
        return EXIT_ERROR
    print(f"{args.dir}: OK (checksums, schema and counts)")
    return EXIT_OK


def cmd_data_curate(args: argparse.Namespace) -> None:
    from cosmos_sim.data.curate import curate

    s = curate(args.dir, args.out, config_from(CURATE, args, CURATE_FLAGS))
    print(f"{args.out}: kept {s['kept']} of {s['episodes_in']} episodes; dropped " +
          ", ".join(f"{v} {k}" for k, v in s["dropped"].items()) + f" (see {Path(args.out) / 'curation.json'})")


def cmd_data_export(args: argparse.Namespace) -> None:
    from cosmos_sim.data.interchange import export_dataset

    r = export_dataset(args.dir, args.out, args.format, config_from(EXPORT, args, EXPORT_FLAGS),
                       progress=not args.no_progress)
    if r["format"] == "minari":
        print(f"{r['path']}: Minari dataset {r['dataset_id']} ({r['episodes']} episodes, {r['steps']} steps); "
              f"load it with MINARI_DATASETS_PATH={args.out} and minari.load_dataset({r['dataset_id']!r})")
    else:
        print(f"{r['path']}: LeRobot v3.0 dataset ({r['episodes']} episodes, {r['frames']} frames at {r['fps']} fps)")


def cmd_data_import(args: argparse.Namespace) -> None:
    from cosmos_sim.data.interchange import import_dataset

    m = import_dataset(args.source, args.out, args.format, config_from(IMPORT, args, IMPORT_FLAGS),
                       progress=not args.no_progress)
    print(f"{args.out}: {sum(s['episodes'] for s in m['shards'])} episodes of {m['world'].partition('?')[0]} in "
          f"{len(m['shards'])} shards")
    if "lerobot_import" in m:  # our own lossy export: everything exact but the frames
        r = m["lerobot_import"]
        print(f"frames: {r['pixels']}, {r['frames_differing']} of {r['frames']} differ from those exported "
              "(export with --lossless for exact frames)")


def cmd_data_merge(args: argparse.Namespace) -> None:
    from cosmos_sim.data.merge import merge

    m = merge(args.dirs, args.out, config_from(MERGE, args, MERGE_FLAGS))
    s = m["merge"]
    print(f"{args.out}: {s['episodes']} episodes from {len(s['sources'])} datasets ({s['linked']} shards linked, "
          f"{s['copied']} copied)")


# --- train, train-policy -------------------------------------------------------------------------------
TRAIN = "cosmos_sim.training.trainer:TrainConfig"
TRAIN_FLAGS = {"steps": (), "batch_size": (), "lr": (), "warmup_steps": (), "ema_decay": (), "eval_every": (),
               "checkpoint_every": (), "time_limit_s": (), "schedule_by_time": ("--schedule-by-time",
                                                                                "--time-schedule"), "seed": ()}
TRAIN_ARGS = (config_flags(TRAIN, TRAIN_FLAGS), DEVICE,
              flag("--resume", action="store_true", help="continue from the newest checkpoint in --out"), TRACK)
STAGE_ARGS = (flag("--data", required=True, help="dataset directory (from cosmos-sim collect)"),
              flag("--out", required=True, help="run directory (checkpoints, metrics.jsonl, config.json)"),
              *TRAIN_ARGS)
STATE_MODEL = (flag("--cross-view", action="store_true", help="data of several views (collect --views N): also "
                    "train on targets from another view than the context, so frames follow the camera it is told"),
               flag("--state-model", choices=("mlp", "objects"), default="mlp",
                    help="objects: over like objects (Drop)"),
               flag("--state-members", type=positive_int, default=None, help="an ensemble of K state models, whose "
                    "disagreement is info['uncertainty'] (default: 5 for mlp, 1 for objects)"),
               flag("--state-steps", type=int, default=None,
                    help="state-model updates before the latent training (default: 8x --steps, at most 4000)"),
               flag("--task-steps", type=int, default=None, help="updates of a Gymnasium env's learned reward/"
                    "termination/success head (default: 8x --steps, at least 100, at most 3000)"),
               flag("--state-episodes", type=int, default=0, help="extra episodes of states alone (nothing "
                    "rendered: cheap), collected as the dataset was, for the state model (and a Gymnasium env's "
                    "reward/termination head) (default: 0)"))
POLICY = "cosmos_sim.policies.train:PolicyTrainConfig"
POLICY_FLAGS = ("algo", "world", "backend", "model", "data", "obs_mode", "num_envs", "steps", "lr", "seed", "device",
                "save_every", "dyna_rounds", "real_steps", "uncertainty_penalty", "halt_uncertainty")


def _train_config(args: argparse.Namespace):
    _check_device(args.device)
    return config_from(TRAIN, args, TRAIN_FLAGS)


def cmd_train_tokenizer(args: argparse.Namespace) -> None:
    from cosmos_sim.tokenizer import train_tokenizer

    r = train_tokenizer(args.data, args.out, args.preset, _train_config(args), resume=args.resume, device=args.device)
    ev = r["eval"]
    print(f"{args.out}: step {r['step']}, held-out PSNR {ev['psnr']:.2f} dB (objects {ev['psnr_objects']:.2f} dB), "
          f"SSIM {ev['ssim']:.3f}; reconstruction grids in {args.out}")


def cmd_train_dynamics(args: argparse.Namespace) -> None:
    from cosmos_sim.dynamics.deterministic import RENDER_HEAD
    from cosmos_sim.dynamics.train import train_dynamics

    r = train_dynamics(args.data, args.tokenizer, args.out, args.model, args.preset, _train_config(args),
                       overrides=({"horizon": args.horizon} if args.horizon else {}) | (
                           RENDER_HEAD if args.render_head else {}), resume=args.resume,
                       device=args.device, state_steps=args.state_steps, state_model=args.state_model,
                       state_members=args.state_members, state_episodes=args.state_episodes,
                       task_steps=args.task_steps, cross_view=args.cross_view)
    print(f"{args.out}: step {r['step']}, loss {r.get('loss', float('nan')):.4f}; world model: {r['world_model']}")


def cmd_train_all(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from cosmos_sim.dynamics.train import train_world_model

    if not args.data or not args.out:
        raise InputError("train needs --data DIR and --out RUN (or a stage: train tokenizer|dynamics)")
    tc = _train_config(args)
    r = train_world_model(args.data, args.out, args.tokenizer_preset, args.model, args.preset,
                          tokenizer_train=replace(tc, steps=args.tokenizer_steps or tc.steps), dynamics_train=tc,
                          resume=args.resume, device=args.device, log=print, state_model=args.state_model,
                          state_members=args.state_members, state_episodes=args.state_episodes,
                          state_steps=args.state_steps, task_steps=args.task_steps, cross_view=args.cross_view)
    from cosmos_sim.data import EpisodeDataset
    from cosmos_sim.worlds.base import DATASET, GYM_ENV, world_kind

    world = EpisodeDataset(args.data).world
    if world_kind(world) == DATASET:  # a recorded dataset's world: no simulator, no gym id
        print(f"world model: {r['world_model']}  (compare it open loop: cosmos-sim compare --model {args.out} "
              f"--data {args.data} --out REPORT; closed loop needs a simulator)")
    elif world_kind(world) == GYM_ENV:
        print(f"world model: {r['world_model']}  (use it: gym.make('cosmos_sim/Learned-v0', model='{args.out}'))")
    else:
        print(f"world model: {r['world_model']}  (use it: gym.make('cosmos_sim/<World>-v0', backend='world_model', "
              f"model='{args.out}'))")


def cmd_train_policy(args: argparse.Namespace) -> None:
    from cosmos_sim.policies.train import train_policy

    cfg = config_from(POLICY, args, POLICY_FLAGS)
    _check_device(cfg.device)
    print("\n".join(train_policy(cfg, args.out, progress=not args.no_progress)["summary"]))


# --- the table -----------------------------------------------------------------------------------------
COMMANDS: list[Command] = [
    Command("worlds", "list the worlds: actions, state layout, control rate, episode length, backends", cmd_worlds, (
        flag("names", nargs="*", metavar="WORLD", help="only these worlds (default: all)"),
        flag("--json", action="store_true", help="print a JSON list instead of text"))),
    Command("models", "list the shipped world models: how each was trained, its headline figures", cmd_models, (
        flag("--json", action="store_true", help="print a JSON list (with each model's full training facts)"),)),
    Command("demo", "the shipped learned twin of every world against MuJoCo and PyBullet (--train: the whole loop)",
            cmd_demo, (
        flag("--out", type=Path, default=Path("demo_out"), help="output directory (default: %(default)s)"),
        flag("--train", action="store_true", help="collect, train and compare one world (--world) instead"),
        flag("--world", default="push", help="with --train: the world (default: push)"),
        flag("--preset", default="cpu", help="with --train: cpu (about 20 min on 2 cores), gpu (CUDA) or smoke "
                                             "(seconds, for tests) (default: %(default)s)"),
        flag("--episodes", type=positive_int, default=None, help="closed-loop episodes per policy and backend "
             "(default: 30); with --train: episodes to collect (default: the preset's); with --physics-only: per "
             "world and backend (default: 20)"),
        flag("--seed", type=int, default=0, help="seed of collection, training and evaluation (default: 0)"),
        flag("--physics-only", action="store_true",
             help="only run the scripted expert in MuJoCo and PyBullet and write side-by-side videos"),
        flag("--worlds", nargs="+", metavar="WORLD", help="worlds to compare, or with --physics-only to run "
                                                          "(default: all with a shipped model / all)"),
        flag("--image-size", type=positive_int, default=64, help="with --physics-only: frame size (default: 64)"),
        DEVICE, NO_PROGRESS),
            description="Compare each world's shipped learned twin with MuJoCo and PyBullet: OUT/<world>/report.md\n"
                        "and a table of all worlds in OUT/report.md. --train: collect, train (time-boxed) and compare\n"
                        "one world, continuing where a re-run stopped. --physics-only: the expert in both engines."),
    Command("compare", "learned vs physics: open-loop fidelity, policy evaluation and ranking; writes a report",
            cmd_compare, (
        config_flags(COMPARE, COMPARE_FLAGS),
        flag("--model", default="pretrained", help="world model: run directory, world_model.safetensors or "
                                                   "'pretrained' (the world's shipped model) (default: pretrained)"),
        flag("--physics-only", action="store_true", help="compare PyBullet with MuJoCo only (no --model)"),
        flag("--data", type=Path, default=None, metavar="DIR", help="open loop against this dataset's recorded "
             "episodes instead of physics (its held-out ones when the model was trained on it): what a world with "
             "no simulator allows, e.g. an imported LeRobot dataset; needs --model"),
        *ENV_FLAGS, flag("--out", type=Path, required=True, help="report directory"), NO_PROGRESS),
            description="Compare a world model with MuJoCo (and PyBullet as a physics-vs-physics yardstick):\n"
                        "open-loop PSNR/SSIM/state error against the horizon, closed-loop success of each policy\n"
                        "in every backend, and rank correlations. Writes report.json, report.md, PNG plots and\n"
                        "MP4 videos (MuJoCo | PyBullet | learned | difference) into --out. --model RUN --data DIR:\n"
                        "open loop against a dataset's recorded episodes instead (worlds with no simulator)."),
    Command("train-policy", "train a policy: PPO on any backend (the learned one batched on its device), or BC",
            cmd_train_policy, (
        config_flags(POLICY, POLICY_FLAGS, required=("algo",)),
        flag("--out", type=Path, required=True, help="run directory; the policy is OUT/policy.safetensors"),
        NO_PROGRESS, TRACK),
            description="PPO (policies/ppo.py) on a vector env of any backend -- with --backend world_model the\n"
                        "rollouts stay on the model's device -- or behaviour cloning from a dataset. The policy\n"
                        "is saved as OUT/policy.safetensors and evaluated with `cosmos-sim evaluate --policy OUT`."),
    Command("evaluate", "evaluate one policy in one backend: success rate, return, length with 95%% CIs",
            cmd_evaluate, (config_flags(EVALUATE, EVALUATE_FLAGS),
                           flag("--out", type=Path, default=None, help="also write the result as JSON here"))),
    Command("collect", "record episodes from a physics backend into a sharded dataset (resumable)", cmd_collect, (
        config_flags(COLLECT, COLLECT_FLAGS), *ENV_FLAGS,
        flag("--out", required=True, help="dataset directory; re-running resumes"),
        flag("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
             help="collect with Ray tasks: on a new local instance, or on the cluster at ADDRESS ('auto', "
                  "'host:port'); only this machine writes --out (needs cosmos_sim[ray])"), NO_PROGRESS),
            description="Collect EPISODES episodes (seed SEED+i for episode i) into --out as safetensors shards\n"
                        "with a manifest. Re-running the same command after a kill continues where it stopped."),
    Command("data", "inspect, verify, curate, merge, export and import datasets", subcommands=(
        Command("info", "counts, worlds, cameras, policies, object motion, and a thumbnail grid", cmd_data_info, (
            DATA_DIR, flag("--thumbnails", default=None, help="thumbnail grid PNG (default: DIR/thumbnails.png)"),
            flag("--json", action="store_true", help="print the report as JSON"))),
        Command("verify", "check every shard's checksums, schema and counts against the manifest", cmd_data_verify,
                (DATA_DIR,)),
        Command("curate", "drop static, diverged and duplicate episodes into a curated view", cmd_data_curate, (
            DATA_DIR, flag("--out", required=True, help="directory for the curated view (a manifest; no data "
                                                        "copied)"), config_flags(CURATE, CURATE_FLAGS))),
        Command("export", "export a dataset to Minari or LeRobot v3 (see docs/datasets.md)", cmd_data_export, (
            flag("--format", required=True, help="minari or lerobot"), DATA_DIR,
            flag("out", help="minari: a Minari root (what MINARI_DATASETS_PATH names); lerobot: a new directory"),
            config_flags(EXPORT, EXPORT_FLAGS), NO_PROGRESS)),
        Command("import", "import a Minari or LeRobot v3.0 dataset (ours round-trip exactly; see docs/datasets.md)",
                cmd_data_import, (
            flag("--format", required=True, help="minari or lerobot"),
            flag("source", metavar="NAME_OR_PATH", help="minari: a dataset id (in the local Minari root) or directory; "
                                                        "lerobot: a LeRobot v3.0 dataset directory"),
            flag("out", help="new dataset directory"), config_flags(IMPORT, IMPORT_FLAGS), NO_PROGRESS)),
        Command("merge", "merge datasets of one collection with disjoint seeds into one (shards hard-linked)",
                cmd_data_merge, (
            flag("dirs", nargs="+", metavar="DIR", help="datasets to merge (each is verified first)"),
            flag("--out", required=True, help="new directory for the merged dataset"),
            config_flags(MERGE, MERGE_FLAGS))),
    )),
    Command("train", "train a world model (tokenizer, then dynamics) or one stage", cmd_train_all, (
        flag("--data", help="dataset directory (from cosmos-sim collect)"),
        flag("--out", help="run directory: OUT/tokenizer, OUT/dynamics, OUT/world_model.safetensors"), *TRAIN_ARGS,
        flag("--tokenizer-preset", default="cv8", help="tokenizer preset (default: cv8)"),
        flag("--tokenizer-steps", type=positive_int, default=None, help="tokenizer steps (default: --steps)"),
        flag("--model", default="deterministic", help="dynamics family (default: deterministic)"),
        flag("--preset", default="small", help="dynamics preset (default: small)"), *STATE_MODEL), subcommands=(
        Command("tokenizer", "train a causal video tokenizer (continuous or FSQ) with the shared trainer",
                cmd_train_tokenizer, (*STAGE_ARGS, flag("--preset", default="cv8", help="tokenizer preset, e.g. "
                                                        "cv8, cv16, dv8, tiny (default: cv8)"))),
        Command("dynamics", "train latent dynamics + state head on a tokenizer's latents; export a WorldModel",
                cmd_train_dynamics, (
            *STAGE_ARGS, flag("--tokenizer", required=True, help="tokenizer run directory or checkpoint"),
            flag("--model", default="deterministic", help="dynamics family, e.g. deterministic, diffusion, "
                                                          "autoregressive (default: deterministic)"),
            flag("--preset", default="small", help="the family's preset: tiny, small or base (default: small)"),
            flag("--horizon", type=positive_int, default=None,
                 help="training rollout length on the model's own predictions (default: the preset's)"),
            flag("--render-head", action="store_true", help="deterministic family: a state renderer under the "
                 "told camera (reading where its rays meet tabletop planes) as each step's base, with its own "
                 "loss on every frame (with --cross-view: frames follow any camera)"),
            *STATE_MODEL)),
    )),
]


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
