"""Seen's benchmarks: run on demand with `python -m bench`, never part of the test run.

A benchmark is a function that takes the size ("tiny" or "full") and returns the figures it
measured. Register one with the decorator, in a module listed in MODULES:

    # bench/sync.py
    from bench import Figure, benchmark

    @benchmark("sync_push_10k")
    def sync_push(size: str) -> list[Figure]:
        ...
        return [Figure("sync_push_10k", seconds, "s", target=1.0)]

"tiny" is for the smoke test (seconds, no targets); "full" is the size the targets are set for.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Modules holding benchmarks, imported in this order by `python -m bench`. Add yours here.
MODULES = ("bench.due", "bench.push", "bench.visit_save", "bench.sync_bench", "bench.browser_bench",
           "bench.returns_bench")

SIZES = ("tiny", "full")


@dataclass(frozen=True)
class Figure:
    """One measured number: what it is, its value and unit, and (where there is one) what it is held to.

    `target` is an upper bound on `value`. `baseline` is what `value` is compared with, and `ratio`
    is value / baseline.
    """

    name: str
    value: float
    unit: str
    baseline: float | None = None
    ratio: float | None = None
    target: float | None = None

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.value < self.target

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "value": self.value, "unit": self.unit}
        for key in ("baseline", "ratio", "target"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.target is not None:
            out["met"] = self.met
        return out

    def line(self) -> str:
        text = f"{self.name:<28} {self.value:>10.3f} {self.unit}"
        if self.baseline is not None:
            text += f"   baseline {self.baseline:.3f} {self.unit}"
        if self.ratio is not None:
            text += f"   ratio {self.ratio:.2f}"
        if self.target is not None:
            text += f"   target < {self.target:g} {self.unit}: {'ok' if self.met else 'MISSED'}"
        return text


Benchmark = Callable[[str], list[Figure]]
REGISTRY: dict[str, Benchmark] = {}


def benchmark(name: str) -> Callable[[Benchmark], Benchmark]:
    """Register a benchmark function under `name`."""

    def register(fn: Benchmark) -> Benchmark:
        if name in REGISTRY and REGISTRY[name] is not fn:
            raise ValueError(f"two benchmarks are called {name!r}")
        REGISTRY[name] = fn
        return fn

    return register


def bench_size(default: str = "full") -> str:
    """The size from SEEN_BENCH_SIZE, else `default`."""
    size = os.environ.get("SEEN_BENCH_SIZE") or default
    if size not in SIZES:
        raise ValueError(f"SEEN_BENCH_SIZE={size!r}: use one of {', '.join(SIZES)}")
    return size


def load_all() -> dict[str, Benchmark]:
    """Import every module in MODULES so their benchmarks register; return the registry."""
    for module in MODULES:
        importlib.import_module(module)
    return REGISTRY


def run(
    size: str, only: list[str] | None = None, report: Callable[[Figure], None] | None = None
) -> list[Figure]:
    """Run the registered benchmarks (or just `only`) at `size`, reporting each figure as it comes."""
    figures: list[Figure] = []
    for name, fn in load_all().items():
        if only and name not in only:
            continue
        for figure in fn(size):
            figures.append(figure)
            if report is not None:
                report(figure)
    return figures
