# Two commands do all set-up on a fresh clone (each builds .venv with Python 3.12 if missing):
#   make submit AGENT=pendulum   # validate + bundle the shipped weights (the main job)
#   make test                    # lint + the test suite (what CI runs)
PYTHON ?= python3.12
VENV ?= .venv
BIN := $(VENV)/bin
AGENT ?= pendulum
VERSION_OF := -c 'import sys; print("%d.%d" % sys.version_info[:2])'
#: The Python the venv must be made by (empty if $(PYTHON) is missing).
WANT_VERSION := $(shell $(PYTHON) $(VERSION_OF) 2>/dev/null)
STAMP := $(VENV)/.installed-$(WANT_VERSION)

# A .venv made by another Python (say 3.11) cannot install the package ("requires a different
# Python"): it is deleted and made again with $(PYTHON). Also `make venv-check` on its own.
define CHECK_VENV
	@if [ -z "$(WANT_VERSION)" ]; then \
	  echo "make: $(PYTHON) not found: install Python 3.12 (pyenv install 3.12) or pass PYTHON=/path/to/python3.12" >&2; \
	  exit 2; \
	fi
	@have=$$($(BIN)/python $(VERSION_OF) 2>/dev/null); \
	if [ -e "$(VENV)" ] && [ "$$have" != "$(WANT_VERSION)" ]; then \
	  echo "make: $(VENV) was made by Python $${have:-unknown}, not $(WANT_VERSION): deleting it to make it again"; \
	  rm -rf "$(VENV)"; \
	fi
endef

# Headless rendering for MuJoCo (EGL) and pygame; quiet TensorFlow's C++ start-up logs.
export MUJOCO_GL ?= egl
export SDL_VIDEODRIVER ?= dummy
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup test submit lint figures venv-check

setup: $(STAMP)

venv-check:
	$(CHECK_VENV)

$(STAMP): setup.cfg pyproject.toml
	$(CHECK_VENV)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,sweep]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -n auto --dist loadfile

submit: $(STAMP)
	$(BIN)/python submit.py --agent $(AGENT)

# The README's pictures: early-vs-later GIFs and frame strips of the shipped agents (headless).
figures: $(STAMP)
	for agent in cartpole pendulum; do \
	  $(BIN)/python -m tools.videos --agent $$agent --early weights/early/$$agent \
	    --gif docs/$$agent.gif --strip docs/$${agent}_strip.png || exit 1; \
	done
