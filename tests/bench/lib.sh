# Shared by the benchmark scripts (sourced).

# median FILE METRIC: the median of METRIC's values in lines "METRIC VALUE".
median() {
    grep "^$2 " "$1" | awk '{print $2}' | sort -g |
        awk '{v[NR] = $1} END {
            if (NR % 2) print v[(NR + 1) / 2];
            else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# target NAME VALUE OP LIMIT: prints whether VALUE OP LIMIT holds (OP is
# <= or >=); a miss sets status=1, the scripts' exit status.
status=0
target() {
    if awk -v v="$2" -v l="$4" -v op="$3" \
        'BEGIN { exit !(op == "<=" ? v <= l : v >= l) }'; then
        echo "target met:    $1 = $2 $3 $4"
    else
        echo "target missed: $1 = $2, not $3 $4"
        status=1
    fi
}
