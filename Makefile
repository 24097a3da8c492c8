# rsviz — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8501
TCMALLOC := $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib64/libtcmalloc_minimal.so.4))
PYTEST_ARGS ?=

.PHONY: run test test-all venv bench clean-cache

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	# the package itself, editable: the `rsviz` command (offline when setuptools is there)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . \
		|| $(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	@# tcmalloc speeds up eager torch, but OpenVINO (the faster engine) aborts with it preloaded
	@if [ -n "$(TCMALLOC)" ] && $(PY) -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('openvino') is not None)"; then \
		echo "make run: preloading tcmalloc ($(TCMALLOC)) for faster large-batch eager CPU inference"; \
		LD_PRELOAD=$(TCMALLOC) $(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) --server.headless true; \
	else \
		echo "make run: glibc malloc (OpenVINO installed, which aborts with tcmalloc; or no tcmalloc)"; \
		$(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) --server.headless true; \
	fi

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-all: $(STAMP)
	$(PY) -m pytest -m "slow or not slow" $(PYTEST_ARGS)

clean-cache:
	rm -rf cache/* && touch cache/.gitkeep
