"""The guarded runner: exact inputs in, checked outputs out, whatever the kernel returns."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest

from gelu_audit.implementations.model import Implementation, ImplementationError
from gelu_audit.implementations.runner import TimedOut, run_implementation, with_timeout
from gelu_audit.numerics.formats import FP16, FP32, values_to_patterns
from gelu_audit.numerics.formulas import ERF

torch = pytest.importorskip("torch")
PATTERNS = values_to_patterns(FP32, np.array([-1.0, 0.0, 2.0]))


def _kernel(function) -> Implementation:
    return Implementation("test-kernel", "torch", ERF, function, "test kernel")


def test_the_inputs_are_the_exact_bit_patterns() -> None:
    got = run_implementation(_kernel(lambda x: x.clone()), FP32, "cpu", PATTERNS)
    assert got.tolist() == [-1.0, 0.0, 2.0]


def test_an_answer_on_another_device_is_an_error() -> None:
    """A kernel that hands back its result elsewhere (on the GPU: a CPU tensor for a CUDA input).
    Torch's `meta` device stands in for the other device here: no GPU is needed to test it."""
    with pytest.raises(ImplementationError, match="returned a tensor on meta, expected cpu"):
        run_implementation(_kernel(lambda x: x.to("meta")), FP32, "cpu", PATTERNS)


@pytest.mark.parametrize(
    "function, message",
    [
        (lambda x: x.double(), "returned dtype torch.float64, expected torch.float32"),
        (lambda x: x[:1], "returned shape (1,), expected (3,)"),
        (lambda x: x.numpy(), "returned ndarray, expected a torch.Tensor"),
        (lambda x: 1 / 0, "raised ZeroDivisionError"),
        (lambda x: x, "returned its input or a view of it"),
        (lambda x: x[:], "returned its input or a view of it"),
        (lambda x: x.mul_(0.5), "returned its input or a view of it"),  # computed in place
        (lambda x: x.mul_(0.5).clone(), "wrote into its input"),
    ],
)
def test_invalid_answers_are_errors(function, message: str) -> None:
    with pytest.raises(ImplementationError, match=re.escape(message)):
        run_implementation(_kernel(function), FP32, "cpu", PATTERNS)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_on_cuda_a_cpu_answer_is_an_error_and_the_real_one_is_checked() -> None:
    with pytest.raises(ImplementationError, match="returned a tensor on cpu, expected cuda:0"):
        run_implementation(_kernel(lambda x: x.cpu()), FP16, "cuda:0", values_to_patterns(FP16, np.ones(3)))
    got = run_implementation(_kernel(lambda x: x * 2), FP16, "cuda:0", values_to_patterns(FP16, np.ones(3)))
    assert got.tolist() == [2.0, 2.0, 2.0]


@pytest.mark.parametrize(
    "function, message",
    [
        (lambda x: x, "returned its input or a view of it"),
        (lambda x: x[::1], "returned its input or a view of it"),
        (lambda x: np.multiply(x, 0.5, out=x).copy(), "wrote into its input"),
    ],
)
def test_a_numpy_kernel_that_aliases_or_writes_its_input_is_an_error(function, message: str) -> None:
    numpy_kernel = Implementation("test-kernel", "numpy", ERF, function, "test kernel")
    with pytest.raises(ImplementationError, match=re.escape(message)):
        run_implementation(numpy_kernel, FP32, "cpu", PATTERNS)


def test_guarded_calls_share_one_kept_thread_with_the_callers_torch_threads() -> None:
    """Not a thread per call (torch and OpenMP set up each new thread: 2.6 ms a call); the
    caller's thread count goes along."""
    seen: list[tuple[int, int]] = []

    def probe(x: int) -> int:
        seen.append((threading.get_ident(), torch.get_num_threads()))
        return x

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        guarded = with_timeout(probe, 5.0)
        guarded(0)
        with_timeout(probe, 5.0)(1)  # another implementation's wrapper: the same thread
        torch.set_num_threads(2)
        guarded(2)
    finally:
        torch.set_num_threads(before)
    threads = {ident for ident, _ in seen}
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert [count for _, count in seen] == [1, 1, 2]


def test_after_a_timeout_the_next_call_gets_a_fresh_thread() -> None:
    release = threading.Event()
    stuck = with_timeout(lambda x: release.wait(), 0.2)
    try:
        with pytest.raises(TimedOut, match=r"did not return within 0\.2 s"):
            stuck(0)
        assert with_timeout(lambda x: x + 1, 5.0)(1) == 2
    finally:
        release.set()


def test_a_kernel_that_calls_a_guarded_function_runs_it_at_once() -> None:
    """The call thread is busy with the outer call: the inner one runs in it directly, under
    the outer timeout, instead of queueing behind it until both time out."""
    inner = with_timeout(lambda x: x + 1, 2.0)
    outer = with_timeout(lambda x: inner(x) * 10, 2.0)
    assert outer(1) == 20
