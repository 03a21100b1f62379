#!/bin/sh
# Supermarket baskets (weka's supermarket.arff: basket_id,total,space-separated 1-based
# department indices; names one a line in supermarket_items.txt) into a wide CSV with one 0/1
# column per department, named after it, and the label column `total` (high/low), for
#   fedhpc prepare csv:OUT.csv --label total --positive high ...
# (a bag-of-departments table; docs/embed.md uses it for the cluster profiles).
# usage: sh jobs/embed/supermarket_wide.sh supermarket_baskets.csv supermarket_items.txt OUT.csv
set -eu
[ $# = 3 ] || { echo "usage: $0 BASKETS.csv ITEMS.txt OUT.csv" >&2; exit 2; }
awk -F, -v items="$2" '
BEGIN {
    n = 0
    while ((getline line < items) > 0) { n++; gsub(/,/, ";", line); name[n] = line }
    printf "total"
    for (j = 1; j <= n; j++) printf ",%s", name[j]
    printf "\n"
}
NF >= 2 {
    delete has
    m = split($3, it, " ")
    for (i = 1; i <= m; i++) if (it[i] != "") {
        if (it[i] < 1 || it[i] > n) { printf "%s: basket %s: department %s outside 1..%d\n", FILENAME, $1, it[i], n > "/dev/stderr"; exit 2 }
        has[it[i] + 0] = 1
    }
    printf "%s", $2
    for (j = 1; j <= n; j++) printf ",%d", (j in has)
    printf "\n"
}' "$1" >"$3.tmp"
mv "$3.tmp" "$3"
