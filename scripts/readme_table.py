"""Write the README's demo table from what ``gapmap demo`` wrote, so the two cannot disagree.

Usage::

    gapmap demo --out out/demo
    python scripts/readme_table.py out/demo            # rewrite the table in README.md
    python scripts/readme_table.py out/demo --check    # exit 1 if README.md differs

The table sits between the two marker comments in README.md; everything else is left as is.
Figures come from ``summary.json``, ``corridors.csv``, ``placement/placement.json`` and
``hotspots/monthly.csv`` of the demo's output folder, rounded as printed here.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START = "<!-- demo table: written by scripts/readme_table.py from gapmap demo's output -->"
END = "<!-- end of demo table -->"
_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven",
          8: "eight", 9: "nine", 10: "ten"}


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def demo_table(out_dir: str | os.PathLike) -> str:
    """The markdown table of the demo's headline figures, from the files in ``out_dir``."""
    out = Path(out_dir)
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    s, params = doc["pairs"][0], doc["parameters"]
    corridors = _rows(out / "corridors.csv")
    c = max(corridors, key=lambda r: float(r["length_km"]))
    pl = json.loads((out / "placement" / "placement.json").read_text(encoding="utf-8"))
    site = pl["sites"][0]
    years = [int(r["year"]) for r in _rows(out / "hotspots" / "monthly.csv")]
    plural = "" if s["corridors"] == 1 else "s"
    rows = [
        ("seam between the KRG zone and the federal zones", f"{s['seam_length_km']:.1f} km"),
        (f"unguarded (more than {params['reach_km']:g} km from either side's zones and outside "
         "every checkpoint's line of sight)",
         f"{s['unguarded_length_km']:.1f} km ({s['unguarded_share']:.1%}), in "
         f"{s['corridors']} corridor{plural}"),
        ("longest corridor",
         f"{float(c['length_km']):.1f} km ({c['corridor_id']}, from "
         f"{float(c['start_lon']):.1f}°E {float(c['start_lat']):.1f}°N to "
         f"{float(c['end_lon']):.1f}°E {float(c['end_lat']):.1f}°N), "
         f"{float(c['width_min_km']):.0f}–{float(c['width_max_km']):.0f} km wide"),
        ("gap region", f"{s['gap_area_km2']:,.0f} km²"),
        (f"UCDP GED events in and around the belt (its districts' box + 0.5°), "
         f"{min(years)}–{max(years)}",
         f"{s['incidents_total'] + s.get('incidents_outside_study_area', 0):,} read, "
         f"{s.get('incidents_outside_study_area', 0):,} of them outside the districts; "
         f"{s['incidents_coarse']:,} with coarse locations set "
         f"aside; {s['incidents_in_study_area']:,} inside the districts, "
         f"{s['incidents_in_gap']:,} of them in the gap; {s['incidents_in_corridors']:,} "
         "assigned to corridors"),
        ("exploitation ratio",
         f"{s['exploitation_ratio']:.3f} (95% CI {s['exploitation_ratio_low']:.3f}–"
         f"{s['exploitation_ratio_high']:.3f})"),
        (f"{_WORDS.get(pl['k'], pl['k'])} joint posts ({site['range_km']:g} km range, "
         f"{site['height_m']:g} m masts), placed by the optimiser",
         f"close {pl['closed_km']:.1f} km ({pl['unguarded_before_km']:.1f} → "
         f"{pl['unguarded_after_km']:.1f} km), {pl['guarantee']}"),
    ]
    lines = ["| figure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def replace_table(readme: str, table: str) -> str:
    """``readme`` with the text between the markers replaced by ``table``.

    Examples
    --------
    >>> replace_table(f"a\\n{START}\\nold\\n{END}\\nb\\n", "| new |\\n")[2:-2].splitlines()[1]
    '| new |'
    """
    i, j = readme.find(START), readme.find(END)
    if i < 0 or j < i:
        raise ValueError(f"README has no demo table markers ({START!r} … {END!r})")
    return readme[: i + len(START)] + "\n" + table + readme[j:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", nargs="?", default=str(ROOT / "out" / "demo"))
    ap.add_argument("--readme", default=str(ROOT / "README.md"))
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    args = ap.parse_args(argv)
    readme = Path(args.readme)
    text = readme.read_text(encoding="utf-8")
    new = replace_table(text, demo_table(args.out_dir))
    if args.check:
        if new != text:
            print(f"{readme}: the demo table differs from {args.out_dir}", file=sys.stderr)
            return 1
        return 0
    if new != text:
        fd, tmp = tempfile.mkstemp(dir=readme.parent, prefix=".README.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new)
        os.replace(tmp, readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
