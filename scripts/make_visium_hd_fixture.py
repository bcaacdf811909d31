#!/usr/bin/env python3
"""Writes the synthetic Visium HD fixture under test_data/visium_hd/ (no real file can be shipped here).

The layout and schemas follow the Space Ranger 3 "binned outputs" documentation:

    visium_hd/outs/binned_outputs/square_008um/
        filtered_feature_bc_matrix.h5          CR3 layout: matrix/{barcodes,data,indices,indptr,shape,
                                               features/{_all_tag_keys,feature_type,genome,id,name}}
        spatial/tissue_positions.parquet       barcode: utf8, in_tissue: int32, array_row: int32,
                                               array_col: int32, pxl_row_in_fullres: f64,
                                               pxl_col_in_fullres: f64; every bin listed
        spatial/scalefactors_json.json         spot_diameter_fullres (bin width in px), bin_size_um,
                                               microns_per_pixel, tissue_{hires,lowres}_scalef, ...
    visium_hd/outs/binned_outputs/square_016um/  the same, 16 um bins (each the sum of 2 x 2 8-um bins)

Bins are named like Space Ranger's: s_008um_00012_00345-1 (bin size, array row, array column). The
tissue is a disc: bins whose centre is outside it are listed in the positions with in_tissue = 0 and
are absent from the filtered matrix. Counts are Poisson draws with a fixed seed, so the output is
reproducible; the script prints the totals the Rust tests assert.

Usage: python3 -m venv scripts/.venv && scripts/.venv/bin/pip install h5py pyarrow numpy
       scripts/.venv/bin/python scripts/make_visium_hd_fixture.py
"""

import json
import pathlib

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = pathlib.Path(__file__).resolve().parent.parent / "test_data" / "visium_hd"
MICRONS_PER_PIXEL = 0.2737600
GRID_8UM = 16  # 16 x 16 bins of 8 um = 256 bins; 8 x 8 bins of 16 um = 64 bins
ORIGIN_PX = (1520.25, 2310.75)  # full-resolution pixel (row, col) of the grid corner
GENES = [
    ("ENSG00000141510", "TP53"), ("ENSG00000111640", "GAPDH"), ("ENSG00000075624", "ACTB"),
    ("ENSG00000105974", "CAV1"), ("ENSG00000167996", "FTH1"), ("ENSG00000087086", "FTL"),
    ("ENSG00000171345", "KRT19"), ("ENSG00000111057", "KRT18"), ("ENSG00000163453", "IGFBP7"),
    ("ENSG00000148773", "MKI67"), ("ENSG00000010610", "CD4"), ("ENSG00000153563", "CD8A"),
    ("ENSG00000081237", "PTPRC"), ("ENSG00000177575", "CD163"), ("ENSG00000261371", "PECAM1"),
    ("ENSG00000149257", "SERPINH1"), ("ENSG00000108821", "COL1A1"), ("ENSG00000164692", "COL1A2"),
    ("ENSG00000120885", "CLU"), ("ENSG00000026025", "VIM"),
]


def barcode(bin_um, row, col):
    return f"s_{bin_um:03d}um_{row:05d}_{col:05d}-1"


def write_bins(bin_um, counts, in_tissue):
    """counts: (rows, cols, genes) integer array; in_tissue: (rows, cols) bool."""
    out = ROOT / "outs" / "binned_outputs" / f"square_{bin_um:03d}um"
    (out / "spatial").mkdir(parents=True, exist_ok=True)
    n_rows, n_cols, n_genes = counts.shape
    bin_px = bin_um / MICRONS_PER_PIXEL

    rows, cols = np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    table = pa.table({
        "barcode": pa.array([barcode(bin_um, r, c) for r, c in zip(rows, cols)], pa.utf8()),
        "in_tissue": pa.array(in_tissue.ravel().astype(np.int32), pa.int32()),
        "array_row": pa.array(rows.astype(np.int32), pa.int32()),
        "array_col": pa.array(cols.astype(np.int32), pa.int32()),
        "pxl_row_in_fullres": pa.array(ORIGIN_PX[0] + (rows + 0.5) * bin_px, pa.float64()),
        "pxl_col_in_fullres": pa.array(ORIGIN_PX[1] + (cols + 0.5) * bin_px, pa.float64()),
    })
    pq.write_table(table, out / "spatial" / "tissue_positions.parquet")

    scale = {
        "spot_diameter_fullres": bin_px,
        "bin_size_um": float(bin_um),
        "microns_per_pixel": MICRONS_PER_PIXEL,
        "regist_target_img_scalef": 0.2,
        "tissue_lowres_scalef": 0.02,
        "fiducial_diameter_fullres": 1200.0,
        "tissue_hires_scalef": 0.2,
    }
    (out / "spatial" / "scalefactors_json.json").write_text(json.dumps(scale, indent=4) + "\n")

    # Filtered matrix: in-tissue bins only, CSC over barcodes (features x barcodes), as Space Ranger.
    keep = np.flatnonzero(in_tissue.ravel())
    flat = counts.reshape(n_rows * n_cols, n_genes)[keep]
    data, indices, indptr = [], [], [0]
    for row in flat:
        nz = np.flatnonzero(row)
        indices.extend(nz)
        data.extend(row[nz])
        indptr.append(len(indices))
    with h5py.File(out / "filtered_feature_bc_matrix.h5", "w") as f:
        f.attrs["chemistry_description"] = "Visium HD v1"
        f.attrs["filetype"] = "matrix"
        f.attrs["library_ids"] = np.array([b"synthetic"])
        f.attrs["original_gem_groups"] = np.array([1])
        f.attrs["software_version"] = "spaceranger-3.0.0 (synthetic fixture)"
        f.attrs["version"] = 2
        m = f.create_group("matrix")
        gz = dict(compression="gzip", chunks=True)
        m.create_dataset("barcodes", data=np.array([barcode(bin_um, rows[i], cols[i]).encode() for i in keep]), **gz)
        m.create_dataset("data", data=np.array(data, dtype=np.int32), **gz)
        m.create_dataset("indices", data=np.array(indices, dtype=np.int64), **gz)
        m.create_dataset("indptr", data=np.array(indptr, dtype=np.int64), **gz)
        m.create_dataset("shape", data=np.array([n_genes, len(keep)], dtype=np.int32), **gz)
        ft = m.create_group("features")
        ft.create_dataset("_all_tag_keys", data=np.array([b"genome"]))
        ft.create_dataset("feature_type", data=np.array([b"Gene Expression"] * n_genes), **gz)
        ft.create_dataset("genome", data=np.array([b"GRCh38"] * n_genes), **gz)
        ft.create_dataset("id", data=np.array([g[0].encode() for g in GENES]), **gz)
        ft.create_dataset("name", data=np.array([g[1].encode() for g in GENES]), **gz)
    total, nnz = int(flat.sum()), int(np.count_nonzero(flat))
    print(f"square_{bin_um:03d}um: {n_rows * n_cols} bins listed, {len(keep)} in tissue, "
          f"{n_genes} genes, total {total}, nnz {nnz}")


def main():
    rng = np.random.default_rng(20261129)
    n = GRID_8UM
    centre, radius = (n - 1) / 2, n * 0.42
    rr, cc = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    tissue8 = (rr - centre) ** 2 + (cc - centre) ** 2 <= radius ** 2
    rate = rng.gamma(0.6, 1.2, size=len(GENES))
    counts8 = rng.poisson(rate[None, None, :] * np.where(tissue8, 1.0, 0.15)[:, :, None])
    write_bins(8, counts8, tissue8)
    # 16 um bins are the sums of 2 x 2 blocks of 8 um bins; a 16 um bin is in tissue when any child is.
    counts16 = counts8.reshape(n // 2, 2, n // 2, 2, -1).sum(axis=(1, 3))
    tissue16 = tissue8.reshape(n // 2, 2, n // 2, 2).any(axis=(1, 3))
    write_bins(16, counts16, tissue16)


if __name__ == "__main__":
    main()
