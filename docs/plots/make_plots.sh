#!/usr/bin/env bash
# Regenerate the plots in docs/plots/ (referenced from docs/findings.md §17).
# Needs matplotlib (pip install -e '.[plot]'); JAX and ONNX Runtime rows appear when installed.
set -euo pipefail
cd "$(dirname "$0")"
report="${TMPDIR:-/tmp}/gelu-audit-plots.json"
gelu-audit accuracy -d fp16,bf16,fp32 -f json -o "$report" --no-progress || true  # exit 1 is fine: no gate
fused=torch-gelu,torch-gelu-aten,torch-gelu-tanh,torch-compile-gelu,torch-compile-gelu-tanh,jax-gelu,onnxruntime-gelu,onnxruntime-gelu-tanh,numpy-erf
op_by_op=torch-erf-composite,torch-tanh-pow,torch-tanh-fast,torch-quick-gelu,torch-gelu-clip10,numpy-tanh,numpy-sigmoid,jax-gelu-tanh
gelu-audit plot "$report" -i "$fused" --style lines -o kernels.png
gelu-audit plot "$report" -i "$op_by_op" --style lines -o op-by-op.png
gelu-audit plot "$report" --style heatmap -o all.png   # every implementation, one row each
