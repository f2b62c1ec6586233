# Two entry points for a fresh Debian bookworm machine:
#   make demo   install what is missing, build (Release), run the live quickstart campaign (~10 min)
#   make test   install what is missing, build (Release), run the test suite through ctest
# Other targets: build, test-slow (the tests labelled slow), test-cuda (those that need a GPU),
# bench, deps, clean. TORCH_DIR=DIR builds against the libtorch whose TorchConfig.cmake is in DIR
# instead of Debian's CPU one (README, "Training on GPUs"); give it a BUILD_DIR of its own.

BUILD_DIR ?= build
JOBS ?= $(shell nproc)
DEBIAN_PACKAGES := build-essential cmake ninja-build ccache pkg-config \
  libcaf-dev capnproto libcapnp-dev liblmdb-dev lmdb-utils libfaiss-dev libspdlog-dev \
  catch2 libcli11-dev libtomlplusplus-dev libmimalloc-dev libssl-dev libcurl4-openssl-dev nlohmann-json3-dev libbenchmark-dev \
  libtorch-dev libdnnl-dev libopenblas0-openmp zlib1g-dev dict-gcide gnuplot-nox graphviz chromium clang libclang-rt-14-dev python3-torch
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TORCH_DIR ?=
CMAKE_TORCH := $(if $(TORCH_DIR),-DTorch_DIR=$(TORCH_DIR))

.PHONY: demo test test-slow test-cuda build deps bench clean

demo: build
	rm -rf runs/quickstart
	$(BUILD_DIR)/tools/asiarch run scenarios/quickstart.toml --out runs/quickstart
	$(BUILD_DIR)/tools/asiarch replay runs/quickstart

test: build
	cd $(BUILD_DIR) && ctest -L default --output-on-failure -j $(JOBS)

test-slow: build
	cd $(BUILD_DIR) && ctest -L slow --output-on-failure

test-cuda: build
	cd $(BUILD_DIR) && ctest -L cuda --output-on-failure

bench: build
	$(BUILD_DIR)/tools/asiarch bench sim
	$(BUILD_DIR)/tools/asiarch bench cli
	$(BUILD_DIR)/tools/asiarch bench kernels
	$(BUILD_DIR)/tools/asiarch bench train
	LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2 /usr/bin/python3 bench/peer_train.py --asiarch $(BUILD_DIR)/tools/asiarch
	$(BUILD_DIR)/bench/asiarch_bench

# Installs only the packages that are missing, so a prepared machine makes no apt calls.
deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(BUILD_DIR)/build.ninja: | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_TORCH)

# A TORCH_DIR given to a configured build directory reconfigures it.
build: deps $(BUILD_DIR)/build.ninja
	$(if $(TORCH_DIR),cmake -S . -B $(BUILD_DIR) $(CMAKE_TORCH))
	cmake --build $(BUILD_DIR) -j $(JOBS)

clean:
	rm -rf $(BUILD_DIR)
