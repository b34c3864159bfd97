"""`cosmos-sim`: the command line. It parses, calls the library, and prints what the library returns.

Each subcommand is one `cmd_*` function plus one `Command` row in `COMMANDS`, which declares its flags one by
one (`flag`) or generates them from a config dataclass (`config_flags`), so `--help` shows the config's own
defaults. Errors and exit statuses: see `cosmos_sim.cli_support`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from cosmos_sim import cli_support
from cosmos_sim.cli_support import DEVICE, ENV_FLAGS, NO_PROGRESS, TRACK, Command, config_flags, config_from, flag, run
from cosmos_sim.config import positive_int


# --- worlds, demo --------------------------------------------------------------------------------------
def cmd_worlds(args: argparse.Namespace) -> None:
    from cosmos_sim.envs.registration import world_info, world_lines
    from cosmos_sim.worlds import world_list

    infos = [world_info(w) for w in world_list(args.names)]
    print(json.dumps(infos, indent=2) if args.json else "\n\n".join("\n".join(world_lines(d)) for d in infos))


DEMO = "cosmos_sim.demo:DemoCommand"
DEMO_FLAGS = ("train", "world", "preset", "episodes", "seed", "physics_only", "image_size")


def cmd_demo(args: argparse.Namespace) -> None:
    from cosmos_sim.demo import run_command

    print("\n".join(run_command(config_from(DEMO, args, DEMO_FLAGS), args.out, args.worlds, args.device,
                                progress=not args.no_progress)))


# --- compare, evaluate ---------------------------------------------------------------------------------
COMPARE = "cosmos_sim.evaluation.compare:CompareConfig"
COMPARE_FLAGS = ("world", "policies", "episodes", "open_loop_episodes", "horizon", "open_loop_policy", "videos",
                 "camera", "seed", "device")
EVALUATE = "cosmos_sim.evaluation.closed_loop:EvalConfig"
EVALUATE_FLAGS = ("world", "backend", "policy", "model", "episodes", "seed", "camera", "device")


def cmd_compare(args: argparse.Namespace) -> None:
    from cosmos_sim.evaluation.compare import run_command

    print("\n".join(run_command({n: getattr(args, n) for n in COMPARE_FLAGS}, args.out, model=args.model,
                                physics_only=args.physics_only, data=args.data, env=args.env,
                                env_kwargs=args.env_kwargs, object_entries=args.object_entries,
                                progress=not args.no_progress)))


REFINE = "cosmos_sim.evaluation.refine:RefineConfig"
REFINE_FLAGS = ("env", "env_kwargs", "policies", "episodes", "rounds", "check_episodes", "rank_episodes", "state_steps",
                "task_steps", "lr", "seed", "device")


def cmd_twin_refine(args: argparse.Namespace) -> None:
    from cosmos_sim.evaluation.refine import run_command

    print("\n".join(run_command(config_from(REFINE, args, REFINE_FLAGS), args.model, args.out, not args.no_progress)))


def cmd_evaluate(args: argparse.Namespace) -> None:
    from cosmos_sim.evaluation.closed_loop import run_command

    print("\n".join(run_command(config_from(EVALUATE, args, EVALUATE_FLAGS), args.out)))


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


cmd_models = cli_support.printing("cosmos_sim.zoo:models_command", "json")
cmd_data_info = cli_support.printing("cosmos_sim.data.inspect:info_command", "dir", "thumbnails", "json")
cmd_data_verify = cli_support.printing("cosmos_sim.data.inspect:verify_command", "dir")


def cmd_collect(args: argparse.Namespace) -> None:
    from cosmos_sim.data.collect import summary_line
    from cosmos_sim.data.ray_collect import collect_on

    env = cli_support.env_world(args)  # --env ID: the env's world in place of --world
    config = config_from(COLLECT, args, COLLECT_FLAGS, **({"world": env} if env else {}))
    print(summary_line(collect_on(config, args.out, args.ray, progress=not args.no_progress), args.out))


def cmd_data_curate(args: argparse.Namespace) -> None:
    from cosmos_sim.data.curate import curate, summary_line

    print(summary_line(curate(args.dir, args.out, config_from(CURATE, args, CURATE_FLAGS)), args.out))


def cmd_data_export(args: argparse.Namespace) -> None:
    from cosmos_sim.data.interchange import export_dataset, export_summary

    print(export_summary(export_dataset(args.dir, args.out, args.format, config_from(EXPORT, args, EXPORT_FLAGS),
                                        progress=not args.no_progress), args.out))


def cmd_data_import(args: argparse.Namespace) -> None:
    from cosmos_sim.data.interchange import import_dataset, import_summary

    print("\n".join(import_summary(import_dataset(args.source, args.out, args.format,
                                                  config_from(IMPORT, args, IMPORT_FLAGS),
                                                  progress=not args.no_progress), args.out)))


def cmd_data_merge(args: argparse.Namespace) -> None:
    from cosmos_sim.data.merge import merge, summary_line

    print(summary_line(merge(args.dirs, args.out, config_from(MERGE, args, MERGE_FLAGS)), args.out))


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
STATE = "cosmos_sim.dynamics.train:StateModelConfig"
STATE_FLAGS = {"model": "--state-model", "members": "--state-members", "steps": "--state-steps",
               "task_steps": "--task-steps", "task_members": "--task-members", "episodes": "--state-episodes"}
STATE_MODEL = (flag("--cross-view", action="store_true", help="data of several views (collect --views N): also "
                    "train on targets from another view than the context, so frames follow the camera it is told"),
               config_flags(STATE, STATE_FLAGS, flag_dests=True))
POLICY = "cosmos_sim.policies.train:PolicyTrainConfig"
POLICY_FLAGS = ("algo", "world", "backend", "model", "data", "obs_mode", "num_envs", "steps", "lr", "seed", "device",
                "save_every", "dyna_rounds", "real_steps", "uncertainty_penalty", "halt_uncertainty")


def _train_config(args: argparse.Namespace):
    cli_support.check_device(args.device)
    return config_from(TRAIN, args, TRAIN_FLAGS)


def cmd_train_tokenizer(args: argparse.Namespace) -> None:
    from cosmos_sim.tokenizer.train import summary_line, train_tokenizer

    r = train_tokenizer(args.data, args.out, args.preset, _train_config(args), resume=args.resume, device=args.device)
    print(summary_line(r, args.out))


def cmd_train_dynamics(args: argparse.Namespace) -> None:
    from cosmos_sim.dynamics.train import family_overrides, train_dynamics

    r = train_dynamics(args.data, args.tokenizer, args.out, args.model, args.preset, _train_config(args),
                       overrides=family_overrides(args.horizon, args.render_head), resume=args.resume,
                       device=args.device, state=config_from(STATE, args, STATE_FLAGS, flag_dests=True),
                       cross_view=args.cross_view, log=print)
    print(f"{args.out}: step {r['step']}, loss {r.get('loss', float('nan')):.4f}; world model: {r['world_model']}")


def cmd_train_all(args: argparse.Namespace) -> None:
    from cosmos_sim.dynamics.train import train_world_model, usage_line

    tc = _train_config(args)
    r = train_world_model(args.data, args.out, args.tokenizer_preset, args.model, args.preset, dynamics_train=tc,
                          tokenizer_train=config_from(TRAIN, args, TRAIN_FLAGS, steps=args.tokenizer_steps or tc.steps),
                          resume=args.resume, device=args.device, log=print, cross_view=args.cross_view,
                          state=config_from(STATE, args, STATE_FLAGS, flag_dests=True))
    print(usage_line(args.data, args.out, r["world_model"]))


def cmd_train_policy(args: argparse.Namespace) -> None:
    from cosmos_sim.policies.train import train_policy

    cfg = config_from(POLICY, args, POLICY_FLAGS)
    cli_support.check_device(cfg.device)
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
        config_flags(DEMO, DEMO_FLAGS),
        flag("--worlds", nargs="+", metavar="WORLD", help="worlds to compare, or with --physics-only to run "
                                                          "(default: all with a shipped model / all)"),
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
        flag("--data", type=Path, default=None, metavar="DIR", help="with --model: open loop against this dataset's "
             "episodes instead of physics (its held-out ones), all a world with no simulator allows"),
        *cli_support.COMPARE_ENV_FLAGS, flag("--out", type=Path, required=True, help="report directory"), NO_PROGRESS),
            description="A world model against MuJoCo (PyBullet: a yardstick): open-loop PSNR, state error; closed\n"
                        "loop success per policy, backend; rank correlations, per-policy trust: report.json/md,\n"
                        "plots and videos in --out. --model RUN --data DIR: open loop against a dataset's episodes."),
    Command("twin", "learned twins of Gymnasium envs", subcommands=(Command(
        "refine", "gather real episodes with the policies the twin flags off its data, refit, re-rank (resumable)",
        cmd_twin_refine, (config_flags(REFINE, REFINE_FLAGS), flag("--model", required=True, help="the twin: run "
                          "directory or .safetensors"), flag("--out", required=True, help="rounds and refine.md; "
                          "re-running resumes"), NO_PROGRESS)),)),
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
        flag("--preset", default="small", help="dynamics preset (default: small)"), *STATE_MODEL),
            needs=("--data DIR", "--out RUN"), subcommands=(
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

