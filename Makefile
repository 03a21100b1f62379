# fedhpc — federated learning on MPI.  `make run` and `make check` do all the set-up.
#
#   make deps     install missing Debian packages (as root; otherwise print the apt-get line)
#   make          build bin/fedhpc and bin/fedhpc_tests
#   make data     prepare the default real data set (Fashion-MNIST, 100 clients, Dirichlet 0.5)
#   make run      deps + build + data + the default experiment on $(NP) ranks
#   make check    deps + build + data + every unit, MPI and command-line test
#   make asan     the unit tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make plot     a PNG learning curve of the last `make run`
#   make bench    the benchmark suite (tests/bench; installs python3-torch for the reference)
#   make clean    remove build outputs

CC       = mpicc
PKGS     = ompi-c hdf5-openmpi openblas cunit inih zlib libsodium scalapack-openmpi
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
# what only the tests need: a real Slurm for tests/cli/test_slurm.sh
TEST_PKGS = munge slurm-wlm

LIB_SRC  = $(wildcard src/common/*.c src/config/*.c src/comm/*.c src/io/*.c src/data/*.c src/model/*.c \
                      src/agg/*.c src/fl/*.c src/privacy/*.c)
CLI_SRC  = $(wildcard src/cli/*.c)
TEST_SRC = $(wildcard tests/unit/*.c)
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ = $(TEST_SRC:%.c=$(BUILD)/%.o)
HEADERS  = $(wildcard include/fedhpc/*.h tests/unit/*.h)

# mpirun as root needs these; more ranks than cores need --oversubscribe.
export OMPI_ALLOW_RUN_AS_ROOT = 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM = 1
export OMPI_MCA_rmaps_base_oversubscribe = 1
export OMPI_MCA_btl_vader_single_copy_mechanism = none
export OPENBLAS_NUM_THREADS ?= 1
MPIRUN  = mpirun --oversubscribe

FMNIST_DIR = data/cache/fashion-mnist
DEFAULT_H5 = data/fmnist_dir05_c100.h5

.PHONY: all deps deps-test build data run check test asan plot clean help
all: $(BIN)/fedhpc $(BIN)/fedhpc_tests $(BIN)/fedhpc_bench

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

test: all
	@FEDHPC_ROOT=$(CURDIR) sh tests/run_all.sh

asan: $(FMNIST_DIR)/train-images-idx3-ubyte.gz
	@$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
	    build-asan/fedhpc_tests
	ASAN_OPTIONS=detect_leaks=0 FEDHPC_ROOT=$(CURDIR) build-asan/fedhpc_tests

build-asan/fedhpc_tests: $(TEST_OBJ) $(BUILD)/libfedhpc.a
	$(CC) $(CFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/libfedhpc.a $(LDLIBS)

plot: bin/fedhpc
	bin/fedhpc plot runs/fmnist_fedavg

clean:
	rm -rf build build-asan bin
