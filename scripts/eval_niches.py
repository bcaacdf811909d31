#!/usr/bin/env python3
"""Scores the niche, state and comparison stages against the simulator's planted truth (issue 6).

Run through scripts/eval_niches.sh (release build, scripts/.venv with pyarrow, numpy, scikit-learn).

1. Simulates a cohort with the default simulation parameters (Xenium-like single cells, `--samples` sections:
   patients x pre/post, the planted therapy effect on the post sections).
2. Runs deconvolve (labels mode against the simulated reference), graph, score and niches (`--joint`, one
   niche model for the cohort) on every section, then compare (paired by patient).
3. Reports:
   - the adjusted Rand index between niches and the planted regions (per section and pooled), the niche
     count chosen by `--niches auto` when asked, and the region x niche contingency;
   - for the planted hypoxic cells, excluded band and myeloid zone: the fraction of their cells whose
     `cell_state` is hypoxic/glycolytic, immune-excluded and myeloid-suppressive, against the rest of the
     tissue;
   - the differential table against the planted therapy effects: myeloid-suppressive and
     hypoxic/glycolytic up after therapy, tumour-rich niches down; q-values (BH) and signs.
4. With `--null`, the cohort is simulated without therapy (`--conditions pre`: one untreated section per
   patient) and compare contrasts the first half of the patients with the second (Welch t-tests): nothing
   is planted, so no niche or state should reach q < 0.05. The count of rows that do is reported. Give it
   a work folder of its own.

Usage: eval_niches.py --tmescope BIN --work DIR [--samples 8] [--cells 20000] [--niches 9] [--seed 1]
                      [--niche-seed S] [--null] [--json FILE] [--niche-arg=--hops=3 ...]
"""

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from sklearn.metrics import adjusted_rand_score


def run(argv):
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, argv))}\n{r.stderr}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tmescope", required=True)
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--cells", type=int, default=20000)
    ap.add_argument("--niches", default="9")
    ap.add_argument("--seed", default="1")
    ap.add_argument("--niche-seed", default=None, help="seed of `tmescope niches` (default: --seed)")
    ap.add_argument("--null", action="store_true", help="no therapy: first half of the patients vs the second")
    ap.add_argument("--json", default=None)
    ap.add_argument("--niche-arg", action="append", default=[],
                    help="extra option passed to `tmescope niches` (repeatable), e.g. --niche-arg=--hops=1")
    a = ap.parse_args()
    t = [a.tmescope, "--quiet"]
    w = a.work
    w.mkdir(parents=True, exist_ok=True)
    sim = w / "sim"
    if not (sim / "samples.csv").exists():
        run([*t, "simulate", "-o", str(sim), "--platform", "xenium", "--samples", str(a.samples), "--cells",
             str(a.cells), "--seed", a.seed, *(["--conditions", "pre"] if a.null else [])])
    conditions = {r["condition"] for r in csv.DictReader((sim / "samples.csv").open())}
    if a.null and conditions != {"pre"}:
        sys.exit(f"{w}: its cohort was simulated with conditions {sorted(conditions)}; --null needs its own folder")
    sections = sorted(p.name for p in sim.iterdir() if p.name.endswith("_xenium"))
    for s in sections:
        d = w / "run" / s
        if not (d / "scores" / "programs.parquet").exists():
            run([*t, "deconvolve", "--spatial", str(sim / s), "--reference", str(sim / "reference"), "-o",
                 str(d / "deconvolution"), "--seed", a.seed])
            run([*t, "graph", str(sim / s), "-o", str(d / "graph")])
            run([*t, "score", str(sim / s), "--graph", str(d / "graph"), "-o", str(d / "scores"), "--seed", a.seed])
    argv = [a.tmescope, "niches", *[str(sim / s) for s in sections]]
    for s in sections:
        argv += ["--graph", str(w / "run" / s / "graph")]
    for s in sections:
        argv += ["--scores", str(w / "run" / s / "scores")]
    for s in sections:
        argv += ["--proportions", str(w / "run" / s / "deconvolution")]
    argv += ["--joint", "--niches", a.niches, "--seed", a.niche_seed or a.seed, "-o", str(w / "niches"), *a.niche_arg]
    out = run(argv)
    if a.null:
        # The two halves of the patients, one untreated section each: a contrast with nothing planted.
        sheet = w / "null_groups.csv"
        half = len(sections) // 2
        sheet.write_text("sample,group\n" + "".join(f"{s},{'a' if i < half else 'b'}\n"
                                                     for i, s in enumerate(sections)))
        run([*t, "compare", str(w / "niches"), "--by", "group", "--reference", "a", "--metadata", str(sheet), "-o",
             str(w / "compare")])
    else:
        run([*t, "compare", str(w / "niches"), "--by", "condition", "--reference", "pre", "--pair-by", "patient",
             "-o", str(w / "compare")])

    niches = pq.read_table(w / "niches" / "niches.parquet").to_pandas()
    truth = pq.read_table(sim / "truth_cells.parquet").to_pandas()
    m = niches.merge(truth[["cell_id", "sample", "region", "hypoxic", "cell_type"]], on=["cell_id", "sample"],
                     how="inner")
    if len(m) != len(niches):
        sys.exit(f"joined {len(m)} of {len(niches)} cells with the truth")
    result = {"cells": int(len(m)), "sections": len(sections), "niches": int(m["niche"].nunique())}
    result["ari_pooled"] = adjusted_rand_score(m["region"], m["niche"])
    result["ari_per_section"] = {s: adjusted_rand_score(g["region"], g["niche"]) for s, g in m.groupby("sample")}
    # Regions merged as a biologist would read them (tumour core + nest = tumour; stroma + desmoplastic =
    # stroma): the niches are compositional, and these pairs differ in state, not in composition.
    merged = m["region"].replace({"tumor_core": "tumor", "tumor_nest": "tumor", "desmoplastic_stroma": "stroma"})
    result["ari_pooled_merged_regions"] = adjusted_rand_score(merged, m["niche"])
    tab = m.groupby(["region", "niche"]).size().unstack(fill_value=0)
    print("region x niche (cells):")
    print(tab.to_string())

    def frac(mask, state):
        return float((m.loc[mask, "cell_state"] == state).mean()) if mask.any() else float("nan")

    checks = [
        ("hypoxic cells (truth flag)", m["hypoxic"], "hypoxic/glycolytic"),
        ("immune_excluded_band", m["region"] == "immune_excluded_band", "immune-excluded"),
        ("myeloid_zone", m["region"] == "myeloid_zone", "myeloid-suppressive"),
        ("desmoplastic_stroma", m["region"] == "desmoplastic_stroma", "fibrotic/CAF-rich"),
    ]
    result["states"] = {}
    print("\nplanted zone -> state: fraction of its cells with that cell_state (rest of the tissue)")
    for name, mask, state in checks:
        inside, outside = frac(mask, state), frac(~mask, state)
        result["states"][name] = {"state": state, "inside": inside, "outside": outside}
        print(f"  {name:28s} {state:22s} {inside:6.3f} ({outside:6.3f})")

    diff = pq.read_table(w / "compare" / "differential.parquet").to_pandas()
    cols = [c for c in ("kind", "category", "level", "mean_reference", "mean_level", "difference", "log2_fc", "p",
                        "q") if c in diff.columns]
    print("\ndifferential (level vs reference):")
    print(diff[cols].to_string(index=False))
    if a.null:
        hits = diff[diff["q"] < 0.05]
        result["null"] = {"rows": int(len(diff)), "q_below_0_05": int(len(hits)), "min_q": float(diff["q"].min())}
        print(f"\nno therapy planted (first half of the patients vs the second): {len(hits)} of {len(diff)} rows "
              f"with q < 0.05 (expected none; smallest q {diff['q'].min():.3f})")
    # The planted effects are on cells (more myeloid cells, CAFs and hypoxic area after therapy): read them
    # from the cell-level states (`cell_state`); niche-level states move with the niches' areas.
    if not a.null:
        result["therapy"] = {}
        print("\nplanted therapy effects (post vs pre):")
        for kind in ("cell_state", "state"):
            st = diff[diff["kind"] == kind].set_index("category")
            for cat, sign in (("myeloid-suppressive", 1), ("hypoxic/glycolytic", 1), ("fibrotic/CAF-rich", 1)):
                if cat in st.index:
                    r = st.loc[cat]
                    d, q = float(r["difference"]), float(r.get("q", np.nan))
                    result["therapy"][f"{kind}:{cat}"] = {"difference": d, "q_value": q, "expected_sign": sign}
                    ok = "ok" if np.sign(d) == sign and q < 0.05 else "MISSED"
                    print(f"  {kind:10s} {cat:22s} difference {d:+.4f}  q {q:.4f}  (planted: up) {ok}")
    result["auto_output"] = out.strip()
    print(f"\nARI niches vs planted regions: pooled {result['ari_pooled']:.3f}, "
          f"with tumour core+nest and stroma+desmoplastic merged {result['ari_pooled_merged_regions']:.3f}")
    for s, v in result["ari_per_section"].items():
        print(f"  {s}: {v:.3f}")
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
