"""Writes a simulated tmescope dataset folder back out as a Xenium Onboard Analysis output folder.

The end-to-end benchmark (scripts/bench/e2e.sh) times `tmescope ingest` on what an instrument writes, not on
our own Parquet files, so it converts the simulated section into the Xenium layout first:

- cell_feature_matrix.h5: the 10x HDF5 matrix (matrix/{barcodes,data,indices,indptr,shape},
  matrix/features/{id,name,feature_type,genome}), genes x cells in CSC order, gzip-compressed chunks as
  Xenium writes them;
- cells.parquet: cell_id, x_centroid, y_centroid, transcript_counts, control_probe_counts,
  control_codeword_counts, unassigned_codeword_counts, total_counts, cell_area, nucleus_area.

The peer script (scripts/bench/peers.py) reads the same folder with scanpy.read_10x_h5.

Usage: python export_xenium.py SIM_SECTION_DIR OUT_DIR
Needs numpy, pyarrow, h5py.
"""

import sys
import time

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    section, out = sys.argv[1:]
    t0 = time.time()
    import os

    os.makedirs(out, exist_ok=True)
    cells = pq.read_table(f"{section}/cells.parquet").to_pandas()
    genes = pq.read_table(f"{section}/genes.parquet").to_pandas()
    counts = pq.read_table(f"{section}/counts.parquet")
    cell_index = counts.column("cell_index").to_numpy()
    gene_index = counts.column("gene_index").to_numpy().astype(np.int64)
    data = counts.column("count").to_numpy()
    del counts
    n_cells, n_genes = len(cells), len(genes)
    indptr = np.zeros(n_cells + 1, dtype=np.int64)
    np.cumsum(np.bincount(cell_index, minlength=n_cells), out=indptr[1:])
    del cell_index

    with h5py.File(f"{out}/cell_feature_matrix.h5", "w") as f:
        m = f.create_group("matrix")
        kw = dict(compression="gzip", compression_opts=1, chunks=(min(len(data), 1 << 18),))
        m.create_dataset("barcodes", data=cells["cell_id"].to_numpy().astype("S"), compression="gzip")
        m.create_dataset("data", data=data.astype(np.int32), **kw)
        m.create_dataset("indices", data=gene_index, **kw)
        m.create_dataset("indptr", data=indptr, compression="gzip")
        m.create_dataset("shape", data=np.array([n_genes, n_cells], dtype=np.int32))
        feats = m.create_group("features")
        feats.create_dataset("id", data=genes["gene_id"].to_numpy().astype("S"))
        feats.create_dataset("name", data=genes["gene_name"].to_numpy().astype("S"))
        feats.create_dataset("feature_type", data=np.array([b"Gene Expression"] * n_genes))
        feats.create_dataset("genome", data=np.array([b"Unknown"] * n_genes))
        f.attrs["software_version"] = "xenium-1.9.0.0 (tmescope simulation)"

    totals = np.diff(indptr).astype(np.int64)
    sums = np.add.reduceat(data.astype(np.int64), indptr[:-1]) if len(data) else np.zeros(n_cells)
    sums[totals == 0] = 0
    area = cells["cell_area"].to_numpy() if "cell_area" in cells else np.full(n_cells, 250.0)
    xen = pa.table(
        {
            "cell_id": cells["cell_id"].to_numpy(),
            "x_centroid": cells["x"].to_numpy(),
            "y_centroid": cells["y"].to_numpy(),
            "transcript_counts": sums.astype(np.int64),
            "control_probe_counts": np.zeros(n_cells, dtype=np.int64),
            "control_codeword_counts": np.zeros(n_cells, dtype=np.int64),
            "unassigned_codeword_counts": np.zeros(n_cells, dtype=np.int64),
            "total_counts": sums.astype(np.int64),
            "cell_area": area,
            "nucleus_area": area * 0.4,
        }
    )
    pq.write_table(xen, f"{out}/cells.parquet", compression="zstd")
    print(f"xenium folder {out}: {n_cells} cells x {n_genes} genes, {len(data)} non-zeros, {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
