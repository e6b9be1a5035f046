# Two commands set everything up on a fresh machine:
#   make test   create .venv, install the workspace and ROS 2 Jazzy (PyPI wheels), lint, run the whole suite
#   make demo   create .venv, install the workspace, run the simulated fleet learning loop
# A second run does no reinstall work unless requirements.txt or a setup.py changed.

VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.lwd-installed
ROS_STAMP := $(VENV)/.lwd-ros-installed
ROS_INPUTS := ros/install.sh ros/jazzy.lock src/lwd_msgs/CMakeLists.txt src/lwd_msgs/package.xml \
              $(wildcard src/lwd_msgs/msg/*.msg src/lwd_msgs/srv/*.srv)
PACKAGES := src/lwd_msgs src/lwd_fleet src/lwd_policy src/lwd_intervention src/lwd_logger src/lwd_learner src/lwd_sim src/lwd_experiment src/lwd
INPUTS   := requirements.txt $(foreach p,$(PACKAGES),$(p)/setup.py)
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: install ros test lint format demo clean

install: $(STAMP)

$(BIN)/python:
	python3 -m venv $(VENV)

$(STAMP): $(INPUTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation $(foreach p,$(PACKAGES),-e $(p))
	touch $@

# ROS 2 Jazzy from hash-locked PyPI wheels, and lwd_msgs built with the real rosidl generators:
# the live node-graph tests need them; the demo does not.
ros: $(ROS_STAMP)

$(ROS_STAMP): $(ROS_INPUTS) $(STAMP)
	ros/install.sh $(VENV)
	touch $@

test: $(STAMP) $(ROS_STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: $(STAMP)
	$(BIN)/lwd demo $(DEMO_ARGS)

clean:
	rm -rf $(VENV) build install log
