# Bad input: one clear message naming the file/key, exit status 2 on every rank, no MPI abort
# trace, and no output directory left behind.
. "$(dirname "$0")/lib.sh"
echo "bad input tests"
"$FEDHPC" prepare lending_club --clients 2 --partition iid --seed 1 --out "$T/lc2.h5" >/dev/null || bad "prepare lc2"
cat > "$T/good.ini" <<INI
[data]
file = $T/lc2.h5
[model]
type = logreg
[train]
rounds = 1
[output]
dir = $T/rundir
INI
np2="$MPIRUN -np 2 $FEDHPC"

sed 's/^rounds = 1/rounds = 1\nbogus = 3/' "$T/good.ini" > "$T/unknown_key.ini"
expect_input_error "unknown config key" "unknown_key.ini:7: unknown key 'bogus' in [train]" $np2 run "$T/unknown_key.ini"
printf '[nosuch]\nx = 1\n' > "$T/unknown_section.ini"
expect_input_error "unknown config section" "unknown section [nosuch]" $np2 run "$T/unknown_section.ini"
expect_input_error "wrong value type (file)" "[train] rounds: expected an integer" $np2 run "$T/good.ini" train.rounds=abc
expect_input_error "value out of range" "[train] lr: expected a number in" $np2 run "$T/good.ini" train.lr=-1
expect_input_error "bad choice" "[fl] algorithm: expected one of fedavg|fedprox" $np2 run "$T/good.ini" fl.algorithm=sgd
expect_input_error "malformed override" "override 'rounds': expected section.key=value" $np2 run "$T/good.ini" rounds
expect_input_error "missing config file" "nope.ini: cannot read the configuration file" $np2 run "$T/nope.ini"
expect_input_error "missing data file" "[data] file '$T/missing.h5': No such file or directory (expected a file to read)" $np2 run "$T/good.ini" data.file="$T/missing.h5"
echo "not hdf5" > "$T/text.h5"
expect_input_error "not an HDF5 file" "text.h5: not a readable HDF5 file" $np2 run "$T/good.ini" data.file="$T/text.h5"
head -c 4000 "$T/lc2.h5" > "$T/trunc.h5"
expect_input_error "truncated HDF5 file" "trunc.h5: " $np2 run "$T/good.ini" data.file="$T/trunc.h5"
# a model file is HDF5 but of the wrong layout for data
$MPIRUN -np 1 "$FEDHPC" run "$T/good.ini" output.dir="$T/m" >/dev/null 2>&1 || bad "make a model file"
expect_input_error "HDF5 file of the wrong layout" "expected a fedhpc data file (format 'fedhpc-data'), found format 'fedhpc-model'" \
    $np2 run "$T/good.ini" data.file="$T/m/model.h5"
expect_input_error "more ranks than clients" "2 clients, but 3 ranks" $MPIRUN -np 3 "$FEDHPC" run "$T/good.ini"
[ -e "$T/rundir" ] && bad "a failed run left $T/rundir behind" || ok "no output directory after bad input"

printf 'a,b,y\n1,2,0\n3,4\n5,6,1\n' > "$T/ragged.csv"
expect_input_error "CSV with ragged rows" "ragged.csv:3: expected 3 fields, found 2" "$FEDHPC" prepare "csv:$T/ragged.csv" --label y --clients 1 --partition iid --seed 1 --out "$T/r.h5"
[ -e "$T/r.h5" ] && bad "a failed prepare left r.h5" || ok "no output file after a failed prepare"
printf 'a,b,y\n1,2,0\n3,4,1\n' > "$T/nolabel.csv"
expect_input_error "CSV without the label column" "label" "$FEDHPC" prepare "csv:$T/nolabel.csv" --label target --clients 1 --partition iid --seed 1 --out "$T/r.h5"
expect_input_error "unknown prepare option" "unknown option '--bogus'" "$FEDHPC" prepare fmnist --bogus 1
expect_input_error "bad partition name" "iid" "$FEDHPC" prepare lending_club --clients 2 --partition weird --seed 1 --out "$T/x.h5"
expect_input_error "bad number argument" "--clients: expected an integer" "$FEDHPC" prepare lending_club --clients many --partition iid --seed 1 --out "$T/x.h5"
expect_input_error "run without a config" "expected CONFIG.ini" $np2 run
expect_input_error "unknown command" "unknown command 'frobnicate'" "$FEDHPC" frobnicate
# ---- issue 17: bad input, round two ----------------------------------------------------------
# 1. lines of any length: a 256-character [data] file path in the file and as an override; the
#    config.ini a run writes is run again; an error after a long line names the right line.
long="$T/$(printf 'd%.0s' $(seq 1 120))/$(printf 'e%.0s' $(seq 1 120))"
mkdir -p "$long" && cp "$T/lc2.h5" "$long/lc2.h5"
[ ${#long} -ge 250 ] || bad "long path too short (${#long})"
sed "s|^file = .*|file = $long/lc2.h5|" "$T/good.ini" > "$T/long.ini"
check "256-character [data] file in the config" $np2 run "$T/long.ini" output.dir="$T/long1"
check "256-character [data] file as an override" $np2 run "$T/good.ini" data.file="$long/lc2.h5" output.dir="$T/long2"
check "the written config.ini (long path) runs again" $np2 run "$T/long1/config.ini" output.dir="$T/long3"
grep -q "^file = $long/lc2.h5\$" "$T/long3/config.ini" && ok "the long path survives a second round trip" || bad "long path lost in config.ini"
printf '[data]\nfile = %s/lc2.h5\n[train]\nrounds = x\n' "$long" > "$T/longbad.ini"
expect_input_error "error after a long line: its line" "longbad.ini:4: [train] rounds: expected an integer" $np2 run "$T/longbad.ini"

# 6, 7. config syntax: the real cause and line (table: file text | expected message)
i=0
while IFS='|' read -r text want; do
    i=$((i + 1))
    printf "$text" > "$T/syn$i.ini"
    expect_input_error "config syntax: $want" "syn$i.ini:$want" $np2 run "$T/syn$i.ini" </dev/null
done <<'TABLE'
[data]\nfile = x.h5\n[train\nrounds = 3\n|3: section header '[train' has no closing ']'
[train]\nrounds = 3\nlr = 0.1\nrounds = 4\n|4: [train] rounds: duplicated (first at line 2)
[train]\nrounds = 3\n[fl]\nmu = 1\n[train]\nrounds = 4\n|6: [train] rounds: duplicated (first at line 2)
rounds = 3\n[train]\n|1: key 'rounds' before any [section] header
[train]\nrounds 3\n|2: not valid INI syntax
[data]\nverify = maybe\n|2: [data] verify: expected one of off|on
TABLE
expect_input_error "a directory as the config file" "$T: is a directory (expected a configuration file" $np2 run "$T"

# 4. path arguments: exit 2 naming the argument, the path and what was expected; no output.
#    Table: description | expected message | command (word-split; $T and friends expanded)
mkdir -p "$T/adir" && : > "$T/afile"
printf 'a,y\n1,p\n2,q\n3,p\n4,q\n' > "$T/ok.csv"
while IFS='|' read -r desc want cmd; do
    eval "set -- $cmd"
    expect_input_error "path: $desc" "$(eval "echo \"$want\"")" "$@" </dev/null
done <<'TABLE'
CSV path is a directory|prepare csv:PATH '$T/adir': is a directory (expected a file)|"$FEDHPC" prepare "csv:$T/adir" --label y --clients 1 --partition iid --seed 1 --out "$T/p.h5"
CSV path missing|prepare csv:PATH '$T/nope.csv': No such file|"$FEDHPC" prepare "csv:$T/nope.csv" --label y --clients 1 --partition iid --seed 1 --out "$T/p.h5"
prepare --out is a directory|prepare --out '$T/adir': is a directory (expected the name of a file to write)|"$FEDHPC" prepare "csv:$T/ok.csv" --label y --clients 1 --partition iid --seed 1 --out "$T/adir"
prepare --out in a missing directory|prepare --out '$T/nodir/p.h5': its directory does not exist|"$FEDHPC" prepare "csv:$T/ok.csv" --label y --clients 1 --partition iid --seed 1 --out "$T/nodir/p.h5"
prepare --out under a file|prepare --out '$T/afile/p.h5': '$T/afile' is not a directory|"$FEDHPC" prepare "csv:$T/ok.csv" --label y --clients 1 --partition iid --seed 1 --out "$T/afile/p.h5"
prepare --cache is a file|prepare --cache '$T/afile': is not a directory (expected a directory)|"$FEDHPC" prepare fmnist --cache "$T/afile" --clients 2 --partition iid --seed 1 --out "$T/p.h5"
prepare --data-dir missing|prepare --data-dir '$T/nodir': No such file|"$FEDHPC" prepare lending_club --data-dir "$T/nodir" --clients 2 --partition iid --seed 1 --out "$T/p.h5"
[output] dir is a file|[output] dir '$T/afile': is an existing file, not a directory|$MPIRUN -np 2 "$FEDHPC" run "$T/good.ini" output.dir="$T/afile"
[output] dir under a file|[output] dir '$T/afile/run': '$T/afile' is not a directory|$MPIRUN -np 2 "$FEDHPC" run "$T/good.ini" output.dir="$T/afile/run"
[checkpoint] dir is a file|[checkpoint] dir '$T/afile': is an existing file|$MPIRUN -np 2 "$FEDHPC" run "$T/good.ini" checkpoint.dir="$T/afile"
[checkpoint] resume missing|[checkpoint] resume '$T/nockpt': No such file|$MPIRUN -np 2 "$FEDHPC" run "$T/good.ini" checkpoint.resume="$T/nockpt"
run --resume missing|[checkpoint] resume '$T/nockpt': No such file|$MPIRUN -np 2 "$FEDHPC" run "$T/good.ini" --resume "$T/nockpt"
[data] file is a directory|[data] file '$T/adir': is a directory (expected a file)|$MPIRUN -np 2 "$FEDHPC" run "$T/good.ini" data.file="$T/adir"
[system] speeds is a directory|[system] speeds '$T/adir': is a directory (expected a file)|$MPIRUN -np 2 "$FEDHPC" run "$T/good.ini" system.speeds="$T/adir"
[secagg] transcript is a directory|[secagg] transcript '$T/adir': is a directory|$MPIRUN -np 2 "$FEDHPC" run "$T/good.ini" secagg.enabled=on secagg.transcript="$T/adir"
[secagg] truth in a missing directory|[secagg] truth '$T/nodir/t.h5': its directory does not exist|$MPIRUN -np 2 "$FEDHPC" run "$T/good.ini" secagg.truth="$T/nodir/t.h5"
inspect a directory|inspect '$T/adir': is a directory (expected a file)|"$FEDHPC" inspect "$T/adir"
inspect a missing file|inspect '$T/nope.h5': No such file|"$FEDHPC" inspect "$T/nope.h5"
plot a file|plot '$T/afile': is not a directory|"$FEDHPC" plot "$T/afile"
plot --out a directory|plot --out '$T/adir': is a directory|"$FEDHPC" plot "$T/adir" --out "$T/adir"
TABLE
ls "$T"/*.tmp.* >/dev/null 2>&1 && bad "temporary files left behind: $(ls "$T"/*.tmp.*)" || ok "no temporary files after refused paths"
[ -e "$T/p.h5" ] && bad "a refused prepare wrote p.h5" || ok "no prepare output after refused paths"

# 4. numeric options of prepare: nan, inf, 1e999 and words refused naming the option
for opt in --clients --seed --min-size --alpha --test-frac --groups --local-test-frac; do
    for v in abc nan 1e999; do
        expect_input_error "prepare $opt $v" "prepare $opt: expected" \
            "$FEDHPC" prepare "csv:$T/ok.csv" --label y --clients 1 --partition iid --seed 1 --out "$T/p.h5" $opt $v
    done
done

# 2. non-finite numbers in a numeric CSV column: missing cells (imputed), counted, never one-hot
printf 'a,b,y\n1,2,p\n3,NaN,q\n5,inf,p\n7,-inf,q\n1e999,4,p\n2,5,q\n4,6,p\n6,7,q\n' > "$T/nf.csv"
"$FEDHPC" prepare "csv:$T/nf.csv" --label y --clients 1 --partition iid --seed 1 --out "$T/nf.h5" >"$T/nf.out" 2>"$T/nf.err"
grep -q " 2 features" "$T/nf.out" && ok "nan/inf/1e999 cells: the columns stay numeric (2 features)" ||
    { bad "nan/inf column encoding"; cat "$T/nf.out" "$T/nf.err" | sed 's/^/       | /'; }
grep -q "note: 4 feature cells spell a non-finite number .* (the first: $T/nf.csv:3, column 'b')" "$T/nf.err" &&
    ok "non-finite cells counted and located in the prepare note" || { bad "no note on non-finite cells"; sed 's/^/       | /' "$T/nf.err"; }
printf 'a,y\n1,p\n2,nan\n3,q\n' > "$T/nflabel.csv"
expect_input_error "nan in the label column" "nflabel.csv:3: missing value 'nan' in label column 'y'" \
    "$FEDHPC" prepare "csv:$T/nflabel.csv" --label y --clients 1 --partition iid --seed 1 --out "$T/p.h5"

# 6. silent acceptance
printf 'a,y\n1,p\n2,p\n3,p\n' > "$T/onecls.csv"
expect_input_error "--positive on a one-valued label" "is 'p' in every row: --positive p leaves no negative rows" \
    "$FEDHPC" prepare "csv:$T/onecls.csv" --label y --positive p --clients 1 --partition iid --seed 1 --out "$T/p.h5"
"$FEDHPC" prepare lending_club --clients 2 --partition iid --seed 1 --test-frac 0 --out "$T/notest.h5" >/dev/null 2>"$T/nt.err"
grep -q "warning: no test rows (--test-frac 0)" "$T/nt.err" && ok "prepare --test-frac 0 warns" || bad "prepare --test-frac 0: no warning"
$np2 run "$T/good.ini" data.file="$T/notest.h5" output.dir="$T/notest" >/dev/null 2>"$T/nt.err"
[ "$(grep -c "has no test rows (prepared with --test-frac 0)" "$T/nt.err")" = 1 ] && ok "run on a file without test rows warns once" ||
    { bad "run without test rows: no single warning"; sed 's/^/       | /' "$T/nt.err"; }
$np2 run "$T/good.ini" train.clients_per_round=50 output.dir="$T/cpr" >/dev/null 2>"$T/cpr.err"
[ "$(grep -c "clients_per_round = 50 but .* has 2 clients: using 2" "$T/cpr.err")" = 1 ] &&
    grep -q "^clients_per_round = 2\$" "$T/cpr/config.ini" && ok "clients_per_round above the clients: warned once, config.ini records 2" ||
    { bad "clients_per_round clamp"; sed 's/^/       | /' "$T/cpr.err"; grep clients_per_round "$T/cpr/config.ini"; }

# 3. checksums: a damaged data file is refused by run (every rank, one message) and inspect --verify;
#    a file of the old format (no checksums) still loads, with a note
cp "$T/lc2.h5" "$T/dmg.h5"
off=$(h5dump -H -p -d /train/x "$T/dmg.h5" | sed -n 's/.*OFFSET \([0-9][0-9]*\).*/\1/p')
printf '\377\377\377\177' | dd of="$T/dmg.h5" bs=1 seek=$((off + 4000)) conv=notrunc 2>/dev/null
expect_input_error "damaged data file: run" "dmg.h5: /train/x: checksum mismatch" $np2 run "$T/good.ini" data.file="$T/dmg.h5" output.dir="$T/dmgrun"
[ -e "$T/dmgrun" ] && bad "a run on a damaged file left output" || ok "no output from a run on a damaged file"
expect_input_error "damaged data file: inspect --verify" "dmg.h5: /train/x: checksum mismatch" "$FEDHPC" inspect --verify "$T/dmg.h5"
"$FEDHPC" inspect --verify "$T/lc2.h5" > "$T/ins.out" 2>&1 && grep -q "checksums   ok" "$T/ins.out" && ok "inspect --verify of a good file" ||
    { bad "inspect --verify good file"; sed 's/^/       | /' "$T/ins.out"; }
check "data.verify=off skips the check" $np2 run "$T/good.ini" data.file="$T/dmg.h5" data.verify=off output.dir="$T/dmgoff"
OLD="$FEDHPC_ROOT/tests/cli/fixtures/old_format_v1.h5" # written by fedhpc prepare before checksums (ec81b67)
$np2 run "$T/good.ini" data.file="$OLD" output.dir="$T/old" >/dev/null 2>"$T/old.err" && [ -f "$T/old/model.h5" ] &&
    [ "$(grep -c "has no checksums (written by an older fedhpc prepare)" "$T/old.err")" = 1 ] &&
    ok "a data file without checksums loads, with one note" || { bad "old-format data file"; sed 's/^/       | /' "$T/old.err"; }
"$FEDHPC" inspect --verify "$OLD" | grep -q "checksums   none" && ok "inspect --verify of an old file says none" || bad "inspect --verify old file"

# 5. --resume with [train] rounds below the checkpoint's round: refused, model.h5 untouched
check "a 3-round run with checkpoints" $np2 run "$T/good.ini" train.rounds=3 checkpoint.every=1 output.dir="$T/res"
cp "$T/res/model.h5" "$T/res.model.h5"
expect_input_error "resume after round 3 with rounds = 1" "checkpoint is after round 3 but [train] rounds = 1" \
    $np2 run "$T/good.ini" train.rounds=1 output.dir="$T/res" --resume
cmp -s "$T/res/model.h5" "$T/res.model.h5" && ok "model.h5 untouched by the refused resume" || bad "model.h5 rewritten by a refused resume"

# 8. SIGUSR1 to mpirun: mpirun's own exit status is 3 (checkpoint written, requeue)
$MPIRUN -np 2 "$FEDHPC" run "$T/good.ini" train.rounds=1000000 train.eval_every=1000000 output.dir="$T/usr1" \
    >"$T/usr1.out" 2>"$T/usr1.err" &
pid=$!
i=0
while [ ! -s "$T/usr1/metrics.csv" ] || [ "$(wc -l <"$T/usr1/metrics.csv")" -lt 3 ]; do
    i=$((i + 1)); [ $i -gt 600 ] && break; sleep 0.05
done
kill -USR1 $pid
wait $pid
rc=$?
[ $rc = 3 ] && ls "$T/usr1/checkpoints"/ckpt_*.h5 >/dev/null 2>&1 &&
    [ "$(grep -c "exit status 3: resubmit with --resume" "$T/usr1.err")" = 1 ] &&
    ok "SIGUSR1 to mpirun: mpirun exits 3, a checkpoint, one message" ||
    { bad "SIGUSR1 to mpirun: exit $rc"; sed 's/^/       | /' "$T/usr1.err" | head -8; }

for c in prepare run inspect plot privacy; do
    check "fedhpc $c --help" "$FEDHPC" $c --help
done
finish bad_input
