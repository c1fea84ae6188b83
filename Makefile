# Two entry points for a fresh machine (see README):
#   make demo   install, then compare every bottleneck on digits over 3 seeds
#   make test   install (with test extras and the browser for the report test), then run the tests
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
OUT    ?= runs/digits

.PHONY: install install-test demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# The CPU build of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

# Debian's chromium renders the HTML report in the report test, and Debian's
# dataset-fashion-mnist is what the Fashion-MNIST loader test reads (root + apt only).
install-test: install
	@if { ! command -v chromium >/dev/null 2>&1 || [ ! -d /usr/share/datasets/fashion-mnist ]; } \
		&& command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium dataset-fashion-mnist >/dev/null; fi

demo: install
	$(VENV)/bin/softvq compare --dataset digits --bottlenecks all --seeds 3 --out $(OUT)

test: install-test
	$(VENV)/bin/python -m pytest -q

bench: install
	$(PY) -m pip install --quiet vector-quantize-pytorch
	$(PY) benchmarks/bottleneck.py
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/evaluation.py

clean:
	rm -rf $(VENV) runs
