#!/usr/bin/env python3
"""Side-by-side timing of tmescope and scanpy/squidpy on the same section, in one run (issue 10).

Run through scripts/bench/peers.sh, which builds the release binary, creates the section (the same
Xenium-like export as scripts/bench/e2e.sh) and the venv (scanpy, squidpy from PyPI).

For each step both tools do the same work on the same data, one after the other:

| step | tmescope | peer |
|---|---|---|
| ingest | `tmescope ingest` of the Xenium folder | `scanpy.read_10x_h5` + `cells.parquet` coordinates |
| knn | `graph --kind knn --k 6` | `squidpy.gr.spatial_neighbors_knn(n_neighs=6)` (`scripts/squidpy_graphs.py`) |
| delaunay | `graph --kind delaunay --prune-percentile 100` | `squidpy.gr.spatial_neighbors_delaunay()` |
| enrichment | `stats --labels cell_type --perms 1000 --no-cooccurrence` | `squidpy.gr.nhood_enrichment(n_perms=1000)` |
| moran | `stats --perms 0 --no-cooccurrence --top-variable 100` on the dataset without labels | normalize_total + log1p + 100 most variable genes + `spatial_autocorr(mode="moran")` |
| cooccurrence | `stats --perms 0 --max-radius 200 --radii 20` | `squidpy.gr.co_occurrence(interval=21 radii to 200)`; only up to PEER_COOC_MAX cells (default 20,000): squidpy is quadratic |
| score | `score` without a graph (19 programs, scanpy algorithm: the scores only) | normalize_total + log1p + `scanpy.tl.score_genes` for each program |
| score + hotspots | `score --graph` (the scores, their smoothing and Gi* hotspots with q-values, as the pipeline runs it) | the same peer step as `score` (scanpy has no Gi*): a lower bound of the speed-up |

Both sides use the cell types of the simulation's truth as labels. Wall and CPU time for both; peak memory
for tmescope (from /usr/bin/time). squidpy and scanpy run with their default threading (numba uses the two
cores where they parallelise).

tmescope's times are whole commands (reading their Parquet inputs, writing Parquet outputs); the peers'
are the calls on data already in memory. So that a whole command can be compared with a whole peer step,
the section is also written once as an uncompressed `.h5ad` and the time of `anndata.read_h5ad` on it (the
load every peer step starts from in a new session) is reported, with a second ratio, (peer + load) / tmescope,
for the steps after ingest. Conversely, where the command's computation is a step of its own (the graph
builds and the neighbourhood enrichment), its time as `-v` prints it is compared with the peer's call: a
third ratio, in memory on both sides. The other commands compute while they read (the counts are streamed),
so they have no such step.

Usage: peers.py --tmescope BIN --xenium XEN_DIR --truth TRUTH.parquet --work DIR --programs GMT
                [--threads 2] [--doc docs/benchmarks.md]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def timed_ours(name, argv, work, in_memory=None):
    """Runs tmescope (with -v) under /usr/bin/time -v; returns (wall, cpu, peak MB, in-memory seconds).

    The in-memory seconds are those of the command's step named `in_memory` (a prefix of a step line that
    `-v` prints, README.md): the computation on data already read, which is what the peer's
    call does; None when not asked for.
    """
    tf = work / f"time_{name}.txt"
    r = subprocess.run(["/usr/bin/time", "-v", "-o", str(tf), *argv], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"tmescope {name} failed:\n{r.stderr}")
    text = tf.read_text()
    m = re.search(r"Elapsed \(wall clock\) time.*: (.*)", text).group(1).split(":")
    wall = sum(float(x) * 60**i for i, x in enumerate(reversed(m)))
    user = float(re.search(r"User time \(seconds\): (.*)", text).group(1))
    sys_ = float(re.search(r"System time \(seconds\): (.*)", text).group(1))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (.*)", text).group(1)) // 1024
    mem = None
    if in_memory:
        steps = [(w, float(t)) for w, t in re.findall(r"INFO (.+): ([0-9.]+) s$", r.stderr, flags=re.M)]
        found = [t for w, t in steps if w.startswith(in_memory)]
        if not found:
            sys.exit(f"tmescope {name}: no step `{in_memory}` in its -v output:\n{r.stderr}")
        mem = sum(found)
    return wall, user + sys_, rss, mem


def timed_peer(fn):
    """Runs fn() in this process; returns (result, wall, cpu)."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def read_gmt(path):
    sets = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split("\t")
        if len(parts) > 2 and not line.startswith("#"):
            sets[parts[0]] = parts[2:]
    return sets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tmescope", required=True)
    ap.add_argument("--xenium", required=True, type=Path)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--programs", required=True)
    ap.add_argument("--threads", default="2")
    ap.add_argument("--doc", default=None)
    a = ap.parse_args()

    import anndata as ad
    import scanpy as sc
    import squidpy as sq

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import squidpy_graphs

    work = a.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ours = [a.tmescope, "--threads", a.threads, "-v"]
    rows = []

    def row(step, o, p, note=""):
        rows.append((step, o, p, note))
        ow, oc, orss, mem = o
        pw, pc = p if p else (float("nan"), float("nan"))
        in_mem = f" (in memory {mem:.2f} s: {pw / mem:.1f}x)" if mem else ""
        print(f"{step:13s} tmescope {ow:8.2f} s (cpu {oc:7.1f}, {orss} MB)   peer {pw:8.2f} s (cpu {pc:7.1f})   "
              f"ratio {pw / ow:6.1f}x{in_mem} {note}", flush=True)

    # ingest
    ds = work / "dataset"
    o = timed_ours("ingest", [*ours, "ingest", str(a.xenium), "--format", "xenium", "--sample", "S", "-o", str(ds)], work)

    def peer_ingest():
        ad_ = sc.read_10x_h5(str(a.xenium / "cell_feature_matrix.h5"))
        cells = pd.read_parquet(a.xenium / "cells.parquet").set_index("cell_id")
        cells.index = cells.index.astype(str)
        cells = cells.reindex(ad_.obs_names)
        ad_.obsm["spatial"] = cells[["x_centroid", "y_centroid"]].to_numpy()
        ad_.var_names_make_unique()
        return ad_

    adata, pw, pc = timed_peer(peer_ingest)
    row("ingest", o, (pw, pc))
    n = adata.n_obs

    # Same labels on both sides: the simulated truth, added to our dataset's cells.parquet.
    truth = pq.read_table(a.truth, columns=["cell_id", "cell_type"]).to_pandas().set_index("cell_id")
    labels = truth.reindex(adata.obs_names)["cell_type"].fillna("unknown").to_numpy()
    adata.obs["cell_type"] = pd.Categorical(labels)
    cells_pq = pq.read_table(ds / "cells.parquet")
    cells_pq = cells_pq.append_column("cell_type", pa.array(labels, pa.string()))
    lab = work / "labelled"
    lab.mkdir()
    pq.write_table(cells_pq, lab / "cells.parquet")
    for f in ("genes.parquet", "counts.parquet"):
        os.symlink(ds / f, lab / f)

    # What a peer session pays before any step: loading the section from an .h5ad (written untimed).
    h5ad = work / "section.h5ad"
    adata.write_h5ad(h5ad)
    _, lw, lc = timed_peer(lambda: ad.read_h5ad(h5ad))
    load = (lw, lc)
    print(f"peer load: anndata.read_h5ad {lw:.2f} s (cpu {lc:.1f})", flush=True)
    h5ad.unlink()

    # kNN
    g = work / "knn"
    o = timed_ours("knn", [*ours, "graph", str(lab), "-o", str(g), "--kind", "knn", "--k", "6"], work,
                   "graph: build the knn graph")
    _, pw, pc = timed_peer(lambda: squidpy_graphs.knn(adata, 6))
    row("knn", o, (pw, pc))

    # Delaunay
    o = timed_ours("delaunay", [*ours, "graph", str(lab), "-o", str(work / "delaunay"), "--kind", "delaunay",
                                "--prune-percentile", "100"], work, "graph: build the delaunay graph")
    bd = adata.copy()
    _, pw, pc = timed_peer(lambda: squidpy_graphs.delaunay(bd))
    del bd
    row("delaunay", o, (pw, pc))

    # Neighbourhood enrichment on the kNN graph (squidpy's graph is the kNN one computed above).
    o = timed_ours("enrichment", [*ours, "stats", str(lab), "--graph", str(g), "--labels", "cell_type", "--perms",
                                  "1000", "--no-cooccurrence", "--seed", "1", "-o", str(work / "enrich")], work,
                   "stats: neighbourhood enrichment")
    _, pw, pc = timed_peer(lambda: sq.gr.nhood_enrichment(adata, cluster_key="cell_type", n_perms=1000, seed=1,
                                                         show_progress_bar=False))
    row("enrichment", o, (pw, pc), "(1000 permutations)")

    # Moran's I on the 100 most variable genes of log1p(normalize_total).
    # On the dataset without labels, so that the command does the peer's work only (given labels, `stats`
    # would also write the neighbourhood composition and the interaction matrix).
    o = timed_ours("moran", [*ours, "stats", str(ds), "--graph", str(g), "--perms", "0", "--no-cooccurrence",
                             "--top-variable", "100", "-o", str(work / "moran")], work)

    def peer_moran():
        b = adata.copy()
        sc.pp.normalize_total(b)
        sc.pp.log1p(b)
        x = b.X
        mean = np.asarray(x.mean(axis=0)).ravel()
        var = np.asarray(x.multiply(x).mean(axis=0)).ravel() - mean**2
        genes = b.var_names[np.argsort(-var)[:100]].tolist()
        sq.gr.spatial_autocorr(b, mode="moran", genes=genes, n_perms=None, n_jobs=int(a.threads))
        return b

    _, pw, pc = timed_peer(peer_moran)
    row("moran", o, (pw, pc), "(100 genes, analytic)")

    # Co-occurrence: squidpy is quadratic in the number of cells, so it runs only on small sections.
    o = timed_ours("cooccurrence", [*ours, "stats", str(lab), "--graph", str(g), "--labels", "cell_type", "--perms",
                                    "0", "--max-radius", "200", "--radii", "20", "-o", str(work / "cooc")], work)
    if n <= int(os.environ.get("PEER_COOC_MAX", "20000")):
        _, pw, pc = timed_peer(lambda: sq.gr.co_occurrence(adata, cluster_key="cell_type",
                                                          interval=np.linspace(0, 200, 21), show_progress_bar=False))
        row("cooccurrence", o, (pw, pc), "(20 radii to 200 um)")
    else:
        row("cooccurrence", o, None, "(squidpy not run: quadratic, 366 s and 2.4 GB at 100k cells)")

    # Program scores: without a graph the command computes the scores only (the peer's work; like the moran
    # step without labels); with the graph, as the pipeline runs it, also their smoothing and Gi* hotspots,
    # which scanpy does not compute.
    o = timed_ours("score", [*ours, "score", str(lab), "--seed", "1", "-o", str(work / "scores")], work)
    oh = timed_ours("score_hotspots", [*ours, "score", str(lab), "--graph", str(g), "--seed", "1", "-o",
                                       str(work / "scores_hotspots")], work)
    programs = read_gmt(a.programs)

    def peer_score():
        b = adata.copy()
        sc.pp.normalize_total(b)
        sc.pp.log1p(b)
        for name, genes in programs.items():
            present = [x for x in genes if x in b.var_names]
            if present:
                sc.tl.score_genes(b, present, score_name=name, random_state=1)
        return b

    _, pw, pc = timed_peer(peer_score)
    row("score", o, (pw, pc), f"({len(programs)} programs)")
    row("score + hotspots", oh, (pw, pc), "(also smoothing and Gi* with q-values; the peer: scores only)")

    import importlib.metadata as md

    versions = ", ".join(f"{p} {md.version(p)}" for p in ("scanpy", "squidpy", "anndata", "numpy"))
    tm_version = subprocess.run([a.tmescope, "--version"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"{n:,} cells x {adata.n_vars:,} genes ({adata.X.nnz:,} non-zeros); {tm_version} (release, "
        f"{a.threads} threads) vs {versions}; Python {sys.version.split()[0]}; {time.strftime('%Y-%m-%d')}.",
        "",
        f"Peer load (`anndata.read_h5ad` of the section, uncompressed): {load[0]:.2f} s wall, {load[1]:.1f} s CPU.",
        "",
        "| step | tmescope wall (s) | tmescope CPU (s) | tmescope peak (MB) | tmescope in memory (s) | peer wall (s) "
        "| peer CPU (s) | speed-up | speed-up incl. peer load | speed-up in memory | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for step, (ow, oc, orss, mem), p, note in rows:
        m = f"{mem:.2f}" if mem else "-"
        if p:
            with_load = "-" if step == "ingest" else f"{(p[0] + load[0]) / ow:.1f}x"
            m_ratio = f"{p[0] / mem:.1f}x" if mem else "-"
            lines.append(f"| {step} | {ow:.2f} | {oc:.1f} | {orss} | {m} | {p[0]:.2f} | {p[1]:.1f} | {p[0] / ow:.1f}x "
                         f"| {with_load} | {m_ratio} | {note} |")
        else:
            lines.append(f"| {step} | {ow:.2f} | {oc:.1f} | {orss} | {m} | - | - | - | - | - | {note} |")
    table = "\n".join(lines)
    print(table)
    if a.doc:
        text = Path(a.doc).read_text()
        begin, end = f"<!-- peers:{n}:begin -->", f"<!-- peers:{n}:end -->"
        block = f"{begin}\n{table}\n{end}"
        if begin in text:
            text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
        else:
            text = text.rstrip() + f"\n\n### Side by side, {n:,} cells\n\n{block}\n"
        Path(a.doc).write_text(text)


if __name__ == "__main__":
    main()
