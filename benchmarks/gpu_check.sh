#!/usr/bin/env bash
# The GPU path in one script (a few minutes on one GPU): oracle parity on CUDA, training throughput of
# the tiny and paper-scale presets in fp32 / bf16, and the whole main job (collect -> stage 1 ->
# stage 2 -> closed-loop planning) with --device cuda. Writes logs to ${OUT:-runs/gpu_check}.
#
#   bash benchmarks/gpu_check.sh [parity] [throughput] [main]
set -euo pipefail
out=${OUT:-runs/gpu_check}
run=runs/gpu_check
mkdir -p "$out" "$run"
export MUJOCO_GL=${MUJOCO_GL:-egl} PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
parts=${*:-parity throughput main}
step() { echo "== $1 ($(date +%T))"; }

step "device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"

if [[ $parts == *parity* ]]; then
step "oracle parity on CUDA (fp32 <= 1e-5, fp64 <= 1e-9)"
WORLDJEPA_TEST_DEVICE=cuda $py -m pytest -q -p no:cacheprovider tests/test_parity_oracle.py 2>&1 | tail -3 || true

fi
if [[ $parts == *throughput* ]]; then
step "training throughput, tiny presets"
$py benchmarks/train_throughput.py --device cuda --steps 20 2>&1 | tee "$out/throughput_tiny.txt"
step "training throughput, V-JEPA 2 ViT-L/16 (256 px, 16 frames, batch 8)"
$py benchmarks/train_throughput.py --device cuda --steps 5 data.dataset=synthetic_video train.batch_size=8 \
    --presets vjepa2_vitl16 2>&1 | tee "$out/throughput_vitl.txt"

fi
if [[ $parts == *main* ]]; then
step "main job on CUDA: collect, stage 1, stage 2, evaluate"
rm -rf "$run" && mkdir -p "$run"
$py -m worldjepa collect --env worldjepa/ArmReach-v0 --episodes 300 --out "$run/data" 2>&1 | tail -2
time $py -m worldjepa pretrain -c vjepa2_tiny --device cuda --run-dir "$run/stage1" data.dataset=trajectories \
    "data.root=$run/data" data.image_size=64 data.num_frames=4 train.batch_size=32 train.total_steps=300 \
    train.precision=bf16 train.progress_bar=false 2>&1 | tail -3
time $py -m worldjepa posttrain --device cuda --encoder "$run/stage1" --data "$run/data" --run-dir "$run/wm" \
    world_model.train.progress_bar=false 2>&1 | tail -3
time $py -m worldjepa evaluate --device cuda --model "$run/wm/world_model" --out "$run/eval" \
    evaluate.episodes=10 2>&1 | grep -av "ep/s" | tail -6
cp "$run/stage1/metrics.csv" "$out/stage1_metrics.csv"
cp "$run/wm/world_model/config.json" "$out/world_model_config.json" 2>/dev/null || true
fi
