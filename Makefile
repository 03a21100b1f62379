# fedhpc — federated learning on MPI.  `make run` and `make check` do all the set-up.
#
#   make deps     install missing Debian packages (as root; otherwise print the apt-get line)
#   make          build bin/fedhpc and bin/fedhpc_tests
#   make data     prepare the default real data set (Fashion-MNIST, 100 clients, Dirichlet 0.5)
#   make run      deps + build + data + the default experiment on $(NP) ranks
#   make check    deps + build + data + every unit, MPI and command-line test
#   make asan     unit tests, fuzz regression inputs and the affordable shell tests under ASan + UBSan
#   make fuzz     build the libFuzzer harnesses (clang) and run each for FUZZ_SECONDS (docs/fuzzing.md)
#   make plot     a PNG learning curve of the last `make run`
#   make bench    the benchmark suite (tests/bench; installs python3-torch for the reference)
#   make clean    remove build outputs

CC       = mpicc
PKGS     = ompi-c hdf5-openmpi openblas cunit inih zlib libsodium scalapack-openmpi gmp
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -Wall -Wextra -Werror -fno-strict-aliasing
CPPFLAGS = -Iinclude $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# oneDNN (the CNN's convolutions) has no pkg-config file; it threads with OpenMP (libgomp)
LDLIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -ldnnl -lgomp -lm
BUILD   ?= build
BIN     ?= bin
NP      ?= 4

DEB_PKGS = build-essential pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev \
           libopenblas-dev libscalapack-openmpi-dev libcunit1-dev libinih-dev zlib1g-dev \
           libsodium-dev libgmp-dev gnuplot-nox hdf5-tools libdnnl-dev
# what only the tests need: a real Slurm for tests/cli/test_slurm.sh; clang and its libFuzzer
# runtime for `make fuzz` (tests/fuzz, run by tests/run_all.sh); strace for test_parties.sh (which
# process opens which party's data file); libomp-dev: clang's OpenMP for src/he in the fuzz build
TEST_PKGS = munge slurm-wlm clang libclang-rt-14-dev libomp-dev strace

LIB_SRC  = $(wildcard src/common/*.c src/config/*.c src/comm/*.c src/io/*.c src/data/*.c src/model/*.c \
                      src/agg/*.c src/fl/*.c src/privacy/*.c src/he/*.c \
                      src/attack/*.c src/vfl/*.c)
CLI_SRC  = $(wildcard src/cli/*.c)
TEST_SRC = $(wildcard tests/unit/*.c)
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ = $(TEST_SRC:%.c=$(BUILD)/%.o)
# every object depends on every header (include/ and the rooms' private src/*/*.h): a header change rebuilds all
HEADERS  = $(wildcard include/fedhpc/*.h src/*/*.h tests/unit/*.h)
# libFuzzer harnesses tests/fuzz/fuzz_NAME.c (make fuzz) and their plain replays (make test)
FUZZ_HARNESSES = csv config data_io ckpt secagg compress
REPLAY_BINS = $(FUZZ_HARNESSES:%=$(BUILD)/fuzz_replay_%)

# mpirun as root needs these; more ranks than cores need --oversubscribe.
export OMPI_ALLOW_RUN_AS_ROOT = 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM = 1
export OMPI_MCA_rmaps_base_oversubscribe = 1
export OMPI_MCA_btl_vader_single_copy_mechanism = none
export OPENBLAS_NUM_THREADS ?= 1
MPIRUN  = mpirun --oversubscribe

FMNIST_DIR = data/cache/fashion-mnist
DEFAULT_H5 = data/fmnist_dir05_c100.h5

.PHONY: all deps deps-test build data run check test asan fuzz fuzz-build plot clean help
all: $(BIN)/fedhpc $(BIN)/fedhpc_tests $(BIN)/fedhpc_bench $(BIN)/fedhpc_he_bench

help:
	@sed -n '2,12p' Makefile

deps:
	@sh tests/cli/deps.sh $(DEB_PKGS)

deps-test: deps
	@sh tests/cli/deps.sh $(TEST_PKGS)

build:
	@$(MAKE) --no-print-directory all

$(BUILD)/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# Paillier (src/he): encryption and decryption in parallel over ciphertexts with OpenMP (a rule
# of its own, so that a CFLAGS given on the command line, as make asan/fuzz do, keeps -fopenmp)
HE_CFLAGS = -fopenmp
$(BUILD)/src/he/%.o: src/he/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(HE_CFLAGS) -c $< -o $@

$(BUILD)/libfedhpc.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/fedhpc: $(CLI_OBJ) $(BUILD)/libfedhpc.a
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libfedhpc.a $(LDLIBS)

$(BIN)/fedhpc_tests: $(TEST_OBJ) $(BUILD)/libfedhpc.a
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/libfedhpc.a $(LDLIBS)

# The benchmark suite (issue 5): tests/bench/run_bench.sh writes runs/bench/results-*.csv/.md.
# `make bench` installs Debian's python3-torch + python3-mpi4py (as root) for the reference.
BENCH_PKGS = python3-torch python3-mpi4py python3-numpy time
.PHONY: bench bench-smoke
$(BIN)/fedhpc_bench: tests/bench/bench.c $(BUILD)/libfedhpc.a $(HEADERS)
	@mkdir -p $(BIN)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ tests/bench/bench.c $(BUILD)/libfedhpc.a $(LDLIBS)

# Paillier aggregation costs (docs/he.md, jobs/he/cost.sh)
$(BIN)/fedhpc_he_bench: tests/bench/he_bench.c $(BUILD)/libfedhpc.a $(HEADERS)
	@mkdir -p $(BIN)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ tests/bench/he_bench.c $(BUILD)/libfedhpc.a $(LDLIBS)

bench: deps
	@sh tests/cli/deps.sh $(BENCH_PKGS)
	@$(MAKE) --no-print-directory data
	FEDHPC_ROOT=$(CURDIR) FEDHPC_BIN=$(CURDIR)/$(BIN)/fedhpc sh tests/bench/run_bench.sh

bench-smoke: all
	FEDHPC_ROOT=$(CURDIR) FEDHPC_BIN=$(CURDIR)/$(BIN)/fedhpc sh tests/cli/test_bench_smoke.sh

# Fashion-MNIST from Debian's dataset-fashion-mnist, unpacked without root.
$(FMNIST_DIR)/train-images-idx3-ubyte.gz:
	@sh tests/cli/fetch_fmnist.sh $(FMNIST_DIR)

$(DEFAULT_H5): $(FMNIST_DIR)/train-images-idx3-ubyte.gz | bin/fedhpc
	bin/fedhpc prepare fmnist --cache $(FMNIST_DIR) --clients 100 --partition dirichlet \
	    --alpha 0.5 --seed 1 --out $@

data: build
	@$(MAKE) --no-print-directory $(DEFAULT_H5)

run: deps
	@$(MAKE) --no-print-directory data
	$(MPIRUN) -np $(NP) bin/fedhpc run jobs/configs/fmnist_fedavg.ini

check: deps-test
	@$(MAKE) --no-print-directory data
	@$(MAKE) --no-print-directory test

test: all $(REPLAY_BINS)
	@FEDHPC_ROOT=$(CURDIR) FEDHPC_REPLAY_DIR=$(CURDIR)/$(BUILD) sh tests/run_all.sh

# ---- fuzz regression replays (tests/cli/test_corpus.sh): each libFuzzer harness compiled with
# the normal compiler and a plain main that runs it over files (tests/fuzz/replay_main.c)
$(BUILD)/fuzz_replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c tests/fuzz/fuzz_common.h $(BUILD)/libfedhpc.a $(HEADERS)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< tests/fuzz/replay_main.c $(BUILD)/libfedhpc.a $(LDLIBS)

# ---- sanitizers: everything in build-asan with gcc's ASan + UBSan (no recovery: the first
# report fails the run). ASAN_SHELL_TESTS picks the shell tests run against the ASan fedhpc (a
# regular expression over tests/cli/test_*.sh): the default fits CI's ~5 minutes; ckpt, cluster,
# jobs and async also pass under ASan (2-4 min each, docs/fuzzing.md), privacy_run fails only its
# ChaCha20 throughput ratio (ASan slows the mask code), Slurm/accuracy/bench are not meant for it.
ASAN_CFLAGS = -O1 -g -std=c11 -Wall -Wextra -Werror -fno-strict-aliasing -fno-omit-frame-pointer \
              -fsanitize=address,undefined -fno-sanitize-recover=all
ASAN_ENV    = ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ASAN_SHELL_TESTS ?= bad_input|privacy_cli|corpus|engine
asan: $(FMNIST_DIR)/train-images-idx3-ubyte.gz
	@$(MAKE) --no-print-directory BUILD=build-asan BIN=build-asan CFLAGS="$(ASAN_CFLAGS)" \
	    build-asan/fedhpc build-asan/fedhpc_tests $(FUZZ_HARNESSES:%=build-asan/fuzz_replay_%)
	$(ASAN_ENV) FEDHPC_ROOT=$(CURDIR) build-asan/fedhpc_tests
	@$(ASAN_ENV) FEDHPC_ROOT=$(CURDIR) FEDHPC_BIN=$(CURDIR)/build-asan/fedhpc FEDHPC_REPLAY_DIR=$(CURDIR)/build-asan \
	    FEDHPC_UNIT=0 FEDHPC_TESTS='$(ASAN_SHELL_TESTS)' sh tests/run_all.sh

# ---- fuzzing (docs/fuzzing.md): libFuzzer harnesses tests/fuzz/fuzz_*.c, built with clang in
# build-fuzz (the library without src/fl and src/cli, instrumented with -fsanitize=fuzzer-no-link
# plus ASan + UBSan; MPI's compile and link flags as `mpicc -showme` gives them). `make fuzz` runs
# each harness for FUZZ_SECONDS on its seeds (tests/fuzz/corpus/NAME), its regression inputs
# (tests/corpus/NAME) and the corpus grown by earlier runs (build-fuzz/corpus/NAME).
FUZZ_CC      = clang
FUZZ_BUILD   = build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  = -O1 -g -std=c11 -Wall -Wextra -Werror -Wno-unknown-attributes -fno-strict-aliasing \
               -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_LIB_SRC = $(filter-out src/fl/%,$(LIB_SRC))
FUZZ_BINS    = $(FUZZ_HARNESSES:%=$(FUZZ_BUILD)/fuzz_%)
fuzz: fuzz-build
	@sh tests/fuzz/run_fuzz.sh $(FUZZ_SECONDS) $(FUZZ_HARNESSES)

fuzz-build:
	@command -v $(FUZZ_CC) >/dev/null || { echo "make fuzz needs clang: make deps-test (or apt-get install clang libclang-rt-14-dev)"; exit 1; }
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) \
	    CFLAGS="$(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(shell mpicc -showme:compile 2>/dev/null)" $(FUZZ_BINS)

$(FUZZ_BUILD)/libfedhpc-fuzz.a: $(FUZZ_LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(FUZZ_BUILD)/libfedhpc-fuzz.a $(HEADERS)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libfedhpc-fuzz.a $(LDLIBS) \
	    $(shell mpicc -showme:link 2>/dev/null)

plot: bin/fedhpc
	bin/fedhpc plot runs/fmnist_fedavg

clean:
	rm -rf build build-asan build-fuzz bin
