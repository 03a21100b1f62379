#!/bin/sh
# Every test of fedhpc: the CUnit suites under mpirun -np 1, 2 and 4, then the command-line and
# MPI integration tests in tests/cli/test_*.sh. Exits non-zero if anything failed; the last
# line is "all tests: N passed, N failed" (counting suites/scripts).
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
for np in 1 2 4; do
    run "unit tests -np $np" mpirun --oversubscribe -np $np bin/fedhpc_tests
done
# the portable paths the AVX-512 kernels replace (CPUs without AVX-512, FEDHPC_KERNELS=blas)
run "model unit tests, FEDHPC_KERNELS=blas" env FEDHPC_KERNELS=blas bin/fedhpc_tests model
run "cnn unit tests, FEDHPC_KERNELS=blas" env FEDHPC_KERNELS=blas bin/fedhpc_tests cnn
for t in tests/cli/test_*.sh; do
    [ -n "${FEDHPC_TESTS:-}" ] && ! echo "$t" | grep -q -E "$FEDHPC_TESTS" && continue
    run "$(basename "$t" .sh)" sh "$t"
done
[ -n "$failed" ] && echo "failed:$failed"
echo "all tests: $pass passed, $fail failed"
[ "$fail" = 0 ]
