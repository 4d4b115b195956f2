"""What the benchmarks share: a description of the machine, the CPU's peak FLOP/s, random model inputs, tables.

The theoretical peak is cores x FLOPs per cycle per core x clock. FLOPs per cycle come from the vector units:
a core with two 512-bit FMA pipes (AVX-512 on AMD Zen 5 and Intel server cores) retires 2 pipes x 16 fp32 lanes
x 2 FLOPs (multiply and add) = 64 fp32 FLOPs per cycle; with AVX512-BF16 each lane of a bf16 dot-product
instruction does two multiply-adds, so 128 bf16 FLOPs per cycle. AVX2-only cores get 2 x 8 x 2 = 32. The clock is
the one /proc/cpuinfo reports unless given; virtual machines often report the nominal clock, and a core that boosts
above it shows up as a matrix-multiply rate near or above the "peak" (`measured_matmul_gflops`). benchmarks/clock.c
measures the real one.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from filmkit.train.devices import cpu_has_native_bf16
from filmkit.vqa.cpu_matmul import matmul_transposed


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _first_field(text: str, name: str) -> str | None:
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def cpu_description() -> dict:
    """Model, cores this process may use, clock (MHz) and the vector extensions that set the peak."""
    text = _cpuinfo()
    flags = set((_first_field(text, "flags") or "").split())
    mhz = _first_field(text, "cpu MHz")
    return {
        "cpu": _first_field(text, "model name") or platform.processor() or platform.machine(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "mhz": float(mhz) if mhz else None,
        "avx512": "avx512f" in flags,
        "bf16": cpu_has_native_bf16(),
    }


def environment() -> dict:
    """Versions and threads, recorded next to every measurement."""
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def cpu_peak_gflops(precision: str, cpu: dict | None = None, mhz: float | None = None) -> float | None:
    """Theoretical peak GFLOP/s at ``precision`` (fp32 or bf16) of the cores torch's threads run on.

    ``mhz`` overrides the reported clock (measure it with benchmarks/clock.c: boosting cores run faster than a
    virtual machine reports). None when the clock is unknown. With fewer threads than cores, only those count.
    """
    cpu = cpu or cpu_description()
    mhz = mhz or cpu["mhz"]
    if not mhz:
        return None
    fp32_per_cycle = 64 if cpu["avx512"] else 32
    per_cycle = fp32_per_cycle * 2 if precision == "bf16" and cpu["bf16"] else fp32_per_cycle
    cores = min(cpu["cores"], torch.get_num_threads())
    return cores * per_cycle * mhz / 1000


def measured_matmul_gflops(precision: str, size: int = 2048, repeats: int = 5, onednn: bool = False) -> float:
    """GFLOP/s of a large square matrix multiply, the best this torch build reaches here (a practical ceiling).

    ``onednn`` times the product the CPU GRU uses (``filmkit.vqa.cpu_matmul``) instead of ``torch.mm``; for fp32
    the two are different libraries (MKL and oneDNN) and run at different speeds on some CPUs.
    """
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    product = matmul_transposed if onednn else torch.mm
    product(a, b)  # warm-up: thread pool and kernel selection
    start = time.perf_counter()
    for _ in range(repeats):
        product(a, b)
    seconds = (time.perf_counter() - start) / repeats
    return 2 * size**3 / seconds / 1e9


def random_questions(batch: int, vocab_size: int, generator: torch.Generator, lengths=(10, 40)) -> torch.Tensor:
    """Right-padded random token ids; lengths uniform in ``lengths`` (CLEVR questions run from about 10 to 40)."""
    sizes = torch.randint(lengths[0], lengths[1] + 1, (batch,), generator=generator)
    questions = torch.randint(1, vocab_size, (batch, int(sizes.max())), generator=generator)
    questions[torch.arange(questions.shape[1]).unsqueeze(0) >= sizes.unsqueeze(1)] = 0
    return questions


def random_batch(config, batch: int, generator: torch.Generator, lengths=(10, 40)):
    """(images, questions, answers) of the shapes ``config`` reads; images uniform in [0, 1]."""
    images = torch.rand(batch, config.in_channels, config.image_height, config.image_width, generator=generator)
    questions = random_questions(batch, config.vocab_size, generator, lengths)
    answers = torch.randint(0, config.num_answers, (batch,), generator=generator)
    return images, questions, answers


def print_table(title: str, rows: list[dict], columns: list[tuple[str, str]]) -> None:
    """A readable table of ``rows`` on stdout, after the JSON lines; ``columns`` are (header, key) pairs."""
    table = Table(title=title)
    for header, _ in columns:
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(*(_format(row.get(key)) for _, key in columns))
    Console(width=160).print(table)  # wide enough for every column when stdout is a file


def _format(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
