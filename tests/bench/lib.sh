# Shared by the benchmark scripts (sourced).

# median FILE METRIC: the median of METRIC's values in lines "METRIC VALUE".
median() {
    grep "^$2 " "$1" | awk '{print $2}' | sort -g |
        awk '{v[NR] = $1} END {
            if (NR % 2) print v[(NR + 1) / 2];
            else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
