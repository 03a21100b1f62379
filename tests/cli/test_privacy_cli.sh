#!/bin/sh
# Command-line tests of `fedhpc privacy` (the RDP accountant), after building bin/fedhpc:
#   sh tests/cli/test_privacy_cli.sh          (FEDHPC_BIN=path overrides bin/fedhpc)
# Reference epsilons are from tests/unit/privacy_reference.py (mpmath, independent of the C code).
# Last line: "privacy_cli: N passed, N failed"; exit status non-zero when any check failed.

. "$(dirname "$0")/lib.sh"
echo "privacy accountant command-line tests"
BIN=${FEDHPC_BIN:-$FEDHPC}

no() { bad "$1"; [ $# -gt 1 ] && echo "       | $2"; return 0; }

# run ARGS...: sets $rc, $out (stdout) and $err (stderr); never MPI (no mpirun needed)
run() {
    "$BIN" privacy "$@" >"$T/out" 2>"$T/err"
    rc=$?
    out=$(cat "$T/out")
    err=$(cat "$T/err")
}

if [ ! -x "$BIN" ]; then
    bad "$BIN is not built"
    finish privacy_cli
    exit 1
fi

# 1. a known epsilon (mpmath reference 5.6319923686818, order 4.7)
run --sample-rate 0.01 --noise 1.1 --steps 10000 --delta 1e-5
case "$rc:$out" in
"0:epsilon = 5.6320 (order 4.7) for q=0.01, sigma=1.1, steps=10000, delta=1e-05") ok "known epsilon" ;;
*) no "known epsilon" "rc=$rc out='$out' err='$err'" ;;
esac

# 2. q = 1 is the plain Gaussian mechanism (reference 2.8136532471298, order 7.9)
run --sample-rate=1 --noise=5 --steps=10 --delta=1e-5
case "$rc:$out" in
"0:epsilon = 2.8137 (order 7.9)"*) ok "q=1 closed form" ;;
*) no "q=1 closed form" "rc=$rc out='$out' err='$err'" ;;
esac

# 3. q = 0 spends nothing
run --sample-rate 0 --noise 1 --steps 10 --delta 1e-5
case "$rc:$out" in
"0:epsilon = 0.0000 (no privacy loss)"*) ok "q=0 no loss" ;;
*) no "q=0 no loss" "rc=$rc out='$out' err='$err'" ;;
esac

# 4. --target-epsilon: mpmath reference sigma 1.66185608934, then the round trip
run --sample-rate 0.01 --steps 10000 --delta 1e-5 --target-epsilon 3
sigma=$(printf '%s\n' "$out" | sed -n 's/^sigma = \([0-9.eE+-]*\) .*/\1/p')
if [ "$rc" = 0 ] && [ -n "$sigma" ] &&
    awk -v s="$sigma" 'BEGIN { exit !(s >= 1.661856 && s <= 1.66187) }'; then
    ok "target epsilon -> sigma $sigma"
else
    no "target epsilon -> sigma" "rc=$rc out='$out' err='$err'"
fi
run --sample-rate 0.01 --noise "${sigma:-1}" --steps 10000 --delta 1e-5
eps=$(printf '%s\n' "$out" | sed -n 's/^epsilon = \([0-9.]*\) .*/\1/p')
if [ "$rc" = 0 ] && [ -n "$eps" ] && awk -v e="$eps" 'BEGIN { exit !(e <= 3.0 && e >= 2.999) }'; then
    ok "round trip: sigma $sigma gives epsilon $eps"
else
    no "round trip" "rc=$rc out='$out' err='$err'"
fi

# 5. --help
run --help
case "$rc:$out" in
"0:usage: fedhpc privacy"*) ok "--help exits 0" ;;
*) no "--help exits 0" "rc=$rc out='$out'" ;;
esac

# 6. bad arguments: exit 2, one line on stderr, nothing on stdout
expect_bad() { # NAME EXPECTED-STDERR ARGS...
    name=$1
    want=$2
    shift 2
    run "$@"
    if [ "$rc" = 2 ] && [ "$err" = "$want" ] && [ -z "$out" ]; then
        ok "$name"
    else
        no "$name" "rc=$rc err='$err' out='$out' (wanted '$want')"
    fi
}
expect_bad "bad --noise" "fedhpc privacy: --noise: expected a positive number, got 'abc'" \
    --sample-rate 0.01 --noise abc --steps 10 --delta 1e-5
expect_bad "bad --sample-rate" "fedhpc privacy: --sample-rate: expected a number in [0, 1], got '1.5'" \
    --sample-rate 1.5 --noise 1 --steps 10 --delta 1e-5
expect_bad "bad --steps" "fedhpc privacy: --steps: expected a positive integer, got '10x'" \
    --sample-rate 0.01 --noise 1 --steps 10x --delta 1e-5
expect_bad "bad --delta" "fedhpc privacy: --delta: expected a number in (0, 1), got '0'" \
    --sample-rate 0.01 --noise 1 --steps 10 --delta 0
expect_bad "missing --delta" "fedhpc privacy: missing --delta (see fedhpc privacy --help)" \
    --sample-rate 0.01 --noise 1 --steps 10
expect_bad "missing value" "fedhpc privacy: --steps: missing value" \
    --sample-rate 0.01 --noise 1 --steps
expect_bad "unknown option" "fedhpc privacy: unknown argument '--bogus' (see fedhpc privacy --help)" \
    --bogus 1
expect_bad "noise and target" "fedhpc privacy: give either --noise or --target-epsilon, not both" \
    --sample-rate 0.01 --noise 1 --steps 10 --delta 1e-5 --target-epsilon 1
run --sample-rate 1 --steps 10 --delta 1e-5 --target-epsilon 0.01
case "$rc:$err" in
"2:fedhpc privacy: target epsilon 0.01 is out of reach"*) ok "unreachable target" ;;
*) no "unreachable target" "rc=$rc err='$err'" ;;
esac

# [privacy] noise_key: a secret that keys the DP noise streams (without it, the noise derives from
# the public [train] seed and anyone holding config.ini can regenerate it)
"$FEDHPC" privacy --new-key "$T/key" >/dev/null 2>&1 && [ "$(stat -c %s:%a "$T/key")" = "32:600" ] &&
    ok "--new-key writes a 32-byte secret, mode 600" || no "--new-key" "$(stat -c %s:%a "$T/key" 2>&1)"
"$FEDHPC" privacy --new-key "$T/key" >/dev/null 2>"$T/err"
[ $? = 2 ] && grep -q "never overwritten" "$T/err" && ok "--new-key never overwrites a key" || no "--new-key overwrite" "$(cat "$T/err")"
FM=data/fmnist_dir05_c100.h5
K="jobs/configs/fmnist_fedavg.ini train.rounds=2 model.hidden=16 privacy.mode=client privacy.noise=1 output.progress=off"
# shellcheck disable=SC2086
$MPIRUN -np 1 "$FEDHPC" run $K privacy.noise_key="$T/key" output.dir="$T/k1" >/dev/null 2>"$T/k1.err"
# shellcheck disable=SC2086
$MPIRUN -np 2 "$FEDHPC" run $K privacy.noise_key="$T/key" output.dir="$T/k2" >/dev/null 2>&1
# shellcheck disable=SC2086
$MPIRUN -np 2 "$FEDHPC" run $K output.dir="$T/k0" >/dev/null 2>"$T/k0.err"
same_model "$T/k1/model.h5" "$T/k2/model.h5" && ok "keyed DP noise: -np 1 and 2 bit-identical" || no "keyed DP noise" "-np 1 vs 2"
differs "$T/k1/model.h5" "$T/k0/model.h5" && ok "keyed DP noise differs from the seed-derived noise" || no "keyed DP noise" "same as unkeyed"
grep -q "noise_key is not set" "$T/k0.err" && ! grep -q "noise_key is not set" "$T/k1.err" &&
    ok "a DP run without a noise key warns that the noise derives from the seed" || no "noise_key warning" "$(cat "$T/k0.err")"
# shellcheck disable=SC2086
$MPIRUN -np 2 "$FEDHPC" run $K privacy.noise_key="$T/nokey" output.dir="$T/kx" >/dev/null 2>"$T/err"
[ $? = 2 ] && [ "$(grep -c "\[privacy\] noise_key '$T/nokey'" "$T/err")" = 1 ] && ok "a missing noise key is bad input (exit 2, once)" ||
    no "missing noise key" "$(head -3 "$T/err")"

finish privacy_cli
