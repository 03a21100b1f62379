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
expect_input_error "missing data file" "missing.h5: cannot read the data file" $np2 run "$T/good.ini" data.file="$T/missing.h5"
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
for c in prepare run inspect plot privacy; do
    check "fedhpc $c --help" "$FEDHPC" $c --help
done
finish bad_input
