"""F.gelu on a GPU, measured without gelu-audit: the figures findings §21 and docs/speed.md quote
from the first H200 run, reproducible in seconds (the tool's own `speed`, `paths` and
`cuda_bits.py` steps did not finish within their limits there).

1. Bits: `F.gelu` (erf and tanh forms) on the CPU and on the GPU, for every fp16 and bf16 input
   and 2^24 random fp32 bit patterns (seed 0): how many results differ (NaN = NaN), with three
   examples (x, CPU, GPU).
2. Speed: `F.gelu`, its tanh form and `out.copy_(x)` at 2^24 and 2^28 elements of fp32, fp16 and
   bf16 (standard normal inputs), each timed alone by torch.utils.benchmark
   (`blocked_autorange`, 0.5 s; it synchronises the device), the median per call, the bytes
   read and written per second, and F.gelu's time over the copy's.

    python benchmarks/cuda_direct.py [--device cuda:0]

Prints figures; asserts nothing. Needs a CUDA device.
"""

from __future__ import annotations

import argparse


def bits(device: str) -> None:
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(0)
    cases = (
        (torch.float16, torch.int16, torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16)),
        (torch.bfloat16, torch.int16, torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16)),
        (
            torch.float32,
            torch.int32,
            torch.randint(-(2**31), 2**31 - 1, (1 << 24,), generator=generator, dtype=torch.int64).to(
                torch.int32
            ),
        ),
    )
    name = torch.cuda.get_device_name(device)
    print(f"bits: F.gelu on the CPU against {device} ({name}, torch {torch.__version__})")
    for dtype, as_int, patterns in cases:
        x = patterns.view(dtype)
        for approximate in ("none", "tanh"):
            on_cpu = F.gelu(x, approximate=approximate)
            on_gpu = F.gelu(x.to(device), approximate=approximate).cpu()
            differ = (on_cpu.view(as_int) != on_gpu.view(as_int)) & ~(on_cpu.isnan() & on_gpu.isnan())
            examples = [
                (float(x[i]), float(on_cpu[i]), float(on_gpu[i]))
                for i in differ.nonzero().flatten()[:3].tolist()
            ]
            print(
                f"  {dtype!s:15} {approximate:4}: {int(differ.sum()):,} of {x.numel():,} differ;"
                f" (x, cpu, gpu): {examples}"
            )


def speed(device: str, sizes: tuple[int, ...] = (24, 28)) -> None:
    import torch
    import torch.nn.functional as F
    from torch.utils.benchmark import Timer

    print(f"speed on {device}: torch.utils.benchmark, blocked_autorange(0.5 s), median per call")
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for bits_of_size in sizes:
            n = 1 << bits_of_size
            x = torch.randn(n, device=device, dtype=dtype)
            out = torch.empty_like(x)
            names = {"F": F, "x": x, "out": out}

            def median(statement: str, names: dict = names) -> float:
                return Timer(statement, globals=names).blocked_autorange(min_run_time=0.5).median

            gelu, tanh, copy = (
                median("F.gelu(x)"),
                median("F.gelu(x, approximate='tanh')"),
                median("out.copy_(x)"),
            )
            moved = 2 * n * x.element_size() / 1e9
            print(
                f"  {dtype!s:15} n=2^{bits_of_size}: gelu {gelu * 1e3:.4f} ms ({moved / gelu:,.0f} GB/s),"
                f" tanh {tanh * 1e3:.4f} ms, copy {copy * 1e3:.4f} ms ({moved / copy:,.0f} GB/s),"
                f" gelu/copy {gelu / copy:.3f}"
            )
            del x, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda:0")
    device = parser.parse_args().device
    bits(device)
    speed(device)


if __name__ == "__main__":
    main()
