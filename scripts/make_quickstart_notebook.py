"""Write notebooks/01_quickstart.ipynb (kept as code so the notebook stays reviewable)."""

from pathlib import Path

import nbformat as nbf

nb = nbf.v4.new_notebook()
md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
nb.cells = [
    md("# gapmap quick start\n\n"
       "This notebook loads the shipped sample of Iraq's disputed territories, computes the seam "
       "between the Kurdistan Region's Peshmerga and the federal forces (ISF, PMF), finds the "
       "unguarded corridors and shows them on a map.\n\n"
       "**The sample's force layout is illustrative** — built from real boundaries and towns to "
       "show the method, not an assessment of who holds what."),
    code("%matplotlib inline\nimport os\nfrom pathlib import Path\n\n"
         "# Run from the repository root whether the notebook is opened from notebooks/ or not.\n"
         "if Path.cwd().name == 'notebooks':\n    os.chdir('..')\n\n"
         "import gapmap\n\ngapmap.__version__"),
    md("## 1. Load the layers\n\nZones are polygons held by one force each; posts are "
       "checkpoints with a range; the study area is the disputed districts."),
    code("zones = gapmap.read_layer('geodata/zones.geojson', what='zones')\n"
         "posts = gapmap.load_posts('geodata/posts.geojson')\n"
         "study = gapmap.load_study_area('geodata/study_area.geojson')\n"
         "zones.groupby('force').size()"),
    md("## 2. Seam and corridors\n\nTwo sides: `krg` (Peshmerga) and `federal` (ISF and PMF). "
       "A seam point is covered within 2 km of either side's zones or within a post's range; "
       "the rest is unguarded."),
    code("krg = gapmap.parse_side('krg=peshmerga')\n"
         "federal = gapmap.parse_side('federal=isf,pmf')\n"
         "res = gapmap.analyze(zones, krg, federal, posts=posts, study_area=study,\n"
         "                     settings=gapmap.Settings(reach_km=2, max_width_km=150))\n"
         "res.summary"),
    code("assert res.summary['seam_length_km'] > 0\n"
         "assert 0 <= res.summary['unguarded_share'] <= 1\n"
         "res.corridors[['corridor_id', 'length_km', 'width_min_km', 'width_mean_km',\n"
         "               'width_max_km']].head(10).round(1)"),
    md("## 3. A quick map\n\nZones by force, the seam, and the unguarded corridors (red)."),
    code("import matplotlib.pyplot as plt\n\n"
         "fig, ax = plt.subplots(figsize=(9, 7))\n"
         "colors = {'peshmerga': '#d9a33b', 'isf': '#4a78b5', 'pmf': '#6c8f4e'}\n"
         "for force, part in res.zones.groupby('force'):\n"
         "    part.plot(ax=ax, color=colors.get(force, 'grey'), alpha=0.5, label=force)\n"
         "res.seam.plot(ax=ax, color='black', linewidth=0.6)\n"
         "res.corridors.plot(ax=ax, color='red', linewidth=2)\n"
         "if res.posts is not None:\n"
         "    res.posts.plot(ax=ax, color='black', markersize=4)\n"
         "xmin, ymin, xmax, ymax = res.study_area.bounds\n"
         "ax.set_xlim(xmin, xmax); ax.set_ylim(ymin, ymax)\n"
         "ax.set_title('Unguarded corridors (red) — illustrative force layout')\n"
         "ax.set_axis_off()"),
    md("## 4. Save the results\n\nThe same files `gapmap metrics` writes: a corridor table, "
       "GeoJSON layers, a JSON summary and a GeoPackage with every layer."),
    code("from gapmap.outputs import write_metrics\n"
         "paths = write_metrics(res, 'out/notebook01')\n"
         "sorted(paths)"),
]
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
Path("notebooks").mkdir(exist_ok=True)
nbf.write(nb, "notebooks/01_quickstart.ipynb")
