# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= out/demo

.PHONY: demo test install system-deps bench-deps bench mutation clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Debian tools the tests compare against (gdaldem, gdal_viewshed) and drive (chromium).
system-deps:
	@if ! command -v gdaldem >/dev/null || ! command -v gdal_viewshed >/dev/null \
	    || ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    gdal-bin chromium chromium-driver >/dev/null; \
	fi

# Peers the benchmarks compare against besides GDAL: GRASS GIS (r.viewshed, r.walk).
bench-deps: system-deps
	@if ! command -v grass >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    grass-core >/dev/null; \
	fi

demo: $(STAMP)
	$(VENV)/bin/gapmap demo --out $(OUT)

test: $(STAMP) system-deps
	$(PY) -m pytest -q

bench: $(STAMP) bench-deps
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) bench/run.py

# Mutation testing of the seam and corridor code (docs/mutation.md); not part of `make test`.
# MUTANTS narrows the run, e.g. MUTANTS='gapmap.frontier.x_clip_to_discs__mutmut_*'.
MUTANTS ?=
JOBS ?= 2
mutation: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,mutation]'
	NUMBA_THREADING_LAYER=workqueue nice $(VENV)/bin/mutmut run --max-children $(JOBS) $(MUTANTS)
	$(VENV)/bin/mutmut results

clean:
	rm -rf $(VENV) out build src/*.egg-info .pytest_cache mutants
