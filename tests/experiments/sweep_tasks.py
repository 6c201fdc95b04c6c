"""Grid functions the sweep tests run in worker processes (module level, so workers can import them)."""
from __future__ import annotations

import numpy as np


def noisy_mean(point: dict, seed: int, method: str) -> dict:
    """Mean of 1000 draws of N(point['mu'], 1), seeded; method 'fail' raises."""
    if method == "fail":
        raise RuntimeError(f"method fails at mu={point['mu']}")
    x = np.random.default_rng(seed).normal(point["mu"], 1.0, 1000)
    return {"mean": float(x.mean()), "scale": point.get("scale", 1) * 2}


def thread_limits(point: dict, seed: int, method: str) -> dict:
    """The thread limits the worker runs under."""
    import os

    from threadpoolctl import threadpool_info
    return {"omp_env": os.environ.get("OMP_NUM_THREADS"),
            "max_pool_threads": max((pool["num_threads"] for pool in threadpool_info()), default=1)}
