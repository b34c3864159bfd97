"""Pixel PPO: a policy that acts on frames alone, trained by PPO in MuJoCo or in the learned video world, and
evaluated in MuJoCo on frames.

    python benchmarks/pixel_ppo.py --worlds reach                          # in MuJoCo, default camera
    python benchmarks/pixel_ppo.py --worlds reach --backend world_model --state-data 5000   # in the learned world
    python benchmarks/pixel_ppo.py --table                                 # the saved results

The actor sees the last 2 frames (64x64) through IMPALA's CNN (`--encoder small`: three convolutions) and one
hidden layer; training reads the state beside them (the critic's input and an auxiliary target for the actor's
features: `PPOConfig.critic`, `aux_state`), which the saved policy does not take. In the learned world
(`--backend world_model`) the frames and the state are the model's predictions: the policy never sees a MuJoCo
frame until it is evaluated. A checkpoint every `--every` steps is scored on 20 MuJoCo seeds (500-519); the
final policy on 50 (1000-1049), from the same kind of camera it trained under. "physics steps" counts the MuJoCo
steps behind the policy: the env steps of a MuJoCo run; for a learned-world run, every step of the model's
training data (its episodes with frames and of states alone, collected again from the recipe's seeds and
counted; with `--state-data N`, the frames' and the N new steps of a fresh state model).
Writes benchmarks/results/pixel_ppo_<device>.json; the runs stay in --out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
EVAL_EPISODES, EVAL_SEED = 50, 1000
CURVE_EPISODES, CURVE_SEED = 20, 500


def model_physics_steps(model, states: bool = True) -> dict | None:
    """The MuJoCo steps behind a shipped world model: its recipe's episodes (with frames, and of states alone for
    the state model) collected again from their seeds (nothing rendered) and counted."""
    from dataclasses import replace

    from cosmos_sim.data.collect import collect_states
    from cosmos_sim.dynamics.train import STATE_SEED_OFFSET
    from cosmos_sim.zoo import Recipe

    recipe = (getattr(model, "info", None) or {}).get("recipe")
    if not recipe:
        return None
    r = Recipe(**recipe)
    frames = r.collect_config()
    out = {"frames": sum(len(a) for a in collect_states(frames, progress=False)[1])}
    if states and r.state_episodes:
        states = replace(frames, episodes=r.state_episodes, base_seed=frames.base_seed + STATE_SEED_OFFSET)
        out["states"] = sum(len(a) for a in collect_states(states, progress=False)[1])
    return out


def fresh_state_model(wm, world: str, steps: int, seed: int):
    """The world model with a new 5-member state model fitted on `steps` new MuJoCo steps (the `mix` policy,
    as datasets are collected; the Dyna loop's round 0: policies/dyna.py), so the steps behind the learned world
    are the video model's frames and these."""
    from functools import partial

    from cosmos_sim.policies.dyna import COLLECT_SEED, DynaConfig, collect_real, fit_round_model, initial_policy

    d = DynaConfig(world=world, rounds=1, real_steps=steps, seed=seed)
    real = collect_real(world, partial(initial_policy, d.initial_policy, world), steps, COLLECT_SEED + seed * 100_000)
    return fit_round_model(d, wm, [real], seed, str(wm.device), progress=True), int(len(real["actions"]))


def run(world: str, backend: str, camera: str, steps: int, every: int, out: Path, device: str | None,
        num_envs: int, epochs: int, lr: float, model: str, seed: int, state_data: int = 0,
        actor_layers: int = 1, encoder: str = "small") -> dict:
    from cosmos_sim.envs.registration import make_world_vec_env
    from cosmos_sim.evaluation.closed_loop import evaluate_policies
    from cosmos_sim.fileio import atomic_write_json
    from cosmos_sim.policies.ppo import PPOConfig, train_ppo
    from cosmos_sim.worlds import get_world

    w = get_world(world)
    kw: dict = {"obs_mode": "both", "camera": None if camera == "default" else camera}
    wm = None
    if backend == "world_model":
        from cosmos_sim.evaluation.model import load_checked_model

        wm = load_checked_model(model, w.name, device)
        physics = model_physics_steps(wm, states=not state_data) or {}  # a fresh state model replaces its steps
        if state_data:
            wm, physics["states"] = fresh_state_model(wm, w.name, state_data, seed)
        kw |= {"model": wm, "array_type": "torch", "device": device}
    envs = make_world_vec_env(w.name, num_envs=num_envs, backend=backend, **kw)
    if camera == "random":
        from cosmos_sim.envs.camera_obs import CameraObservation

        envs = CameraObservation(envs, 1)
    cfg = PPOConfig(total_steps=steps, update_epochs=epochs, minibatches=4, lr=lr, seed=seed,
                    actor_layers=actor_layers, encoder=encoder)
    run_dir = out / world / (f"{backend}_{camera}_{steps}_s{seed}_a{actor_layers}_n{num_envs}"
                             + (f"_state{state_data}" if state_data else "")
                             + ("" if encoder == "small" else f"_{encoder}"))
    done = run_dir / "train.json"  # a finished training is not run again (its scoring may be)
    if done.is_file():
        envs.close()
        result = json.loads(done.read_text())
    else:
        try:
            result = train_ppo(envs, cfg, "pixels", out=run_dir, world=w.name, device=device, save_every=every,
                               camera="random" if camera == "random" else "fixed")
        finally:
            envs.close()
        result = {k: result[k] for k in ("steps", "wall_s", "net_config", "policy_path", "history")}
        atomic_write_json(done, result, indent=1)
    minutes = result["wall_s"] / 60
    cam = None if camera == "default" else camera
    ckpts = sorted((run_dir / "checkpoints").glob("step_*/policy.safetensors"))
    curve = evaluate_policies(w.name, "mujoco", [str(p) for p in ckpts], episodes=CURVE_EPISODES, seed=CURVE_SEED,
                              device=device, camera=cam) if ckpts else {}
    final = evaluate_policies(w.name, "mujoco", [result["policy_path"]], episodes=EVAL_EPISODES, seed=EVAL_SEED,
                              device=device, camera=cam)[result["policy_path"]]
    learned = None
    if wm is not None:  # the learned world's own verdict on the same seeds, the exploitation gap beside it
        learned = evaluate_policies(w.name, "world_model", [result["policy_path"]], episodes=EVAL_EPISODES,
                                    seed=EVAL_SEED, model=wm, device=device, camera=cam)[result["policy_path"]]
    if backend != "world_model":
        physics = {"env": result["steps"]}
    return {"world": w.name, "backend": backend, "camera": camera, "ppo": cfg.to_dict(), "num_envs": num_envs,
            "net": result["net_config"], "train_minutes": minutes, "env_steps": result["steps"],
            "steps_per_s": result["steps"] / result["wall_s"],
            "physics_steps": sum(physics.values()) if physics else None, "physics_parts": physics,
            "model": model if wm is not None else None,
            "curve": {int(Path(p).parent.name.split("_")[1]): curve[str(p)]["success_rate"]["mean"] for p in ckpts},
            "success": final["success_rate"], "return": final["return"], "episodes": EVAL_EPISODES,
            "learned_success": learned["success_rate"] if learned else None, "policy": result["policy_path"]}


def limits(world: str, model: str, device: str | None, results: dict) -> dict:
    """Every finished pixel-PPO policy of `world` in the learned world (the model as shipped) and in MuJoCo on
    oracle frames (each true frame through the model's tokenizer): where the frames cost a policy its success."""
    from cosmos_sim.evaluation.closed_loop import evaluate_policies
    from cosmos_sim.evaluation.model import load_checked_model

    policies = [v["policy"] for v in results.get("runs", {}).values() if v["world"].lower() == world.lower()
                and v["camera"] == "default" and Path(v["policy"]).is_file()]
    wm = load_checked_model(model, world, device)
    kw = {"episodes": EVAL_EPISODES, "seed": EVAL_SEED, "model": wm, "device": device}
    learned = evaluate_policies(world, "world_model", policies, **kw)
    oracle = evaluate_policies(world, "mujoco", policies, frames="oracle", **kw)
    return {p: {"learned": learned[p]["success_rate"], "oracle_frames": oracle[p]["success_rate"]} for p in policies}


def table(results: dict) -> str:
    lines = ["| world | trained in | camera | encoder, actor layers | env steps | physics steps | train min | steps/s "
             "| success along the run (20 seeds) | MuJoCo success (95% CI) | learned success |",
             "|---|---|---|---|---:|---:|---:|---:|---|---|---|"]
    for r in results["runs"].values():
        s, ls = r["success"], r.get("learned_success")
        phys = f"{r['physics_steps']:,}" if r.get("physics_steps") else "?"
        curve = " ".join(f"{100 * v:.0f}" for _, v in sorted(r["curve"].items(), key=lambda kv: int(kv[0])))
        lines.append(f"| {r['world']} | {r['backend']} | {r['camera']} | {r['net']['encoder']}, "
                     f"{r['net'].get('actor_layers', 0)} | {r['env_steps']:,} | {phys} | {r['train_minutes']:.0f} | "
                     f"{r['steps_per_s']:.0f} | {curve} | {100 * s['mean']:.0f} % ({100 * s['lo']:.0f}–"
                     f"{100 * s['hi']:.0f}) | " + (f"{100 * ls['mean']:.0f} %" if ls else "–") + " |")
    return "\n".join(lines)


def main() -> None:
    from cosmos_sim.fileio import update_results

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worlds", default="reach")
    p.add_argument("--backend", choices=("mujoco", "world_model"), default="mujoco")
    p.add_argument("--model", default="pretrained", help="the learned world (--backend world_model)")
    p.add_argument("--state-data", type=int, default=0, help="--backend world_model: fit a fresh 5-member state "
                   "model on this many new MuJoCo steps (0: keep the model's)")
    p.add_argument("--camera", choices=("default", "random"), default="default")
    p.add_argument("--steps", type=int, default=200_000)
    p.add_argument("--every", type=int, default=25_000, help="checkpoint (and score) every N env steps")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--encoder", choices=("small", "impala"), default="impala")
    p.add_argument("--actor-layers", type=int, default=1, help="hidden layers between the CNN and the action mean")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / ".runs" / "pixel_ppo")
    p.add_argument("--device", default=None)
    p.add_argument("--limits", action="store_true", help="score every finished default-camera policy of --worlds "
                   "in the learned world and on oracle frames (what the frames cost), then exit")
    p.add_argument("--table", action="store_true", help="print the saved results and exit")
    args = p.parse_args()
    dev = args.device or "cpu"
    path = RESULTS / f"pixel_ppo_{dev.split(':')[0]}.json"
    results = json.loads(path.read_text()) if path.is_file() else {"runs": {}}
    if args.limits:
        for world in [w.strip() for w in args.worlds.split(",") if w.strip()]:
            for pol, v in update_results(path, "limits", world, limits(world, args.model, args.device, results),
                                         dev)["limits"][world].items():
                print(f"{pol}: learned {100 * v['learned']['mean']:.0f} %, oracle frames "
                      f"{100 * v['oracle_frames']['mean']:.0f} %")
        return
    if not args.table:
        import torch

        torch.set_num_threads(args.threads)
        for world in [w.strip() for w in args.worlds.split(",") if w.strip()]:
            key = (f"{world}/{args.backend}/{args.camera}/{args.steps}/s{args.seed}/a{args.actor_layers}"
                   f"/n{args.num_envs}" + (f"/state{args.state_data}" if args.state_data else "")
                   + ("" if args.encoder == "small" else f"/{args.encoder}"))
            r = run(world, args.backend, args.camera, args.steps, args.every, args.out, args.device, args.num_envs,
                    args.epochs, args.lr, args.model, args.seed, args.state_data, args.actor_layers, args.encoder)
            results = update_results(path, "runs", key, r | {"threads": args.threads}, dev)
    print(table(results))


if __name__ == "__main__":
    main()
