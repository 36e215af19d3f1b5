# Two commands do all set-up on a fresh clone (each builds .venv with Python 3.12 if missing):
#   make submit AGENT=pendulum   # validate + bundle the shipped weights (the main job)
#   make test                    # lint + the test suite (what CI runs)
PYTHON ?= python3.12
VENV ?= .venv
BIN := $(VENV)/bin
AGENT ?= pendulum
STAMP := $(VENV)/.installed

# Headless rendering for MuJoCo (EGL) and pygame; quiet TensorFlow's C++ start-up logs.
export MUJOCO_GL ?= egl
export SDL_VIDEODRIVER ?= dummy
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup test submit lint figures

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,sweep]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest

submit: $(STAMP)
	$(BIN)/python submit.py --agent $(AGENT)

# The README's pictures: early-vs-later GIFs and frame strips of the shipped agents (headless).
figures: $(STAMP)
	for agent in cartpole pendulum; do \
	  $(BIN)/python -m tools.videos --agent $$agent --early weights/early/$$agent \
	    --gif docs/$$agent.gif --strip docs/$${agent}_strip.png || exit 1; \
	done
