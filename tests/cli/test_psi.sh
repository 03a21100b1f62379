#!/bin/sh
# Command-line tests of `fedhpc psi` (private set intersection, docs/psi.md), after building
# bin/fedhpc:  sh tests/cli/test_psi.sh     (no MPI; well under a second)
# Last line: "psi: N passed, N failed"; exit status non-zero when any check failed.

. "$(dirname "$0")/lib.sh"
echo "private set intersection command-line tests"
BIN=${FEDHPC_BIN:-$FEDHPC}

no() { bad "$1"; [ $# -gt 1 ] && echo "       | $2"; return 0; }

run() {
    "$BIN" psi "$@" >"$T/out" 2>"$T/err"
    rc=$?
    out=$(cat "$T/out")
    err=$(cat "$T/err")
}

if [ ! -x "$BIN" ]; then
    bad "$BIN is not built"
    finish psi
    exit 1
fi

# A: customers 1..500 (id in the 2nd column), B: customers 301..700 in reverse order (1st column)
awk 'BEGIN { print "name,cust_id,score"; for (i = 1; i <= 500; i++) printf "n%d,cust-%05d,%d\n", i, i, i % 7 }' >"$T/A.csv"
awk 'BEGIN { print "cust_id,income"; for (i = 700; i >= 301; i--) printf "cust-%05d,%d\n", i, i * 3 }' >"$T/B.csv"

# 1. the size and the ids of the intersection (301..500, in A's order)
run "$T/A.csv" "$T/B.csv" --id cust_id --list
awk 'BEGIN { print "intersection: 200 ids (A: 500 ids, B: 400 ids)"; for (i = 301; i <= 500; i++) printf "cust-%05d\n", i }' >"$T/want"
[ "$rc" = 0 ] && cmp -s "$T/out" "$T/want" && ok "intersection of 500 and 400 ids: exactly the 200 common ids" ||
    no "intersection" "rc=$rc err='$err' out='$(head -2 "$T/out")'"

# 2. the other direction gives the same set, in B's order
run "$T/B.csv" "$T/A.csv" --id=cust_id --list
awk 'BEGIN { print "intersection: 200 ids (A: 400 ids, B: 500 ids)"; for (i = 500; i >= 301; i--) printf "cust-%05d\n", i }' >"$T/want2"
[ "$rc" = 0 ] && cmp -s "$T/out" "$T/want2" && ok "swapped parties: the same ids in the first file's order" ||
    no "swapped parties" "rc=$rc err='$err'"

# 3. quoted fields, CRLF line ends, disjoint sets
printf 'id,v\r\n"a,1",1\r\n"b""2",2\r\n' >"$T/Q.csv"
printf 'v,id\n3,"b""2"\n4,x\n' >"$T/R.csv"
run "$T/Q.csv" "$T/R.csv" --id id --list
[ "$rc" = 0 ] && [ "$out" = 'intersection: 1 ids (A: 2 ids, B: 2 ids)
b"2' ] && ok "quoted fields and CRLF" || no "quoted fields" "rc=$rc out='$out' err='$err'"
run "$T/Q.csv" "$T/A.csv" --id=id
[ "$rc" = 2 ] && ok "a file without the id column: exit 2" || no "missing column" "rc=$rc"
printf 'id\nzz\n' >"$T/Z.csv"
run "$T/Q.csv" "$T/Z.csv" --id id
[ "$rc" = 0 ] && [ "$out" = "intersection: 0 ids (A: 2 ids, B: 1 ids)" ] && ok "disjoint sets: 0" || no "disjoint" "rc=$rc out='$out'"

# 4. bad input: exit 2 with one line naming what is wrong
expect2() { # NAME PATTERN ARGS...
    name=$1 pat=$2
    shift 2
    run "$@"
    [ "$rc" = 2 ] && printf '%s' "$err" | grep -q -- "$pat" && ok "$name: exit 2" || no "$name" "rc=$rc err='$err'"
}
expect2 "unknown column" "no column 'nope'" "$T/A.csv" "$T/B.csv" --id nope
expect2 "missing file" "missing.csv" "$T/A.csv" "$T/missing.csv" --id cust_id
expect2 "one file" "expected two CSV files" "$T/A.csv" --id cust_id
expect2 "no --id" "--id COLUMN is required" "$T/A.csv" "$T/B.csv"
expect2 "unknown option" "unknown option '--bogus'" "$T/A.csv" "$T/B.csv" --id cust_id --bogus
printf 'cust_id\nc1\nc2\nc1\n' >"$T/D.csv"
expect2 "duplicate id" "party B: psi: duplicate id 'c1' at positions 0 and 2" "$T/A.csv" "$T/D.csv" --id cust_id
printf 'cust_id,x\nc1,1\n,2\n' >"$T/E.csv"
expect2 "empty id" "E.csv:3: empty id" "$T/E.csv" "$T/A.csv" --id cust_id
printf 'cust_id\n"c1\n' >"$T/U.csv"
expect2 "unterminated quote" "U.csv:2: unterminated" "$T/U.csv" "$T/A.csv" --id cust_id
run --help
[ "$rc" = 0 ] && printf '%s' "$out" | grep -q "usage: fedhpc psi" && ok "--help: exit 0" || no "--help" "rc=$rc"

finish psi
