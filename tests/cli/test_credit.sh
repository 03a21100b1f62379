# The credit-scoring study (issue 16, docs/credit.md): the short version of
# jobs/studies/credit/run.sh (SHORT=1: one seed, 4 rounds) runs every cell; the CSV has every
# data set x skew x method cell once with finite metrics in range and a decision threshold
# from the validation split; the Markdown table and the PNGs are written. prepare --val-frac
# leaves the test split as it is; without a validation split no threshold is reported; a study
# cell is bit-identical on -np 1 and 2; bad --val-frac input is refused with exit 2.
# (That the threshold never depends on the test split: unit suite credit, which inverts every
# test label and gets the same threshold.)
. "$(dirname "$0")/lib.sh"
echo "credit study tests"
S=$T/study
if SHORT=1 OUT="$S" FEDHPC="$FEDHPC" sh jobs/studies/credit/run.sh >"$T/study.log" 2>&1; then ok "run.sh SHORT=1 ran every cell"
else bad "run.sh SHORT=1 failed"; tail -20 "$T/study.log" | sed 's/^/       | /'; fi
CSV=$S/credit.csv
want=""
for ds in lc cd; do for sk in natural dirichlet quantity; do
    ms="fedavg fedprox clustered async centralized focal"; [ $sk = natural ] && ms="$ms weak_drop weak_partial"
    for m in $ms; do want="$want$ds,$sk,$m,1
"; done
done; done
got=$(tail -n +2 "$CSV" 2>/dev/null | cut -d, -f1-4)
[ "$got" = "$(printf '%s' "$want")" ] && ok "credit.csv: every cell once ($(echo "$got" | wc -l) rows)" ||
    { bad "credit.csv cells"; echo "$got" | head -5 | sed 's/^/       | /'; }
# columns 5-11: F1s, AUCs, accuracy in [0, 1]; 12: the threshold in (0, 1)
if [ -s "$CSV" ] && awk -F, 'NR == 1 { next } { for (i = 5; i <= 11; i++) if ($i !~ /^[0-9.eE+-]+$/ || $i < 0 || $i > 1) exit 1
    if ($12 !~ /^[0-9.eE+-]+$/ || $12 <= 0 || $12 >= 1) exit 1; if ($5 < 0.05) exit 1 }' "$CSV"; then
    ok "credit.csv: every metric finite and in [0, 1], every run has a validation threshold in (0, 1)"
else bad "credit.csv values out of range"; head -3 "$CSV" | sed 's/^/       | /'; fi
rows=$(grep -c '^| [a-z_]* | [a-z]* | [a-z_]* | [0-9]' "$S/credit_table.md" 2>/dev/null)
[ "$rows" = 40 ] && ok "credit_table.md: 40 rows (data set x skew x method)" || bad "credit_table.md has $rows rows"
for p in credit_f1 credit_weak; do
    [ "$(head -c 4 "$S/$p.png" 2>/dev/null | tail -c 3)" = PNG ] && ok "$p.png is a PNG" || bad "$p.png missing"
done
# weak agents: with a deadline some are dropped (drop), none with partial work
LCN=$S/runs/lc_natural
dd=$(awk -F, 'NR == 2 { print $7 }' "$LCN/weak_drop_s1/async.csv" 2>/dev/null)
dp=$(awk -F, 'NR == 2 { print $7 }' "$LCN/weak_partial_s1/async.csv" 2>/dev/null)
nums "$dd" "$dp" && [ "$dd" -gt 0 ] && [ "$dp" = 0 ] && ok "weak agents: $dd late updates discarded a round (drop), 0 with partial work" ||
    bad "weak agents: discarded '$dd' (drop), '$dp' (partial)"
# the validation split leaves the test rows alone; no /val: no threshold
check "prepare lending_club natural without --val-frac" "$FEDHPC" prepare lending_club --partition natural --seed 1 --out "$T/nov.h5"
h5diff -q "$T/nov.h5" "$S/data/lc_natural.h5" /test/y /test/y &&
    ok "--val-frac: the same test rows as without it (labels in the same order; features are standardised with training-row statistics)" ||
    bad "--val-frac changed the test split"
vr=$(h5dump -a /val_rows "$S/data/lc_natural.h5" 2>/dev/null | grep -E '^ *\(0\)' | sed 's/.*: *//')
tr=$(h5dump -a /train_rows "$S/data/lc_natural.h5" 2>/dev/null | grep -E '^ *\(0\)' | sed 's/.*: *//')
tr0=$(h5dump -a /train_rows "$T/nov.h5" 2>/dev/null | grep -E '^ *\(0\)' | sed 's/.*: *//')
nums "$vr" "$tr" "$tr0" && [ $((vr + tr)) = "$tr0" ] && ok "--val-frac: $vr validation rows taken from the $tr0 training rows" ||
    bad "val_rows '$vr' + train_rows '$tr' != '$tr0'"
check "run without a validation split" "$FEDHPC" run jobs/studies/credit/credit.ini data.file="$T/nov.h5" train.rounds=2 output.dir="$T/nov"
[ "$(csv_col_last "$T/nov/metrics.csv" threshold)" = nan ] && [ "$(csv_col_last "$T/nov/metrics.csv" f1_minority_thr)" = nan ] &&
    nums "$(csv_col_last "$T/nov/metrics.csv" f1_minority)" "$(csv_col_last "$T/nov/metrics.csv" pr_auc)" &&
    ok "no validation split: threshold nan, minority F1 and PR-AUC reported" || bad "metrics without a validation split"
# a study cell on 2 ranks: the same model and the same metrics
check "lc natural fedavg on -np 2" $MPIRUN -np 2 "$FEDHPC" run jobs/studies/credit/credit.ini data.file="$S/data/lc_natural.h5" \
    train.rounds=4 train.seed=1 output.dir="$T/np2"
same_model "$LCN/fedavg_s1/model.h5" "$T/np2/model.h5" && same_csv 1,3-7,21-25 "$LCN/fedavg_s1/metrics.csv" "$T/np2/metrics.csv" &&
    ok "-np 1 and -np 2: bit-identical model, same metrics and threshold" || bad "-np 2 differs"
# bad input
expect_input_error "--val-frac on fmnist" "--val-frac applies to CSV data sets" "$FEDHPC" prepare fmnist --clients 2 --partition iid \
    --seed 1 --val-frac 0.1 --out "$T/f.h5"
expect_input_error "--val-frac out of range" "--val-frac" "$FEDHPC" prepare lending_club --partition natural --seed 1 --val-frac 1.5 --out "$T/b.h5"
expect_input_error "--test-frac + --val-frac leave no training rows" "leave no training rows" "$FEDHPC" prepare credit_data --clients 2 \
    --partition iid --seed 1 --test-frac 0.5 --val-frac 0.5 --out "$T/c.h5"
expect_input_error "focal_gamma with DP-SGD" "[model] focal_gamma = 2: supported with" "$FEDHPC" run jobs/studies/credit/credit.ini \
    data.file="$T/nov.h5" model.focal_gamma=2 privacy.mode=sample privacy.noise=1 output.dir="$T/fg"
finish credit
