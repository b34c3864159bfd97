#!/usr/bin/env bash
# The GPU figures in one command, on a CUDA machine with the project's Python deps and a world model:
#   bash benchmarks/gpu.sh [MODEL_DIR] [RESULTS_DIR]       (default: demo_out from `cosmos-sim demo --train`, benchmarks/results)
# CUDA checks (training, rollouts, envs, determinism), env throughput up to N=4096, and the
# imagination benchmark (PPO in MuJoCo vs PPO in the learned world on the GPU; the planner).
set -uo pipefail
MODEL=${1:-demo_out}
RES=${2:-benchmarks/results}
export MUJOCO_GL=${MUJOCO_GL:-egl} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
status=0
$PY benchmarks/cuda_check.py --model "$MODEL" || status=1
$PY benchmarks/env_throughput.py --device cuda --physics mujoco --sizes 64,256,1024,4096 --seconds 2 \
    --obs-modes both,state --demo "$MODEL" || status=1
$PY benchmarks/imagination.py --model "$MODEL" --device cuda --steps "${PPO_STEPS:-500000}" --num-envs 32 \
    --physics-vectorization async --eval-backends mujoco --episodes 50 --planner-episodes 50 --population 256 --horizon 12 --iterations 4 \
    || status=1
[ "$RES" != benchmarks/results ] && mkdir -p "$RES" && cp benchmarks/results/*cuda*.json "$RES"/ 2>/dev/null
exit $status
