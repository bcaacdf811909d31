#!/usr/bin/env python3
"""Compare `tmescope score --method scanpy` with scanpy's `sc.tl.score_genes`.

1. Simulates a count matrix (seeded; real program symbols plus filler genes, variable depth) and writes it
   as a tmescope dataset folder (cells/genes/counts.parquet).
2. Runs `tmescope score` on it.
3. For every program: recomputes the score with scanpy's normalisation (normalize_total 1e4 + log1p) and
   tmescope's control genes (read from program_genes.parquet): max |difference| must be < 1e-6. Where
   scanpy's own binning over `gene_pool = signature + our controls` reproduces exactly our control set, the
   score is also computed by `sc.tl.score_genes(..., gene_pool=...)` itself and compared.
4. Runs scanpy with its own random control draws (random_state 0) and reports Pearson r (> 0.99 expected).

Usage: scripts/compare_scanpy_score.sh [path/to/tmescope]   (the wrapper creates scripts/.venv)
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scanpy as sc
import scipy.sparse as sp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TMESCOPE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug", "tmescope")


def program_genes():
    genes = []
    with open(os.path.join(ROOT, "crates", "core", "data", "programs.gmt")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                genes.extend(g for g in line.rstrip("\n").split("\t")[2:] if g)
    return list(dict.fromkeys(genes))


def simulate(n_cells=3000, n_filler=1500, seed=1):
    rng = np.random.default_rng(seed)
    names = program_genes() + [f"FILLER{i:04d}" for i in range(n_filler)]
    g = len(names)
    base = rng.lognormal(mean=-1.0, sigma=1.5, size=g)  # gene-level expression, wide range
    depth = rng.lognormal(mean=0.0, sigma=0.5, size=n_cells)
    # Two cell groups with different program activity so scores vary.
    group = rng.integers(0, 2, n_cells)
    lift = np.ones((2, g))
    lift[1, : g // 6] = 3.0
    mu = depth[:, None] * base[None, :] * lift[group]
    counts = rng.poisson(rng.gamma(2.0, mu / 2.0))
    return sp.csr_matrix(counts.astype(np.uint32)), names


def write_dataset(path, m, names):
    os.makedirs(path, exist_ok=True)
    n, g = m.shape
    ids = [f"c{i}" for i in range(n)]
    pq.write_table(
        pa.table(
            {
                "cell_id": ids,
                "sample": ["cmp"] * n,
                "x": np.arange(n, dtype=float),
                "y": np.zeros(n),
                "total_counts": np.asarray(m.sum(axis=1)).ravel().astype(float),
                "n_genes": np.diff(m.indptr).astype(np.uint32),
            }
        ),
        os.path.join(path, "cells.parquet"),
    )
    pq.write_table(
        pa.table(
            {
                "gene_index": np.arange(g, dtype=np.uint32),
                "gene_id": names,
                "gene_name": names,
                "feature_type": ["Gene Expression"] * g,
            }
        ),
        os.path.join(path, "genes.parquet"),
    )
    coo = m.tocoo()
    order = np.lexsort((coo.col, coo.row))
    pq.write_table(
        pa.table(
            {
                "cell_index": coo.row[order].astype(np.uint32),
                "gene_index": coo.col[order].astype(np.uint32),
                "count": coo.data[order].astype(np.uint32),
            }
        ),
        os.path.join(path, "counts.parquet"),
    )
    return ids


def main():
    m, names = simulate()
    with tempfile.TemporaryDirectory() as tmp:
        ds = os.path.join(tmp, "ds")
        ids = write_dataset(ds, m, names)
        out = os.path.join(tmp, "scores")
        subprocess.run([TMESCOPE, "score", ds, "-o", out, "--seed", "0", "--quiet"], check=True)
        progs = pq.read_table(os.path.join(out, "programs.parquet")).to_pandas()
        pg = pq.read_table(os.path.join(out, "program_genes.parquet")).to_pandas()

    adata = sc.AnnData(X=m.astype(np.float64), obs=pd.DataFrame(index=ids), var=pd.DataFrame(index=names))
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    X = adata.X.tocsc()
    col = {g: i for i, g in enumerate(names)}

    rows = []
    worst_same = 0.0
    worst_r = 1.0
    for prog in [p for p in progs["program"].unique() if p != "resistance"]:
        ours = progs[progs.program == prog].set_index("cell_id").loc[ids, "score"].to_numpy()
        sig = pg[(pg.program == prog) & (pg.role == "signature")].gene.tolist()
        ctrl = pg[(pg.program == prog) & (pg.role == "control")].gene.tolist()
        mean = lambda genes: np.asarray(X[:, [col[g] for g in genes]].mean(axis=1)).ravel()  # noqa: E731
        manual = mean(sig) - mean(ctrl)
        diff_manual = float(np.max(np.abs(manual - ours)))
        # scanpy itself, given our genes as the pool: exact when its bins over the pool keep every control.
        pool = sig + ctrl
        via_pool = np.nan
        obs_avg = pd.Series(np.asarray(X[:, [col[g] for g in pool]].mean(axis=0)).ravel(), index=pool)
        n_items = int(np.round(len(obs_avg) / (25 - 1)))
        cut = obs_avg.rank(method="min") // n_items
        if set(cut[ctrl]).issubset(set(cut[sig])):
            sc.tl.score_genes(adata, sig, gene_pool=pool, ctrl_size=len(pool), score_name="_pool")
            via_pool = float(np.max(np.abs(adata.obs["_pool"].to_numpy() - ours)))
        sc.tl.score_genes(adata, sig, random_state=0, score_name="_own")
        r = float(np.corrcoef(adata.obs["_own"].to_numpy(), ours)[0, 1])
        worst_same = max(worst_same, diff_manual, 0.0 if np.isnan(via_pool) else via_pool)
        worst_r = min(worst_r, r)
        rows.append((prog, len(sig), len(ctrl), diff_manual, via_pool, r))

    print(f"{'program':28s} {'sig':>4s} {'ctrl':>5s} {'max|d| same ctrl':>17s} {'max|d| via gene_pool':>21s} {'r own draws':>12s}")
    for p, ns, nc, d, dp, r in rows:
        dps = "n/a" if np.isnan(dp) else f"{dp:.2e}"
        print(f"{p:28s} {ns:4d} {nc:5d} {d:17.2e} {dps:>21s} {r:12.5f}")
    print(f"scanpy {sc.__version__}; {m.shape[0]} cells x {m.shape[1]} genes")
    print(f"max |difference| with the same control genes: {worst_same:.3e} (target < 1e-6)")
    print(f"min Pearson r with scanpy's own control draws: {worst_r:.5f} (target > 0.99)")
    ok = worst_same < 1e-6 and worst_r > 0.99
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
