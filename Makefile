# Two commands for a fresh machine: `make demo` and `make test`.
# Both create .venv on first use; re-running skips what is already installed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install browser colab-mirror clean-workspace strip

# The course (as the Colab set-up cell installs it) plus the [dev] extra: Jupyter, papermill, pytest.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

## Fetch the sample data and run all five notebooks in quick mode; outputs stay in ./workspace
demo: $(STAMP)
	$(PY) -m helpers.course demo

## The Colab-mirror environment (.venv-colab): rebuilt only when its inputs change
colab-mirror: $(STAMP)
	$(PY) -m helpers.colab_mirror build

## Headless Chromium for the browser tests (tests/test_app.py, tests/test_live.py): Debian's chromium and chromium-driver,
## installed with apt-get when run as root (about a minute); otherwise it says so and those tests skip, naming the packages.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get > /dev/null; then \
		echo "Installing headless Chromium for the browser tests: apt-get install chromium chromium-driver ..."; \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; } > $(VENV)/browser-install.log 2>&1 \
		|| { tail -n 5 $(VENV)/browser-install.log; echo "Could not install chromium and chromium-driver (log: $(VENV)/browser-install.log): the browser tests will be skipped."; }; \
	else \
		echo "No headless Chromium here (/usr/bin/chromium, /usr/bin/chromedriver) and no root to apt-get it: the browser tests"; \
		echo "will be skipped. Install the Debian packages chromium and chromium-driver to run them."; \
	fi

## The whole test suite, notebooks included, also in the Colab mirror (TESTS=tests/test_x.py runs fewer).
## The Colab mirror is built first, in the background (when stale; mostly pip's I/O, and it needs only the system's
## Python), while .venv and Chromium install. Two workers then share the main suite, as most of its tests wait on
## one core (a kernel or a child process starting, a browser), and the mirror's tests run beside them as soon as
## it is ready. Every process keeps torch to one thread: on two cores, more threads only wait on each other.
test:
	@export OMP_NUM_THREADS=1; \
	$(PYTHON) -m helpers.colab_mirror build > .venv-colab.log 2>&1 & build=$$!; \
	echo "Colab mirror: building (when stale) and testing in the background (logs: .venv-colab.log, .venv-colab.tests.log)"; \
	$(MAKE) --no-print-directory $(STAMP) browser || { wait $$build; exit 1; }; \
	$(PY) -m pytest -q -n 2 --dist loadgroup -m "not colab_mirror" $(TESTS) & main=$$!; \
	if wait $$build; then \
		$(PY) -m pytest -q -p no:cacheprovider -m colab_mirror $(TESTS) > .venv-colab.tests.log 2>&1; mirror=$$?; \
	else mirror=90; fi; \
	wait $$main; main=$$?; \
	if [ $$mirror = 90 ]; then tail -n 40 .venv-colab.log; echo "Could not build the Colab mirror (log above)."; \
	else cat .venv-colab.log; echo "Colab-mirror tests:"; cat .venv-colab.tests.log; fi; \
	[ $$main = 5 ] && main=0; [ $$mirror = 5 ] && mirror=0; \
	exit $$(( main || mirror ))

## Remove outputs and execution counts from the committed notebooks
strip: $(STAMP)
	$(PY) -m helpers.course strip notebooks/*.ipynb
