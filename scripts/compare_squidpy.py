#!/usr/bin/env python3
"""Compare tmescope's spatial graphs and statistics with squidpy's on the same data.

Run through scripts/compare_squidpy.sh, which creates scripts/.venv with squidpy from PyPI.

Two inputs:
  1. the squidpy Visium test fixture (../shared/fixtures/anndata/squidpy_visium_test_data.h5ad or
     test_data/...): obsm['spatial'], obs['leiden'], X (already log-normalised: its genes are compared as
     numeric cells.parquet columns so both tools see identical values);
  2. a simulated section (random positions, patchy cell types, Poisson counts): its raw counts go through
     our log1p(normalize_total) path and scanpy's.

For each: kNN (k = 6) and Delaunay edge sets, neighbourhood enrichment (observed counts and z-scores at
1000 permutations), Moran's I and Geary's C, co-occurrence at radii both compute. The tmescope inputs are
written directly as a dataset folder with pyarrow (the schema of docs/formats.md).

Usage: compare_squidpy.py [--tmescope PATH] [--out DIR] [--cells N] [--json FILE]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scanpy as sc
import scipy.sparse as sp
import squidpy as sq
import squidpy_graphs

REPO = Path(__file__).resolve().parent.parent


def write_dataset(folder, cell_ids, x, y, counts, gene_names, extra, integer=True):
    """Writes cells/genes/counts.parquet in tmescope's schema (docs/formats.md)."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = sp.csr_matrix(counts)
    counts.sort_indices()
    n = counts.shape[0]
    meta = {b"tmescope.coordinate_unit": b"micrometre", b"tmescope.platform": b"table"}
    cols = {
        "cell_id": pa.array(cell_ids, pa.string()),
        "sample": pa.array(["s1"] * n, pa.string()),
        "x": pa.array(np.asarray(x, dtype=np.float64)),
        "y": pa.array(np.asarray(y, dtype=np.float64)),
        "total_counts": pa.array(np.asarray(counts.sum(axis=1)).ravel().astype(np.float64)),
        "n_genes": pa.array(np.diff(counts.indptr).astype(np.uint32)),
    }
    for k, v in extra.items():
        cols[k] = pa.array(v)
    t = pa.table(cols).replace_schema_metadata(meta)
    pq.write_table(t, folder / "cells.parquet")
    g = pa.table(
        {
            "gene_index": pa.array(np.arange(len(gene_names), dtype=np.uint32)),
            "gene_id": pa.array(gene_names, pa.string()),
            "gene_name": pa.array(gene_names, pa.string()),
            "feature_type": pa.array(["Gene Expression"] * len(gene_names), pa.string()),
        }
    ).replace_schema_metadata(meta)
    pq.write_table(g, folder / "genes.parquet")
    rows = np.repeat(np.arange(n, dtype=np.uint32), np.diff(counts.indptr))
    vals = counts.data.astype(np.uint32) if integer else counts.data.astype(np.float32)
    c = pa.table(
        {"cell_index": pa.array(rows), "gene_index": pa.array(counts.indices.astype(np.uint32)), "count": pa.array(vals)}
    ).replace_schema_metadata(meta)
    pq.write_table(c, folder / "counts.parquet")


def run(cmd):
    t0 = time.time()
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"command failed: {' '.join(map(str, cmd))}\n{r.stdout}\n{r.stderr}")
    return time.time() - t0


def our_edges(folder):
    t = pq.read_table(folder / "edges.parquet").to_pandas()
    return set(zip(t.src.tolist(), t.dst.tolist()))


def squidpy_edges(adata):
    a = sp.coo_matrix(adata.obsp["spatial_connectivities"])
    return {(int(i), int(j)) for i, j, v in zip(a.row, a.col, a.data) if i != j and v != 0}


def compare_case(name, adata, folder, tm, labels, genes, columns, radii, out):
    """adata: X holds the values squidpy scores; folder: our dataset; returns a result dict."""
    res = {"case": name, "n_cells": int(adata.n_obs)}
    # Graphs.
    run([tm, "graph", folder, "-o", out / f"{name}_knn", "--kind", "knn", "--k", "6"])
    squidpy_graphs.knn(adata, 6)
    ours, theirs = our_edges(out / f"{name}_knn"), squidpy_edges(adata)
    res["knn_edges"] = {"tmescope": len(ours), "squidpy": len(theirs), "only_tmescope": len(ours - theirs), "only_squidpy": len(theirs - ours)}
    knn_conn = adata.obsp["spatial_connectivities"].copy()
    run([tm, "graph", folder, "-o", out / f"{name}_delaunay", "--kind", "delaunay", "--prune-percentile", "100"])
    squidpy_graphs.delaunay(adata)
    ours_d, theirs_d = our_edges(out / f"{name}_delaunay"), squidpy_edges(adata)
    res["delaunay_edges"] = {"tmescope": len(ours_d), "squidpy": len(theirs_d), "only_tmescope": len(ours_d - theirs_d), "only_squidpy": len(theirs_d - ours_d)}
    # Statistics on the kNN graph.
    adata.obsp["spatial_connectivities"] = knn_conn
    stats_dir = out / f"{name}_stats"
    cmd = [tm, "stats", folder, "--graph", out / f"{name}_knn", "-o", stats_dir, "--labels", labels, "--perms", "1000", "--seed", "0",
           "--radius-list", ",".join(repr(float(r)) for r in radii)]
    if genes:
        cmd += ["--genes", ",".join(genes)]
    if columns:
        cmd += ["--columns", ",".join(columns)]
    res["tmescope_stats_seconds"] = round(run(cmd), 2)

    t0 = time.time()
    z_sq, count_sq = sq.gr.nhood_enrichment(adata, cluster_key=labels, n_perms=1000, seed=0, copy=True, show_progress_bar=False)
    res["squidpy_enrichment_seconds"] = round(time.time() - t0, 2)
    cats = list(adata.obs[labels].cat.categories)
    e = pd.read_parquet(stats_dir / "nhood_enrichment.parquet")
    ours_z = np.full((len(cats), len(cats)), np.nan)
    ours_c = np.zeros((len(cats), len(cats)))
    pos = {c: i for i, c in enumerate(cats)}
    for r in e.itertuples():
        ours_z[pos[r.type_a], pos[r.type_b]] = r.z
        ours_c[pos[r.type_a], pos[r.type_b]] = r.observed
    finite = np.isfinite(z_sq)
    res["enrichment"] = {
        "observed_counts_identical": bool(np.array_equal(ours_c, np.asarray(count_sq))),
        "z_pearson": float(np.corrcoef(ours_z[finite], z_sq[finite])[0, 1]),
        "z_max_abs_diff": float(np.nanmax(np.abs(ours_z[finite] - z_sq[finite]))),
        "pairs_squidpy_nan": int((~finite).sum()),
        "pairs_tmescope_sd_zero": int(e.sd_zero.sum()),
    }

    # Moran's I and Geary's C.
    feats = list(genes) + list(columns)
    if feats:
        a2 = adata
        if columns:
            a2 = ad.AnnData(X=np.column_stack([adata.obs[c].to_numpy(np.float64) for c in columns]), obs=adata.obs[[labels]].copy())
            a2.obsp["spatial_connectivities"] = knn_conn
            a2.var_names = columns
        else:
            a2 = adata[:, genes].copy()
        a2.obsp["spatial_connectivities"] = knn_conn
        sq.gr.spatial_autocorr(a2, mode="moran", genes=list(a2.var_names), n_perms=None, show_progress_bar=False)
        sq.gr.spatial_autocorr(a2, mode="geary", genes=list(a2.var_names), n_perms=None, show_progress_bar=False)
        m_sq, g_sq = a2.uns["moranI"], a2.uns["gearyC"]
        ac = pd.read_parquet(stats_dir / "autocorrelation.parquet")
        mo = ac[ac.statistic == "moran"].set_index("feature")
        ge = ac[ac.statistic == "geary"].set_index("feature")
        names = list(a2.var_names)
        res["moran"] = {
            "features": len(names),
            "I_max_abs_diff": float(np.nanmax(np.abs(mo.loc[names, "value"].to_numpy() - m_sq.loc[names, "I"].to_numpy()))),
            "var_max_abs_diff": float(np.nanmax(np.abs(mo.loc[names, "variance"].to_numpy() - m_sq.loc[names, "var_norm"].to_numpy()))),
            "p_max_abs_diff": float(np.nanmax(np.abs(mo.loc[names, "p"].to_numpy() - m_sq.loc[names, "pval_norm"].to_numpy()))),
        }
        res["geary"] = {
            "features": len(names),
            "C_max_abs_diff": float(np.nanmax(np.abs(ge.loc[names, "value"].to_numpy() - g_sq.loc[names, "C"].to_numpy()))),
            "var_max_abs_diff": float(np.nanmax(np.abs(ge.loc[names, "variance"].to_numpy() - g_sq.loc[names, "var_norm"].to_numpy()))),
            "p_max_abs_diff": float(np.nanmax(np.abs(ge.loc[names, "p"].to_numpy() - g_sq.loc[names, "pval_norm"].to_numpy()))),
        }

    # Co-occurrence: squidpy uses interval[1:] as the radii.
    t0 = time.time()
    occ, interval = sq.gr.co_occurrence(adata, cluster_key=labels, interval=np.array([0.0] + list(radii)), copy=True)
    res["squidpy_cooccurrence_seconds"] = round(time.time() - t0, 2)
    co = pd.read_parquet(stats_dir / "cooccurrence.parquet")
    rix = {float(r): k for k, r in enumerate(radii)}
    diffs = []
    for r in co.itertuples():
        k = rix[min(rix, key=lambda v: abs(v - r.radius))]
        diffs.append(abs(r.ratio - occ[pos[r.type_b], pos[r.type_a], k]))
    res["cooccurrence"] = {"radii": [float(r) for r in radii], "max_abs_diff": float(np.max(diffs)), "values": len(diffs)}
    return res


def fixture_case(tm, out):
    for p in [REPO / "test_data" / "squidpy_visium_test_data.h5ad", REPO.parent / "shared/fixtures/anndata/squidpy_visium_test_data.h5ad"]:
        if p.exists():
            break
    adata = ad.read_h5ad(p)
    adata.X = sp.csr_matrix(adata.X, dtype=np.float64)
    hv = list(adata.var_names[adata.var["highly_variable"]][:20])
    columns = []
    extra = {"leiden": pd.Series(adata.obs["leiden"]).astype(str).tolist()}
    for g in hv:
        col = "gene_" + g
        vals = adata[:, g].X.toarray().ravel().astype(np.float64)
        adata.obs[col] = vals
        extra[col] = vals
        columns.append(col)
    xy = adata.obsm["spatial"].astype(np.float64)
    folder = out / "fixture_ds"
    write_dataset(folder, list(adata.obs_names), xy[:, 0], xy[:, 1], adata.X, list(adata.var_names), extra, integer=False)
    radii = [150.0, 300.0, 450.0, 600.0, 750.0]
    return compare_case("fixture", adata, folder, tm, "leiden", [], columns, radii, out)


def simulated_case(tm, out, n_cells, seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1000.0 * np.sqrt(n_cells / 3000), size=(n_cells, 2))
    centres = rng.uniform(0, xy.max(), size=(max(12, n_cells // 250), 2))
    centre_type = rng.integers(0, 6, size=len(centres))
    nearest = np.argmin(((xy[:, None, :] - centres[None, :, :]) ** 2).sum(-1), axis=1)
    types = centre_type[nearest]
    noise = rng.random(n_cells) < 0.2
    types[noise] = rng.integers(0, 6, size=noise.sum())
    names = np.array(["B", "Endothelial", "Fibroblast", "Myeloid", "T", "Tumor"])
    n_genes = 30
    base = rng.gamma(2.0, 1.0, size=(6, n_genes))
    grad = np.exp((xy[:, :1] / xy.max() - 0.5) * rng.normal(0, 1.5, size=(1, n_genes)))
    lam = base[types] * grad * rng.gamma(5.0, 0.2, size=(n_cells, 1))
    counts = rng.poisson(lam).astype(np.float64)
    genes = [f"gene{k:02d}" for k in range(n_genes)]
    cell_ids = [f"cell{k}" for k in range(n_cells)]
    folder = out / "sim_ds"
    write_dataset(folder, cell_ids, xy[:, 0], xy[:, 1], counts, genes, {"cell_type": names[types].tolist()})
    adata = ad.AnnData(X=sp.csr_matrix(counts), obs=pd.DataFrame({"cell_type": pd.Categorical(names[types])}, index=cell_ids))
    adata.var_names = genes
    adata.obsm["spatial"] = xy
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    radii = [12.5, 25.0, 37.5, 50.0, 62.5, 75.0, 87.5, 100.0]
    return compare_case("simulated", adata, folder, tm, "cell_type", genes, [], radii, out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tmescope", default=str(REPO / "target" / "debug" / "tmescope"))
    ap.add_argument("--out", default=str(REPO / "target" / "compare_squidpy"))
    ap.add_argument("--cells", type=int, default=3000, help="cells of the simulated section")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results = [fixture_case(a.tmescope, out), simulated_case(a.tmescope, out, a.cells)]
    print(json.dumps(results, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))
    ok = True
    for r in results:
        ok &= r["knn_edges"]["only_tmescope"] == 0 and r["knn_edges"]["only_squidpy"] == 0
        ok &= r["delaunay_edges"]["only_tmescope"] == 0 and r["delaunay_edges"]["only_squidpy"] == 0
        ok &= r["enrichment"]["observed_counts_identical"]
        if "moran" in r:
            ok &= r["moran"]["I_max_abs_diff"] < 1e-6 and r["geary"]["C_max_abs_diff"] < 1e-6
    print("ALL CHECKS PASS" if ok else "SOME CHECKS FAIL (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
