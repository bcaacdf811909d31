#!/usr/bin/env python3
"""Writes the tiny, spec-exact synthetic Xenium fixtures under test_data/xenium/.

No raw Xenium `cells.parquet` / `transcripts.parquet` small enough to commit is available, so this script
builds them with the column names and types of the 10x Genomics "Xenium Onboard Analysis output files"
specification:

- `synthetic/` (XOA >= 1.3 style): string cell ids (`aaaabbbb-1`), `UNASSIGNED` for transcripts outside
  cells, `feature_name` as utf8; `cells.parquet`; `transcripts.parquet` written in row groups of 100 rows
  so that the reader's streaming is exercised; and the `cell_feature_matrix/` MTX folder computed from the
  transcripts exactly as XOA does (qv >= 20, assigned transcripts only), with the control features listed
  under their feature types.
- `synthetic_int_ids/` (XOA 1.0-1.2 style): integer cell ids with -1 for unassigned and `feature_name` as
  binary, transcripts only.

Each folder gets an `expected.json` with the totals the readers must reproduce, computed here with numpy.
Deterministic (fixed seed). Run: scripts/.venv/bin/python scripts/make_xenium_fixture.py
"""

import gzip
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test_data", "xenium")
GENES = ["ACTA2", "CD3E", "EPCAM", "ERBB2", "KRT8", "MS4A1", "PTPRC", "VIM"]
CONTROLS = [
    ("NegControlProbe_00031", "Negative Control Probe"),
    ("NegControlCodeword_0502", "Negative Control Codeword"),
    ("UnassignedCodeword_0007", "Unassigned Codeword"),
    ("BLANK_0006", "Unassigned Codeword"),
    ("DeprecatedCodeword_0001", "Deprecated Codeword"),
    ("IntergenicRegion_12", "Genomic Control"),
]
N_CELLS = 12
N_TX = 700
MIN_QV = 20.0


def cell_names(n):
    letters = "abcdefghijklmnop"
    out = []
    for i in range(n):
        code = "".join(letters[(i >> (4 * k)) & 15] for k in range(7, -1, -1))
        out.append(f"{code}-1")
    return out


def simulate(rng):
    centres = rng.uniform(0, 500, size=(N_CELLS, 2))
    features = GENES + [c[0] for c in CONTROLS]
    # Mostly genes, a few controls; every gene appears with good quality at least once.
    p = np.array([10.0] * len(GENES) + [0.4] * len(CONTROLS))
    feat = rng.choice(len(features), size=N_TX, p=p / p.sum())
    feat[: len(GENES)] = np.arange(len(GENES))
    cell = rng.integers(-1, N_CELLS, size=N_TX)  # -1: unassigned
    cell[: len(GENES)] = np.arange(len(GENES)) % N_CELLS
    qv = np.round(rng.uniform(5, 40, size=N_TX), 2).astype(np.float32)
    qv[: len(GENES)] = 39.0
    qv[len(GENES)] = 20.0  # exactly at the threshold: counted
    qv[len(GENES) + 1] = 19.99  # just below: not counted
    xy = np.where(cell[:, None] >= 0, centres[np.maximum(cell, 0)], rng.uniform(0, 500, size=(N_TX, 2)))
    xy = (xy + rng.normal(0, 3, size=(N_TX, 2))).astype(np.float32)
    z = rng.uniform(10, 25, size=N_TX).astype(np.float32)
    return centres, features, feat, cell, qv, xy, z


def expected_matrix(features, feat, cell, qv):
    m = np.zeros((N_CELLS, len(features)), dtype=np.int64)
    ok = (cell >= 0) & (qv >= MIN_QV)
    np.add.at(m, (cell[ok], feat[ok]), 1)
    return m


def write_string_ids(rng):
    out = os.path.join(ROOT, "synthetic")
    os.makedirs(os.path.join(out, "cell_feature_matrix"), exist_ok=True)
    centres, features, feat, cell, qv, xy, z = simulate(rng)
    names = cell_names(N_CELLS)
    ids = [names[c] if c >= 0 else "UNASSIGNED" for c in cell]
    tx = pa.table(
        {
            "transcript_id": pa.array(np.arange(N_TX, dtype=np.uint64) + 281474976710656, pa.uint64()),
            "cell_id": pa.array(ids, pa.string()),
            "overlaps_nucleus": pa.array(rng.integers(0, 2, size=N_TX).astype(np.uint8), pa.uint8()),
            "feature_name": pa.array([features[f] for f in feat], pa.string()),
            "x_location": pa.array(xy[:, 0], pa.float32()),
            "y_location": pa.array(xy[:, 1], pa.float32()),
            "z_location": pa.array(z, pa.float32()),
            "qv": pa.array(qv, pa.float32()),
        }
    )
    pq.write_table(tx, os.path.join(out, "transcripts.parquet"), row_group_size=100, compression="zstd")

    m = expected_matrix(features, feat, cell, qv)
    genes = m[:, : len(GENES)]
    ctrl = m[:, len(GENES):]
    kinds = [c[1] for c in CONTROLS]
    probe = ctrl[:, [i for i, k in enumerate(kinds) if k in ("Negative Control Probe", "Genomic Control")]].sum(1)
    codeword = ctrl[:, [i for i, k in enumerate(kinds) if k == "Negative Control Codeword"]].sum(1)
    unassigned = ctrl[:, [i for i, k in enumerate(kinds) if k in ("Unassigned Codeword", "Deprecated Codeword")]].sum(1)
    cells = pa.table(
        {
            "cell_id": pa.array(names, pa.string()),
            "x_centroid": pa.array(centres[:, 0], pa.float64()),
            "y_centroid": pa.array(centres[:, 1], pa.float64()),
            "transcript_counts": pa.array(genes.sum(1).astype(np.uint32), pa.uint32()),
            "control_probe_counts": pa.array(probe.astype(np.uint32), pa.uint32()),
            "control_codeword_counts": pa.array(codeword.astype(np.uint32), pa.uint32()),
            "unassigned_codeword_counts": pa.array(unassigned.astype(np.uint32), pa.uint32()),
            "deprecated_codeword_counts": pa.array(np.zeros(N_CELLS, np.uint32), pa.uint32()),
            "total_counts": pa.array(m.sum(1).astype(np.uint32), pa.uint32()),
            "cell_area": pa.array(np.round(rng.uniform(50, 400, N_CELLS), 3), pa.float64()),
            "nucleus_area": pa.array(np.round(rng.uniform(10, 60, N_CELLS), 3), pa.float64()),
            "segmentation_method": pa.array(["Segmented by boundary stain (ATP1A1+CD45+E-Cadherin)"] * N_CELLS, pa.string()),
        }
    )
    pq.write_table(cells, os.path.join(out, "cells.parquet"), compression="zstd")

    mdir = os.path.join(out, "cell_feature_matrix")
    with gzip.open(os.path.join(mdir, "barcodes.tsv.gz"), "wt") as f:
        f.write("".join(n + "\n" for n in names))
    with gzip.open(os.path.join(mdir, "features.tsv.gz"), "wt") as f:
        for i, g in enumerate(GENES):
            f.write(f"ENSG{i:011d}\t{g}\tGene Expression\n")
        for name, kind in CONTROLS:
            f.write(f"{name}\t{name}\t{kind}\n")
    rows, cols = np.nonzero(m.T)  # features x barcodes
    with gzip.open(os.path.join(mdir, "matrix.mtx.gz"), "wt") as f:
        f.write("%%MatrixMarket matrix coordinate integer general\n")
        f.write('%metadata_json: {"software_version": "synthetic", "format_version": 2}\n')
        f.write(f"{m.shape[1]} {m.shape[0]} {len(rows)}\n")
        order = np.lexsort((rows, cols))
        for k in order:
            f.write(f"{rows[k] + 1} {cols[k] + 1} {m.T[rows[k], cols[k]]}\n")

    expected = {
        "n_cells": N_CELLS,
        "n_genes": len(GENES),
        "total": int(genes.sum()),
        "nnz": int((genes > 0).sum()),
        "control_probe_counts": probe.tolist(),
        "control_codeword_counts": codeword.tolist(),
        "unassigned_codeword_counts": unassigned.tolist(),
        "n_transcripts": N_TX,
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


def write_int_ids(rng):
    out = os.path.join(ROOT, "synthetic_int_ids")
    os.makedirs(out, exist_ok=True)
    centres, features, feat, cell, qv, xy, z = simulate(rng)
    ids = np.where(cell >= 0, cell + 1, -1).astype(np.int32)  # XOA 1.x cell ids start at 1
    tx = pa.table(
        {
            "transcript_id": pa.array(np.arange(N_TX, dtype=np.uint64), pa.uint64()),
            "cell_id": pa.array(ids, pa.int32()),
            "overlaps_nucleus": pa.array(rng.integers(0, 2, size=N_TX).astype(np.uint8), pa.uint8()),
            "feature_name": pa.array([features[f].encode() for f in feat], pa.binary()),
            "x_location": pa.array(xy[:, 0], pa.float32()),
            "y_location": pa.array(xy[:, 1], pa.float32()),
            "z_location": pa.array(z, pa.float32()),
            "qv": pa.array(qv, pa.float32()),
        }
    )
    pq.write_table(tx, os.path.join(out, "transcripts.parquet"), row_group_size=100, compression="snappy")
    m = expected_matrix(features, feat, cell, qv)
    genes = m[:, : len(GENES)]
    present = np.unique(cell[cell >= 0])
    # Cells appear in order of first appearance of an assigned transcript; centroids are mean positions.
    first = [c for c in dict.fromkeys(cell.tolist()) if c >= 0]
    cx = [float(xy[cell == c, 0].astype(np.float64).mean()) for c in first]
    expected = {
        "n_cells": int(len(present)),
        "n_genes": len(GENES),
        "total": int(genes.sum()),
        "nnz": int((genes > 0).sum()),
        "first_cell_ids": [str(c + 1) for c in first[:3]],
        "first_cell_x": cx[:3],
        "n_transcripts": N_TX,
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    rng = np.random.default_rng(20240601)
    write_string_ids(rng)
    write_int_ids(rng)
    print("wrote", os.path.normpath(ROOT))
