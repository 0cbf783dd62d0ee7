"""CPU and CUDA, the same bits or not: every PyTorch implementation on both devices, compared.

For each PyTorch row that runs on both, and each dtype (fp16 and bf16 exhaustive, fp32 and
fp64 sampled), prints how many inputs get different bits on the GPU than on the CPU, how far
apart the farthest pair is (in representable values), and one example with the correctly
rounded value, as JSON on stdout. `benchmarks/cuda_check.sh` runs it; it needs a CUDA device.

    python benchmarks/cuda_bits.py [--device cuda:0] [-i torch-gelu,torch-gelu-tanh]

``-i`` limits it to some rows (``benchmarks/cuda_check.sh`` runs the eager rows and the compiled
ones as separate steps: over every row it did not finish within 60 s on a fresh H200 machine).
"""

from __future__ import annotations

import argparse
import time

from gelu_audit.audits.paths import FAR_APART, disagreements
from gelu_audit.implementations.availability import skip_reason
from gelu_audit.implementations.model import ImplementationError
from gelu_audit.implementations.registry import all_implementations
from gelu_audit.implementations.runner import run_implementation
from gelu_audit.numerics.formats import FORMATS
from gelu_audit.numerics.inputs import default_inputs
from gelu_audit.report.envelope import dumps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("-i", "--impl", default="", help="comma-separated rows (default: every PyTorch row)")
    args = parser.parse_args()
    chosen = {name for name in args.impl.split(",") if name}
    rows = []
    for fmt in FORMATS.values():
        inputs = default_inputs(fmt)
        for impl in all_implementations():
            if (
                impl.backend != "torch"
                or (chosen and impl.name not in chosen)
                or skip_reason(impl, "cpu", fmt)
                or skip_reason(impl, args.device, fmt)
            ):
                continue
            start = time.perf_counter()
            try:
                cpu = run_implementation(impl, fmt, "cpu", inputs.patterns)
                gpu = run_implementation(impl, fmt, args.device, inputs.patterns)
            except ImplementationError as error:
                rows.append({"implementation": impl.name, "dtype": fmt.name, "error": str(error)})
                continue
            count, farthest, examples = disagreements(fmt, impl.formula, inputs.values, cpu, gpu, 1)
            example = examples[0] if examples else None
            rows.append(
                {
                    "implementation": impl.name,
                    "dtype": fmt.name,
                    "inputs": len(inputs),
                    "differing": count,
                    "max_ordinal_distance": None if farthest >= FAR_APART else farthest,
                    "example": None
                    if example is None
                    else {
                        "x": example.x,
                        "cpu": example.contiguous,
                        "cuda": example.path,
                        "correctly_rounded": example.reference,
                        "closer": {"contiguous": "cpu", "path": "cuda"}.get(example.closer, example.closer),
                    },
                    "seconds": round(time.perf_counter() - start, 2),
                }
            )
    print(dumps({"device": args.device, "comparisons": rows}), end="")


if __name__ == "__main__":
    main()
