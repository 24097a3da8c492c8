# rsviz — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8501
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
	@# tcmalloc speeds up eager torch, but OpenVINO (the faster engine) aborts with it preloaded;
	@# the rule lives in rsviz/allocator.py
	@tcmalloc=$$($(PY) -m rsviz.allocator --preload); \
	if [ -n "$$tcmalloc" ]; then \
		echo "make run: preloading tcmalloc ($$tcmalloc) for faster large-batch eager CPU inference"; \
		LD_PRELOAD=$$tcmalloc $(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) --server.headless true; \
	else \
		echo "make run: glibc malloc (OpenVINO installed, which aborts with tcmalloc; or no tcmalloc; or RSVIZ_TCMALLOC=0)"; \
		$(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) --server.headless true; \
	fi

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-all: $(STAMP)
	$(PY) -m pytest -m "slow or not slow" $(PYTEST_ARGS)

clean-cache:
	rm -rf cache/* && touch cache/.gitkeep
