# The two commands of a fresh Debian 12 machine:
#   make demo   install what is missing, build, stream into an arena, kill, verify
#   make test   install what is missing, build, run every test
BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?=

.PHONY: all deps build demo test test-sanitize test-tsan bench clean

# cmake --build runs make below this one: no "Entering directory" lines.
MAKEFLAGS += --no-print-directory

all: build

deps:
	@./scripts/install-deps.sh

# Building installs nothing: the targets that run things install what is
# missing first (deps), so a machine without root can still build.
build:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The library's crash demo, then the same story told by pktstore-kv. The
# build is quiet (one line; its log is shown only if it fails) so that what
# is printed is the demo's own story.
DEMO_TARGETS = pktstore-demo pktstore-cli pktstore-kv kv_load
demo: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@echo "building $(DEMO_TARGETS) in $(BUILD)/"
	@cmake --build $(BUILD) -j $(JOBS) --target $(DEMO_TARGETS) >$(BUILD)/demo-build.log 2>&1 || \
		{ cat $(BUILD)/demo-build.log; echo "make demo: the build failed (log above, also in $(BUILD)/demo-build.log)"; exit 1; }
	@echo
	@$(BUILD)/examples/demo/pktstore-demo
	@echo
	@./examples/kv/demo.sh $(BUILD)/examples/kv/pktstore-kv $(BUILD)/examples/kv/kv_load

test: deps build
	cd $(BUILD) && ctest --output-on-failure --timeout 600

# The suite in Debian 12's own kernels on an emulated NVDIMM (DAX), under QEMU.
test-vm:
	BUILD=$(BUILD) ./scripts/test-vm.sh

# The whole suite again under AddressSanitizer and UndefinedBehaviorSanitizer
# (fewer power-loss points: each costs more under ASan), and under
# ThreadSanitizer.
test-sanitize: deps
	PKTSTORE_POWERFAIL_POINTS=300 $(MAKE) test BUILD=build-asan \
		CMAKE_FLAGS="-DPKTSTORE_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug"

# ThreadSanitizer cannot run Criterion 2.4 binaries (its fixed-address
# arena collides with TSan's shadow memory), so this runs what has threads
# and no Criterion: the demo's client threads and the kv end-to-end tests.
# The kill -9 campaign is left to the other two runs: its 10 s limit per
# request is a timing bound, and a server slowed tenfold by TSan on a file
# arena misses it.
test-tsan: deps
	cmake -S . -B build-tsan -DPKTSTORE_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build build-tsan -j $(JOBS)
	rm -f /dev/shm/pktstore-tsan.arena
	build-tsan/examples/demo/pktstore-demo --arena /dev/shm/pktstore-tsan.arena --size 67108864
	rm -f /dev/shm/pktstore-tsan.arena
	cd build-tsan && ctest --output-on-failure -R 'kv.e2e|cli|distinct-stores' -E 'kv.e2e.campaign'

bench: deps build
	@./scripts/install-deps.sh --bench
	./bench/run.sh

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz build-abi
