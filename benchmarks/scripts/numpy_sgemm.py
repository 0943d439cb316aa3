#!/usr/bin/env python3
"""numpy sgemm peer for MatmulBench: GFLOP/s of a float32 square product C = A @ B (or of rectangular ones: --shape).

Run it beside the JMH benchmark, on the same machine and at the same time of day, so that the
two figures are comparable:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 benchmarks/scripts/numpy_sgemm.py

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE must be unset: they force OpenBLAS onto another
kernel or another cache plan than the one it picks for this CPU (OPENBLAS_CORETYPE=Haswell, for
example, drops the AVX-512 kernels and roughly halves the figure), which would make the peer look
slower than it is. The script warns when either is set. Thread count: OpenBLAS uses every core
unless OPENBLAS_NUM_THREADS / OMP_NUM_THREADS say otherwise, like the Java side, which uses the
common fork-join pool (all cores).

Flops per product: 2 * n^3 (n^3 multiply-adds). For each size the script runs warm-up products,
then --reps timed products, and prints the best and the median rate. It also prints the BLAS
numpy uses (threadpoolctl when installed, else numpy's build configuration).
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np


def openblas_runtime():
    """The kernel OpenBLAS picked at run time (DYNAMIC_ARCH builds) and its thread count, if found."""
    import ctypes
    try:
        with open("/proc/self/maps") as maps:
            libs = {line.split()[-1] for line in maps if "openblas" in line and ".so" in line}
    except OSError:
        return ""
    for path in libs:
        lib = ctypes.CDLL(path)
        for prefix, suffix in (("scipy_", "64_"), ("", "64_"), ("", "")):
            core = getattr(lib, f"{prefix}openblas_get_corename{suffix}", None)
            threads = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}", None)
            if core is not None and threads is not None:
                core.restype = ctypes.c_char_p
                return f", runtime core {core().decode()}, {threads()} threads"
    return ""


def blas_description():
    try:
        from threadpoolctl import threadpool_info
        infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            return "; ".join(
                f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}, {i.get('num_threads')} threads)"
                for i in infos)
    except ImportError:
        pass
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        build = " ".join(blas.get("openblas configuration", "").split())
        return f"{blas.get('name')} {blas.get('version')} [build: {build}]{openblas_runtime()}"
    except Exception:  # older numpy: no dict mode
        return "unknown (see numpy.show_config())"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sizes", nargs="*", type=int, default=[512, 1024, 2048])
    parser.add_argument("--reps", type=int, default=10, help="timed products per size (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed products per size (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text (for CpuReport)")
    parser.add_argument("--shape", action="append", default=[], metavar="M,N,K[,T]",
                        help="a rectangular product A (M x K) @ B (K x N), or with T: A @ W.T for W (N x K), as a layer's "
                             "x @ W.T; repeatable; replaces the square sizes")
    args = parser.parse_args()
    shapes = []
    for text in args.shape:
        parts = text.split(",")
        if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "T") or not all(x.isdigit() and int(x) > 0 for x in parts[:3]):
            parser.error(f"--shape {text}: expected M,N,K or M,N,K,T with positive integers")
        shapes.append((int(parts[0]), int(parts[1]), int(parts[2]), len(parts) == 4))
    if not shapes:
        shapes = [(n, n, n, False) for n in args.sizes]

    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            print(f"WARNING: {var}={os.environ[var]} is set; OpenBLAS will not use its own choice for this CPU. "
                  f"Run with: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 {sys.argv[0]}", file=sys.stderr)

    blas = blas_description()
    if not args.json:
        print(f"numpy {np.__version__}, BLAS: {blas}, cpus: {os.cpu_count()}")
    results = []
    rng = np.random.default_rng(0)
    for m, n, k, trans_b in shapes:
        a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
        w = rng.uniform(-1, 1, (n, k) if trans_b else (k, n)).astype(np.float32)
        b = w.T if trans_b else w  # a view: BLAS reads W transposed, as a layer's x @ W.T does
        c = np.empty((m, n), dtype=np.float32)
        for _ in range(args.warmup):
            np.matmul(a, b, out=c)
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            np.matmul(a, b, out=c)
            times.append(time.perf_counter() - t0)
        flops = 2.0 * m * n * k
        best, median = min(times), statistics.median(times)
        name = f"n={n}" if m == n == k and not trans_b else f"{m}x{n}x{k}{' (B transposed)' if trans_b else ''}"
        results.append({"n": n, "m": m, "k": k, "trans_b": trans_b, "gflops": flops / median / 1e9,
                        "best_gflops": flops / best / 1e9, "median_ms": median * 1e3, "reps": args.reps})
        if not args.json:
            print(f"sgemm {name}: best {flops / best / 1e9:.1f} GFLOP/s, median {flops / median / 1e9:.1f} GFLOP/s "
                  f"(median {median * 1e3:.3f} ms over {args.reps} reps)")
    if args.json:
        import json
        print(json.dumps({"numpy": np.__version__, "blas": blas, "cpus": os.cpu_count(), "sgemm": results}))


if __name__ == "__main__":
    main()
