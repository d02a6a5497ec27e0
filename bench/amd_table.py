#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The kernel x AMD family table of bench/AMD.md, from the JSON files tests/radv.sh
# writes (vkphi kernels --all --stats --json on RADV's null devices):
#
#   tests/radv.sh -o AFTER && python3 bench/amd_table.py [BEFORE] AFTER > bench/AMD.md
#
# Each cell is VGPRs / LDS KiB / waves per SIMD / spilled VGPRs, as ACO reports
# them; with BEFORE, a second table of the same kernels from BEFORE.
import json
import os
import sys

FAMILIES = ["vega10", "renoir", "navi10", "navi21", "navi23", "vangogh", "gfx1100", "gfx1103_r1", "navi31"]
GEN = {"vega10": "GCN5", "renoir": "GCN5 APU", "navi10": "RDNA1", "navi21": "RDNA2", "navi23": "RDNA2",
       "vangogh": "RDNA2 APU (Steam Deck)", "gfx1100": "RDNA3 (Mesa 22)", "gfx1103_r1": "RDNA3 APU (Phoenix)",
       "navi31": "RDNA3 (Mesa 25)"}
ROWS = [("matvec_q4_k", "1 token"), ("matvec_q4_k", "2 tokens"), ("matvec_q4_k", "8 tokens"),
        ("matvec_q4_k", "16 tokens"), ("matvec_q6_k", "16 tokens"), ("matvec_q8_0", "1 token"),
        ("matvec_q8_0", "16 tokens"), ("matvec_iq2_xxs", "16 tokens"), ("matvec_f16", "16 tokens"),
        ("matmul_q4_k", ""), ("matmulh_q4_k", ""), ("matmul_coop_q4_k", ""), ("attn_decode", ""),
        ("attn_prefill", ""), ("attn_prefill_coop", "")]


def load(folder):
    out = {}
    for f in FAMILIES:
        path = os.path.join(folder, f + ".json")
        if os.path.exists(path):
            out[f] = json.load(open(path))
    return out


def cell(r, kernel, variant):
    for k in r["kernels"]:
        if k["kernel"] == kernel and k["variant"] == variant and k.get("ok"):
            s = k["stats"]
            return "%d / %.1f / %d / %d" % (s["VGPRs"], s["LDS size"] / 1024, s["Subgroups per SIMD"], s["Spilled VGPRs"])
    return "-"


def summary(r):
    ks = r["kernels"]
    spill = sum(1 for k in ks if k.get("ok") and (k["stats"].get("Spilled VGPRs") or k["stats"].get("Scratch size")))
    return len(ks), spill, r["total_ms"] / 1e3


def table(runs, title):
    fams = [f for f in FAMILIES if f in runs]
    print("### " + title + "\n")
    print("| kernel | " + " | ".join(fams) + " |")
    print("|---|" + "---|" * len(fams))
    for kernel, variant in ROWS:
        cells = [cell(runs[f], kernel, variant) for f in fams]
        if all(c == "-" for c in cells):
            continue
        print("| %s%s | %s |" % (kernel, " x" + variant.split()[0] if variant else "", " | ".join(cells)))
    print("| pipelines, spilling, compile s | %s |\n" % " | ".join(
        "%d, %d, %.0f" % summary(runs[f]) for f in fams))


def main():
    args = sys.argv[1:]
    if not args or len(args) > 2:
        sys.exit("usage: amd_table.py [BEFORE] AFTER")
    after = load(args[-1])
    before = load(args[0]) if len(args) == 2 else None
    print("Cells: VGPRs / LDS KiB / waves per SIMD / spilled VGPRs, as ACO reports them for the pipeline the "
          "runtime creates (`vkphi kernels --all --stats --json` on RADV's null devices). Families: " +
          ", ".join("%s %s" % (f, GEN[f]) for f in FAMILIES if f in after) + ".\n")
    table(after, "Now")
    if before:
        table(before, "Before the tuning")


main()
