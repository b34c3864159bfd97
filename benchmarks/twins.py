"""Learned twins of Gymnasium's MuJoCo envs, end to end through the public CLI, and how well they rank policies.

    python benchmarks/twins.py                                # InvertedPendulum-v5, Reacher-v5, Pusher-v5 (CPU)
    python benchmarks/twins.py --envs Reacher-v5 --table      # one env; --table prints the saved results only
    python benchmarks/twins.py --suite mujoco                 # + the Gymnasium MuJoCo suite (terminations, gaits)
    .venv-mj33/bin/python benchmarks/twins.py --suite metaworld   # Meta-World v3 arm tasks (metaworld extra)
    python benchmarks/twins.py --envs PushT                   # PushT (gym-pusht, pymunk: the pusht extra)

Per env (every step a `cosmos-sim` command, so the figures are what a user gets):
1. two PPO runs in the env itself with a checkpoint every N steps (`train-policy --save-every`): seed 0 is
   the ladder to rank, seed 1 only feeds the data (so no ranked policy made the twin's data);
2. `collect --env`: episodes from random, explore and each data checkpoint with action noise, drawn per episode;
3. `train` (tokenizer, then dynamics + state ensemble + reward/termination head) in a fixed wall-clock budget;
4. `compare --env`: the ladder (random + 6 checkpoints spread over the run's returns) in the env and the twin,
   Spearman rho of mean returns, reward MAE per step beside the ladder's return spread.
Meta-World tasks (`--envs metaworld:reach-v3`) and PushT (`--envs PushT`) have no PPO: the data comes from
random, explore and two degradations of a scripted expert (Meta-World's own; PushT: hand-written pushers), the
ladder from the expert and seven others, and compare also measures the object's displacement under the expert.
The state model's and task head's budgets are the twin recipe's, the same rule for every env. Writes
benchmarks/results/twins_<device>.json; every stage resumes from --out (benchmarks/.runs/twins).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
CLI = [sys.executable, "-m", "cosmos_sim"]
SETTINGS = {
    # ppo steps, checkpoint every, data episodes, action noise on the data policies, train minutes (tokenizer,
    # dynamics + state model + task head). The state model's and task head's budgets are the twin recipe's
    # (cosmos_sim.dynamics.state_config.twin_recipe: from the data), the same for every env.
    "InvertedPendulum-v5": {"ppo": 40_000, "every": 4_000, "episodes": 80, "noise": 0.3, "minutes": (6, 12)},
    "Reacher-v5": {"ppo": 300_000, "every": 30_000, "episodes": 400, "noise": 0.3, "minutes": (6, 12)},
    "Pusher-v5": {"ppo": 400_000, "every": 40_000, "episodes": 300, "noise": 0.3, "minutes": (6, 18)},
    # the third-party suite's Gymnasium MuJoCo family (terminations, contact-rich gaits)
    "InvertedDoublePendulum-v5": {"ppo": 100_000, "every": 10_000, "episodes": 200, "noise": 0.3, "minutes": (6, 12)},
    "Hopper-v5": {"ppo": 150_000, "every": 15_000, "episodes": 300, "noise": 0.3, "minutes": (6, 12)},
    "Walker2d-v5": {"ppo": 150_000, "every": 15_000, "episodes": 300, "noise": 0.3, "minutes": (6, 12)},
    "Swimmer-v5": {"ppo": 150_000, "every": 15_000, "episodes": 150, "noise": 0.3, "minutes": (6, 12)},
    "HalfCheetah-v5": {"ppo": 150_000, "every": 15_000, "episodes": 150, "noise": 0.3, "minutes": (6, 12)},
}
HOME = ("InvertedPendulum-v5", "Reacher-v5", "Pusher-v5")  # the default run: the twins the recipe must keep
# Meta-World v3 arm tasks (the `metaworld` extra: run this script with .venv-mj33/bin/python, `make venv-mujoco3`):
# no PPO; the ladder is Meta-World's own expert degraded, the data other degradations (never a ranked policy).
METAWORLD = ("reach-v3", "pick-place-v3", "door-open-v3", "drawer-close-v3", "button-press-topdown-v3",
             "window-open-v3")
# The ladder's degradations span the return range from random to the expert (checked in the env on seeds
# 500-505, not the ranking's, for reach-v3 and door-open-v3); milder ones (noise <= 0.6, speed >= 0.25) left
# reach-v3's experts within 11 % of the spread of each other.
MW_SETTINGS = {"episodes": 160, "minutes": (8, 16), "data": ("@noise=0.45", "@speed=0.35"),
               "ladder": ("", "@noise=1.0", "@noise=2.0", "@speed=0.1", "@speed=0.05", "@act=0.15", "@act=0.05")}
MW_ID = "metaworld:Meta-World/MT1"
MW_OBJECT = "4:7"  # the object's position in the 39-d observation
# PushT (gym-pusht, pymunk; the `pusht` extra): no PPO either; hand-written pushers (benchmarks/pusht_policies.py)
PUSHT_ID = "gym_pusht:gym_pusht/PushT-v0"
PUSHT = {"episodes": 200, "minutes": (6, 14), "kwargs": {"obs_type": "state"}, "expert": "pusht_policies:pusher_lazy",
         "data": ("@noise=0.45", "pusht_policies:pusher@noise=0.2"),
         "ladder": ("", "@noise=0.1", "@noise=0.25", "pusht_policies:pusher", "pusht_policies:to_block",
                    "pusht_policies:still", "@act=0.5"),
         "object": "2:4"}  # the T's position in the 5-d observation (pixels)
LADDER_SIZE = 6


def sh(args: list[str], log: Path) -> float:
    """Run a cosmos-sim command (output appended to `log`); returns its wall seconds."""
    t0 = time.perf_counter()
    with open(log, "a") as f:
        f.write("$ cosmos-sim " + " ".join(args) + "\n")
        f.flush()
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))  # metaworld_experts
        subprocess.run(CLI + args, check=True, stdout=f, stderr=subprocess.STDOUT,
                       env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
                            "PYTHONPATH": path})
    return time.perf_counter() - t0


def checkpoints(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob("step_*"))


def pick_ladder(run: Path, env: str, log: Path, out: Path, k: int = LADDER_SIZE) -> list[str]:
    """k checkpoints whose returns in the env spread over the run's range (evaluated on seeds 10000..)."""
    import numpy as np

    cache = out / "checkpoint_returns.json"
    if cache.is_file():
        rets = json.loads(cache.read_text())
    else:
        rets = {}
        for c in checkpoints(run):
            f = out / f"eval_{c.name}.json"
            sh(["evaluate", "--world", f"env:{env}", "--backend", "env", "--policy", str(c), "--episodes", "10",
                "--seed", "10000", "--out", str(f)], log)
            rets[str(c)] = json.loads(f.read_text())["return"]["mean"]
        cache.write_text(json.dumps(rets, indent=1))
    items = sorted(rets.items(), key=lambda kv: kv[1])
    vals = np.array([v for _, v in items])
    chosen: list[str] = []
    for q in np.linspace(vals.min(), vals.max(), k):  # nearest unchosen checkpoint to evenly spaced returns
        order = np.argsort(np.abs(vals - q))
        for i in order:
            if items[i][0] not in chosen:
                chosen.append(items[i][0])
                break
    return sorted(chosen)


def run_env(env: str, out: Path, device: str | None) -> dict:
    s = SETTINGS[env]
    out.mkdir(parents=True, exist_ok=True)
    log = out / "log.txt"
    times: dict[str, float] = {}
    dev = ["--device", device] if device else []
    for name, seed in (("ppo_ladder", 0), ("ppo_data", 1)):
        if not (out / name / "policy.safetensors").is_file():
            times[name] = sh(["train-policy", "--algo", "ppo", "--world", f"env:{env}", "--steps", str(s["ppo"]),
                              "--save-every", str(s["every"]), "--seed", str(seed), "--out", str(out / name),
                              "--no-progress", *dev], log)
    data_policies = ["random", "explore"] + [f"{c}@noise={s['noise']}" for c in checkpoints(out / "ppo_data")]
    manifest = out / "data" / "manifest.json"
    have = sum(x["episodes"] for x in json.loads(manifest.read_text())["shards"]) if manifest.is_file() else 0
    if have < s["episodes"]:  # (a finished dataset is kept even if its policy paths were spelled otherwise)
        times["collect"] = sh(["collect", "--env", env, "--policy", ",".join(data_policies), "--episodes",
                               str(s["episodes"]), "--out", str(out / "data")], log)
    spent = train_twin(out, s["minutes"], dev, log)
    times["train"] = spent
    checks = twin_checks(env, out / "run")
    ladder = ["random", *pick_ladder(out / "ppo_ladder", env, log, out)]
    times["compare"] = sh(["compare", "--env", env, "--model", str(out / "run"), "--policies",
                           ",".join(ladder), "--episodes", "30", "--out", str(out / "report"),
                           "--no-progress", *dev], log)
    return summarize(env, out, ladder, s, spent, times, checks)


def train_twin(out: Path, minutes: tuple[int, int], dev: list[str], log: Path) -> float:
    """The tokenizer, then the world model (the twin recipe sizes its state model and head), each time-boxed;
    returns the training wall seconds, summed over resumed runs."""
    tok_min, dyn_min = minutes
    t0 = time.perf_counter()
    train_time = out / "train_seconds.json"
    spent = json.loads(train_time.read_text())["seconds"] if train_time.is_file() else 0.0
    if not (out / "run" / "tokenizer" / "result.json").is_file():
        sh(["train", "tokenizer", "--data", str(out / "data"), "--out", str(out / "run" / "tokenizer"),
            "--steps", "100000", "--minutes", str(tok_min), "--schedule-by-time", "--resume", *dev], log)
    if not (out / "run" / "world_model.safetensors").is_file():
        sh(["train", "--data", str(out / "data"), "--out", str(out / "run"), "--steps", "100000",
            "--minutes", str(dyn_min), "--schedule-by-time", "--resume", *dev], log)
        spent += time.perf_counter() - t0
        train_time.write_text(json.dumps({"seconds": spent}))
    return spent


def summarize(env: str, out: Path, ladder: list[str], settings: dict, spent: float, times: dict,
              checks: dict | None) -> dict:
    """An env's row of the results: the ranking, trust, the task head, the recipe, times."""
    report = json.loads((out / "report" / "report.json").read_text())
    rk, trust = report["ranking"], report.get("trust") or {}
    train_result = json.loads((out / "run" / "dynamics" / "result.json").read_text())
    tok_result = json.loads((out / "run" / "tokenizer" / "result.json").read_text())
    success = [(r["env_success"], r["learned_success"]) for r in rk["rows"]]
    has_success = any(a or b for a, b in success)
    return {"env": env, "settings": settings, "ladder": ladder, "rows": rk["rows"],
            "spearman": (rk["return"] or {}).get("spearman"), "pearson": (rk["return"] or {}).get("pearson"),
            "success_spearman": correlations(*zip(*success, strict=True))["spearman"] if has_success else None,
            "return_spread": rk["return_spread"], "return_mae": rk["return_mae"],
            "reward_mae_per_step": report["open_loop"]["reward_mae_per_step"], "task_head": report["task_head"],
            "open_loop_psnr": report["open_loop"]["curves"]["psnr"],
            "train_minutes": spent / 60, "task_head_seconds": train_result.get("task_seconds"),
            "tokenizer_psnr": tok_result.get("eval", {}).get("psnr"), "checks": checks, "times_s": times,
            "recipe": model_info(out / "run").get("recipe"), "trust": trust, "flagged": trust.get("flagged", []),
            "object_displacement": report.get("object_displacement"),
            "length_errors": {r["name"]: {k: r[k] for k in ("length_abs_error", "learned_ends_earlier")}
                              for r in rk["rows"] if "length_abs_error" in r}}


def correlations(x, y) -> dict:
    from cosmos_sim.evaluation.stats import correlations as c

    return c(list(x), list(y))


def run_metaworld(task: str, out: Path, device: str | None) -> dict:
    """A Meta-World task's twin: data from degraded experts, the ladder from others, ranked by return and success;
    the object's displacement under the expert, env against twin."""
    expert = f"metaworld_experts:{task.replace('-', '_')}"
    return run_scripted(f"Meta-World {task}", MW_ID, {"env_name": task, "seed": 0}, expert, MW_SETTINGS, MW_OBJECT,
                        out, device)


def run_scripted(name: str, env_id: str, kwargs: dict, expert: str, s: dict, object_entries: str, out: Path,
                 device: str | None) -> dict:
    """A twin whose policies are scripted (no PPO): data from random, explore and `s["data"]` (degradations of
    `expert`, or other module:callable policies), the ladder from random and `s["ladder"]` (the same), ranked
    by return and success; the object's displacement under `expert`, env against twin."""
    out.mkdir(parents=True, exist_ok=True)
    log, times, dev = out / "log.txt", {}, (["--device", device] if device else [])
    env_args = ["--env", env_id, "--env-kwargs", json.dumps(kwargs)]

    def spec(p: str) -> str:  # "@noise=0.3" degrades the expert; "module:callable..." stands as it is
        return p if ":" in p else expert + p

    manifest = out / "data" / "manifest.json"
    have = sum(x["episodes"] for x in json.loads(manifest.read_text())["shards"]) if manifest.is_file() else 0
    if have < s["episodes"]:
        times["collect"] = sh(["collect", *env_args, "--policy", ",".join(["random", "explore", *map(spec, s["data"])]),
                               "--episodes", str(s["episodes"]), "--out", str(out / "data"), "--no-progress"], log)
    spent = train_twin(out, s["minutes"], dev, log)
    times["train"] = spent
    ladder = ["random", *map(spec, s["ladder"])]
    times["compare"] = sh(["compare", *env_args, "--model", str(out / "run"), "--policies", ",".join(ladder),
                           "--episodes", "30", "--open-loop-policy", expert, "--object-entries", object_entries,
                           "--out", str(out / "report"), "--no-progress", *dev], log)
    checks = twin_checks(env_id, out / "run", kwargs)
    return summarize(name, out, ladder, s, spent, times, checks)


def model_info(run: Path) -> dict:
    from cosmos_sim.world_model import WorldModel

    return WorldModel.load(run / "world_model.safetensors").info


def twin_checks(env: str, run: Path, kwargs: dict | None = None) -> dict:
    """The twin's spaces against the source env's (made with `kwargs`), and both env checkers (Gymnasium's and
    SB3's) on it."""
    import warnings

    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    import cosmos_sim  # noqa: F401

    def checked(fn, env) -> str | bool:  # True, or the checker's complaint
        try:
            fn(env)
            return True
        except AssertionError as e:
            return (str(e).strip().splitlines() or [type(e).__name__])[0]

    twin, src = gym.make("cosmos_sim/Learned-v0", model=str(run)), gym.make(env, **(kwargs or {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unbounded Box and asymmetric action warnings are the source env's own
        out = {"gymnasium_check_env": checked(lambda e: check_env(e, skip_render_check=True), twin.unwrapped),
               "sb3_check_env": checked(sb3_check_env, twin.unwrapped)}
        # a complaint the source env earns itself (Meta-World's goal entries outside its declared space) is
        # the source's, mirrored by a twin that declares the same spaces
        out |= {f"source_{k}": checked(fn, src.unwrapped) for k, fn in
                (("gymnasium_check_env", lambda e: check_env(e, skip_render_check=True)),
                 ("sb3_check_env", sb3_check_env)) if out[k] is not True}
        both = gym.make("cosmos_sim/Learned-v0", model=str(run), obs_mode="both", render_mode="rgb_array")
        out["gymnasium_check_env_pixels"] = checked(check_env, both.unwrapped)
    return {"observation_space": str(twin.observation_space), "action_space": str(twin.action_space),
            "spaces_equal": twin.observation_space == src.observation_space and twin.action_space == src.action_space,
            **out}


TABLE_HEADER = ("| env | ρ (return) | success ρ | return MAE / spread | termination P / R | flagged | "
                "train min |")


def table(results: dict) -> str:
    """The README's table (tests/test_docs.py checks that the README holds these rows). Termination precision /
    recall: the task head's, on held-out steps at its calibrated threshold (n/a: the env never terminates);
    flagged: policies whose learned steps are off the data (trust), of all ranked."""
    def f(x, d: int = 2) -> str:
        return "–" if x is None else f"{x:.{d}f}"

    lines = [TABLE_HEADER, "|---|---:|---:|---:|---|---|---:|"]
    for env in sorted(results["envs"]):
        r = results["envs"][env]
        th = r.get("task_head") or {}
        term = (f"{f(th.get('termination_precision'))} / {f(th.get('termination_recall'))}"
                if th.get("termination_rate") else "n/a")
        trust = r.get("trust") or {}
        flagged = (f"{len(trust['flagged'])} of {len(trust['rows'])}" if trust.get("available") else "–")
        mae = f"{r['return_mae']:.1f} / {r['return_spread']:.1f}"
        lines.append(f"| {r['env']} | {f(r['spearman'])} | {f(r.get('success_spearman'))} | {mae} | {term} | "
                     f"{flagged} | {r['train_minutes']:.0f} |")
    return "\n".join(lines)


def trust_summary(results: dict) -> str:
    """Over every env's policies: does the off-data share say where the twin's return is wrong? (Spearman of the
    share against |twin - env| / the env's spread, pooled), and the policies off by over 25 % that went unflagged."""
    from cosmos_sim.evaluation.stats import correlations

    share, per_ep, err, missed, flagged, members = [], [], [], [], [], []
    for env in sorted(results["envs"]):
        t = results["envs"][env].get("trust") or {}
        for r in t.get("rows", []) if t.get("available") else []:
            if r["relative_error"] is None:
                continue
            share.append(r["off_data_share"] or 0.0)
            per_ep.append(r.get("off_data_per_episode") or 0.0)
            members.append(r.get("member_spread"))
            err.append(r["relative_error"])
            flagged += [f"{env}: {r['policy']}"] if r["flagged"] else []
            missed += [f"{env}: {r['policy']}"] if not r["flagged"] and r["relative_error"] > 0.25 else []
    if len(share) < 3:
        return "trust: not enough policies with trust figures yet"
    rho, rho_ep = correlations(share, err)["spearman"], correlations(per_ep, err)["spearman"]
    have = [(m, e) for m, e in zip(members, err, strict=True) if m is not None]
    rho_m = correlations(*zip(*have, strict=True))["spearman"] if len(have) > 2 else None

    def f(x):
        return "n/a" if x is None else f"{x:.2f}"

    return (f"trust over {len(share)} policies: Spearman with |error| / spread: off-data share {f(rho)}, off-data "
            f"steps per episode {f(rho_ep)}, members apart {f(rho_m)} (over the {len(have)} with member "
            f"rollouts); flagged: {', '.join(flagged) or 'none'}; "
            f"off by > 25 % of the spread and not flagged: {', '.join(missed) or 'none'}")


def main() -> None:
    from cosmos_sim.fileio import update_results

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", default=",".join(HOME))
    p.add_argument("--suite", choices=("mujoco", "metaworld"), default=None,
                   help="mujoco: every env of SETTINGS; metaworld: the Meta-World tasks (run with .venv-mj33)")
    p.add_argument("--out", type=Path, default=ROOT / ".runs" / "twins")
    p.add_argument("--device", default=None)
    p.add_argument("--table", action="store_true", help="print the saved results and exit")
    args = p.parse_args()
    dev = args.device or "cpu"
    path = RESULTS / f"twins_{dev.split(':')[0]}.json"
    results = json.loads(path.read_text()) if path.is_file() else {"envs": {}}
    if not args.table:
        envs = ([*SETTINGS] if args.suite == "mujoco" else [f"metaworld:{t}" for t in METAWORLD]
                if args.suite == "metaworld" else [e.strip() for e in args.envs.split(",") if e.strip()])
        for env in envs:
            if env.startswith("metaworld:"):  # metaworld:TASK, e.g. metaworld:reach-v3
                r = run_metaworld(env.partition(":")[2], args.out / env.replace(":", "_"), args.device)
            elif env == "PushT":
                r = run_scripted("PushT", PUSHT_ID, PUSHT["kwargs"], PUSHT["expert"], PUSHT, PUSHT["object"],
                                 args.out / env, args.device)
            else:
                r = run_env(env, args.out / env, args.device)
            results = update_results(path, "envs", env, r, dev)
    print(table(results))
    print(trust_summary(results))


if __name__ == "__main__":
    main()
