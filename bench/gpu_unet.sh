#!/usr/bin/env bash
# One prepared GPU check of U-Net inference (issue 12 item 4), for the minutes a GPU is lent:
#   bash bench/gpu_unet.sh            # from the repository root, the venv's python first on PATH
# 1. bare model vs CLI path, eager then compiled (bf16 autocast, channels_last), release + default model,
#    with the bare model's TFLOP/s as a fraction of the bf16 dense peak (--peak-tflops, H200: 989);
# 2. end to end MPix/s of a 16384² scan, Zarr on the host -> GPU -> OME-Zarr on the host (release model).
# Each step is bounded by `timeout`; nothing here needs the network.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA'; print(torch.cuda.get_device_name())" || exit 1
nvidia-smi --query-gpu=name,memory.used,memory.total,utilization.gpu --format=csv || true
models="release"; [ -f models/charbonnier_tin_balls/best.ckpt ] && models="release default"
timeout 240 python bench/unet_ratio.py --device cuda --side 8192 --repeats 3 --threads 8 --models $models
timeout 300 python bench/unet_ratio.py --device cuda --compile --side 8192 --repeats 2 --threads 8 --models release
timeout 240 python bench/unet_ratio.py --device cuda --rss 16384 --threads 8 --models release
