# The two commands of a fresh Debian 12 machine:
#   make demo   install what is missing, build, stream into an arena, kill, verify
#   make test   install what is missing, build, run every test
BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?=

.PHONY: all deps build demo test test-sanitize bench install clean

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	$(BUILD)/examples/demo/pktstore-demo

test: build
	cd $(BUILD) && ctest --output-on-failure --timeout 600

# The whole suite again under AddressSanitizer and UndefinedBehaviorSanitizer.
test-sanitize: deps
	$(MAKE) test BUILD=build-asan CMAKE_FLAGS="-DPKTSTORE_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug"

bench: build
	@./scripts/install-deps.sh --bench
	./bench/run.sh

clean:
	rm -rf $(BUILD) build-asan
