# Environment and tests for twostep-asteroid.
# torch/torchaudio are pinned as a matched pair: asteroid 0.7 imports torch_stoi, which imports
# torchaudio, and a torchaudio wheel only loads beside the torch release it was built for.
# setuptools<81 keeps pkg_resources, which torchmetrics 0.11.4 (pinned by asteroid) imports.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
TORCH_PAIR := torch==2.9.1 torchaudio==2.9.1
PYTEST_ARGS ?=

# The Debian packages of the embedded corpus (asterisk voice prompts, Fish Fillets NG's Czech and Dutch voices,
# KDE's KLettres and KTuberling spoken words,
# codec2's speech samples), downloaded, never installed. The same list as PACKAGES in
# twostep_asteroid/data/voices.py.
DEB_CACHE ?= $(HOME)/.cache/twostep-asteroid/debs
PROMPT_DEBS := asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav \
	asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav asterisk-prompt-it-menardi-wav \
	asterisk-prompt-fr-armelle asterisk-prompt-es-co fillets-ng-data-cs fillets-ng-data-nl codec2-examples \
	klettres-data ktuberling-data

.PHONY: env test test-all clean-env debs browser sox

env: $(STAMP)

$(STAMP): setup.py
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade "pip<26" "setuptools<81" wheel
	$(VENV)/bin/pip install -q $(TORCH_PAIR)
	$(VENV)/bin/pip install -q -e ".[test,export]" "setuptools<81" $(TORCH_PAIR)
	touch $(STAMP)

# The default suite (a few minutes on 2 cores).
test: env
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS) tests

# Also the slow end-to-end tests (marked `slow`), as CI runs them.
test-all: env
	$(VENV)/bin/python -m pytest -q --runslow $(PYTEST_ARGS) tests

debs:
	mkdir -p $(DEB_CACHE)
	cd $(DEB_CACHE) && for p in $(PROMPT_DEBS); do ls $${p}_*.deb >/dev/null 2>&1 || \
	  apt-get download $$p || { apt-get update -qq && apt-get download $$p; }; done

# Headless Chromium for the report tests (tests/test_report.py): Debian's chromium and its driver.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

clean-env:
	rm -rf $(VENV)

# sox, for the README's streaming pipeline (tests/e2e/test_readme_commands.py runs it).
sox:
	command -v sox >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sox; }
