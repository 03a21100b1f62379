#!/bin/sh
# The ScaLAPACK similarity step at full size (not in CI): 1,000 clients x 200,000 parameters on
# 4 ranks, with per-rank peak memory.
#   BUILD=/tmp/build-NAME sh tests/bench/run_similarity.sh [NP] [CLIENTS] [PARAMS]
set -e
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
NP=${1:-4}
PKGS="ompi-c hdf5-openmpi openblas cunit inih zlib libsodium scalapack-openmpi"
make --no-print-directory BUILD="$BUILD" BIN="$BUILD/bin" "$BUILD/libfedhpc.a" >/dev/null
mpicc -O2 -std=c11 -Iinclude $(pkg-config --cflags $PKGS) tests/bench/similarity_bench.c "$BUILD/libfedhpc.a" \
    $(pkg-config --libs $PKGS) -lm -o "$BUILD/similarity_bench"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
mpirun --oversubscribe -np "$NP" "$BUILD/similarity_bench" "${2:-1000}" "${3:-200000}"
