# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tests and CI read data files (tinyshakespeare.txt) from ../shared/data when it is there.
SHARED_DATA := $(abspath ../shared/data)
export GENLAB_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),$(HOME)/.cache/genlab)

.PHONY: install demo test test-stress lint format bench bench-gan bench-flows bench-autoregressive bench-text bench-serve clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The main job on built-in data: train the default VAE on mnist-5k (offline, 1500 steps, about
# 5 minutes on 2 cores), then write eval.json (test NLL), a sample grid, reconstructions,
# interpolations and the latent plot. `make bench` trains the full recipe (the 88-nat target).
demo: $(STAMP)
	rm -rf runs/demo-vae
	$(BIN)/genlab train vae --data mnist-5k --steps 1500 --out runs/demo-vae
	$(BIN)/genlab evaluate runs/demo-vae
	$(BIN)/genlab sample runs/demo-vae --n 64 --out runs/demo-vae/grid.png
	@echo "demo done: see runs/demo-vae (eval.json, grid.png, figures/)"

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The suite three times, to find tests that pass only on a quiet machine: pinned to one core,
# beside a busy loop on every core, and in a random order (about three `make test`s). Prints
# the failed tests with the passes they failed in; results in runs/stress-<time>/. Extra
# arguments: make test-stress STRESS_ARGS="--passes random --seed 7 -- tests/text -x"
test-stress: $(STAMP)
	$(BIN)/python scripts/test_stress.py $(STRESS_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

format: $(STAMP)
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

bench: $(STAMP)
	$(BIN)/python bench/vae_mnist5k.py

# The GAN tables of docs/benchmarks.md: every variant on mnist-5k (about an hour on 2 cores),
# then mode coverage on the 8-Gaussians toy with and without the stability tools.
bench-gan: $(STAMP)
	$(BIN)/python bench/gan_mnist5k.py
	$(BIN)/python bench/gan_toy.py

# The flow tables of docs/benchmarks.md: Glow and RealNVP on mnist-5k side by side, one thread
# each, 28 minutes of training each (about 30 minutes), then the 2-D densities (a few minutes).
bench-flows: $(STAMP)
	$(BIN)/python bench/likelihood_mnist5k.py --model glow --threads 1 --minutes 28 \
		--figures docs/figures/flows/glow --out bench/results/mnist5k_glow.json & \
	$(BIN)/python bench/likelihood_mnist5k.py --model realnvp --threads 1 --minutes 28 \
		-t batch_size=16 lr=2e-3 warmup_steps=200 --figures docs/figures/flows/realnvp \
		--out bench/results/mnist5k_realnvp.json; wait
	$(BIN)/python bench/flows_toy2d.py --threads 1 --figures docs/figures/flows

# The autoregressive tables of docs/benchmarks.md: Gated PixelCNN on binarized mnist-5k with
# both cores (its default 4,800 steps, about 27 minutes), then PixelCNN and the Row LSTM side by
# side on one core each for 10 minutes, then the Diagonal BiLSTM for 8 minutes beside the
# naive-against-fast sampling benchmark (about 40 minutes in all).
bench-autoregressive: $(STAMP)
	$(BIN)/python bench/likelihood_mnist5k.py --model gated-pixelcnn --threads 2 -o binarize=true \
		--figures docs/figures/autoregressive/gated-pixelcnn \
		--out bench/results/mnist5k_gated-pixelcnn.json
	$(BIN)/python bench/likelihood_mnist5k.py --model pixelcnn --threads 1 --minutes 10 \
		-o binarize=true --figures docs/figures/autoregressive/pixelcnn \
		--out bench/results/mnist5k_pixelcnn.json & \
	$(BIN)/python bench/likelihood_mnist5k.py --model pixelrnn-row --threads 1 --minutes 10 \
		-o binarize=true --figures docs/figures/autoregressive/pixelrnn-row \
		--out bench/results/mnist5k_pixelrnn-row.json; wait
	$(BIN)/python bench/likelihood_mnist5k.py --model pixelrnn-diag --threads 1 --minutes 8 \
		-o binarize=true --out bench/results/mnist5k_pixelrnn-diag.json & \
	$(BIN)/python bench/autoregressive_sampling.py --binarize --n 8 --threads 1; wait

# The text tables of docs/benchmarks.md: the default char GPT and LSTM on tinyshakespeare
# against nanoGPT's CPU run (about 6 minutes), then generation with and without the KV cache.
bench-text: $(STAMP)
	$(BIN)/python bench/text_shakespeare.py
	$(BIN)/python bench/text_generation.py

# The serving table of docs/benchmarks.md: a live server under 32 and 64 concurrent clients,
# with and without micro-batching (about 4 minutes).
bench-serve: $(STAMP)
	$(BIN)/python bench/serve_load.py

clean:
	rm -rf runs .pytest_cache
