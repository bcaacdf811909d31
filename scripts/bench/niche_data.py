#!/usr/bin/env python3
"""Writes a synthetic dataset + neighbour graph for the niche benchmark (scripts/bench/niche.sh).

A side x side grid of cells (10 um spacing) in four planted regions (inflamed tumour, CAF stroma,
myeloid-rich tumour, hypoxic tumour); genes: every shipped program gene plus markers and fillers, about 30
non-zero counts per cell; graph: 8-neighbour grid (symmetric).
Usage: niche_data.py OUT_DIR [SIDE=1000]
"""
import json
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out = sys.argv[1]
side = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
rng = np.random.default_rng(0)

genes = []
for f in ("programs.gmt", "markers.gmt"):
    for line in open(os.path.join(root, "crates", "core", "data", f)):
        if line.strip() and not line.startswith("#"):
            genes += [g for g in line.rstrip("\n").split("\t")[2:] if g]
genes = list(dict.fromkeys(genes)) + [f"FILLER{i}" for i in range(300)]
G = len(genes)
n = side * side
xs, ys = np.meshgrid(np.arange(side), np.arange(side))
xs, ys = xs.ravel(), ys.ravel()
region = (xs >= side // 2).astype(int) + 2 * (ys >= side // 2).astype(int)
mix = [["Tumor", "CD8 T"], ["CAF", "Endothelial"], ["Tumor", "Macrophage"], ["Tumor", "Tumor"]]
pick = rng.random(n) < 0.5
labels = np.array([mix[r][int(p)] for r, p in zip(region, pick)])

# ~30 non-zero genes per cell: 25 random genes + 5 region genes.
k = 30
cols = rng.integers(0, G, size=(n, k))
hyp = [genes.index(g) for g in ["VEGFA", "SLC2A1", "PGAM1", "ENO1", "LDHA", "TPI1", "P4HA1", "ADM", "NDRG1", "PGK1"]]
boost = np.where(region[:, None] == 3, np.array(hyp)[rng.integers(0, len(hyp), size=(n, 5))], rng.integers(0, G, size=(n, 5)))
cols[:, :5] = boost
cols.sort(axis=1)
vals = rng.poisson(2.0, size=(n, k)) + 1
# Merge duplicate genes within a cell.
rows = np.repeat(np.arange(n, dtype=np.uint32), k)
cols = cols.ravel().astype(np.uint32)
vals = vals.ravel().astype(np.uint32)
key = rows.astype(np.uint64) * G + cols
uniq, inv = np.unique(key, return_inverse=True)
summed = np.bincount(inv, weights=vals).astype(np.uint32)
r_u = (uniq // G).astype(np.uint32)
c_u = (uniq % G).astype(np.uint32)

ds = os.path.join(out, "ds")
os.makedirs(ds, exist_ok=True)
tot = np.bincount(r_u, weights=summed, minlength=n)
ng = np.bincount(r_u, minlength=n).astype(np.uint32)
ids = np.char.add("c", np.arange(n).astype(str))
pq.write_table(pa.table({"cell_id": ids, "sample": np.full(n, "bench"), "x": xs * 10.0, "y": ys * 10.0,
                         "total_counts": tot, "n_genes": ng, "cell_type": labels}), os.path.join(ds, "cells.parquet"))
pq.write_table(pa.table({"gene_index": np.arange(G, dtype=np.uint32), "gene_id": genes, "gene_name": genes,
                         "feature_type": ["Gene Expression"] * G}), os.path.join(ds, "genes.parquet"))
pq.write_table(pa.table({"cell_index": r_u, "gene_index": c_u, "count": summed}), os.path.join(ds, "counts.parquet"),
               row_group_size=1 << 20)

src, dst = [], []
idx = np.arange(n).reshape(side, side)
for dy in (-1, 0, 1):
    for dx in (-1, 0, 1):
        if (dx, dy) == (0, 0):
            continue
        a = idx[max(0, -dy):side - max(0, dy), max(0, -dx):side - max(0, dx)]
        b = idx[max(0, dy):side + min(0, dy), max(0, dx):side + min(0, dx)]
        src.append(a.ravel())
        dst.append(b.ravel())
src = np.concatenate(src).astype(np.uint32)
dst = np.concatenate(dst).astype(np.uint32)
order = np.lexsort((dst, src))
src, dst = src[order], dst[order]
dist = np.hypot((xs[src] - xs[dst]) * 10.0, (ys[src] - ys[dst]) * 10.0)
gdir = os.path.join(out, "graph")
os.makedirs(gdir, exist_ok=True)
t = pa.table({"sample": np.full(len(src), "bench"), "src": src, "dst": dst, "distance": dist, "weight": np.ones(len(src))})
t = t.replace_schema_metadata({"tmescope.graph": json.dumps({"kind": "grid", "directed": False, "n_nodes": n})})
pq.write_table(t, os.path.join(gdir, "edges.parquet"), row_group_size=1 << 20)
print(f"{n} cells, {G} genes, {len(summed)} non-zeros, {len(src)} edges -> {out}")
