#!/bin/sh
# Every test of fedhpc: the CUnit suites under mpirun -np 1, 2 and 4, the command-line and MPI
# integration tests in tests/cli/test_*.sh, then the fuzzing smoke (`make fuzz`) and the
# sanitizer run (`make asan`). Exits non-zero if anything failed; the last line is
# "all tests: N passed, N failed" (counting suites/scripts).
cd "${FEDHPC_ROOT:-.}" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export FEDHPC_ROOT="$(pwd)"
pass=0
fail=0
failed=""
run() {
    name=$1; shift
    echo "=== $name"
    start=$(date +%s)
    if "$@"; then pass=$((pass + 1)); s=ok; else fail=$((fail + 1)); failed="$failed $name"; s=FAILED; fi
    echo "=== $name: $s ($(( $(date +%s) - start ))s)"
}
# FEDHPC_UNIT=0: only the shell tests (`make asan` runs them against its ASan build)
unit=${FEDHPC_UNIT:-1}
if [ "$unit" != 0 ]; then
    for np in 1 2 4; do
        run "unit tests -np $np" mpirun --oversubscribe -np $np bin/fedhpc_tests
    done
    # the portable paths the AVX-512 kernels replace (CPUs without AVX-512, FEDHPC_KERNELS=blas)
    run "model unit tests, FEDHPC_KERNELS=blas" env FEDHPC_KERNELS=blas bin/fedhpc_tests model
    run "cnn unit tests, FEDHPC_KERNELS=blas" env FEDHPC_KERNELS=blas bin/fedhpc_tests cnn
fi
# FEDHPC_TESTS: a regular expression; only the matching shell tests (and fuzz / asan steps) run
want() { [ -z "${FEDHPC_TESTS:-}" ] || echo "$1" | grep -q -E "$FEDHPC_TESTS"; }
for t in tests/cli/test_*.sh; do
    want "$t" || continue
    run "$(basename "$t" .sh)" sh "$t"
done
# Fuzzing smoke and sanitizers (docs/fuzzing.md): every libFuzzer harness for
# FEDHPC_FUZZ_SECONDS (20) seconds, then `make asan`. FEDHPC_FUZZ=0 / FEDHPC_ASAN=0 skip them.
if [ "$unit" != 0 ]; then
    if [ "${FEDHPC_FUZZ:-1}" != 0 ] && want fuzz; then
        run "fuzz smoke" ${MAKE:-make} --no-print-directory -j2 fuzz FUZZ_SECONDS="${FEDHPC_FUZZ_SECONDS:-20}"
    fi
    if [ "${FEDHPC_ASAN:-1}" != 0 ] && want asan; then
        run "asan" ${MAKE:-make} --no-print-directory -j2 asan
    fi
fi
[ -n "$failed" ] && echo "failed:$failed"
echo "all tests: $pass passed, $fail failed"
[ "$fail" = 0 ]
