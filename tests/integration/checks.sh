# Shared by the integration scripts (sourced): counted checks.  Each runs
# its command with the output in check.out (in the current directory).

failures=0
passes=0

# check WHAT COMMAND...: the command must succeed.
check() {
    what=$1
    shift
    if "$@" >check.out 2>&1; then
        passes=$((passes + 1))
    else
        echo "FAILED: $what"
        head -20 check.out
        failures=$((failures + 1))
    fi
}

# fails WHAT COMMAND...: the command must fail.
fails() {
    what=$1
    shift
    if "$@" >check.out 2>&1; then
        echo "FAILED: $what (succeeded)"
        failures=$((failures + 1))
    else
        passes=$((passes + 1))
    fi
}

# fails_with WHAT MESSAGE COMMAND...: the command fails, saying MESSAGE.
fails_with() {
    what=$1 message=$2
    shift 2
    if "$@" >check.out 2>&1; then
        echo "FAILED: $what (succeeded)"
        failures=$((failures + 1))
    elif ! grep -qF -- "$message" check.out; then
        echo "FAILED: $what: no '$message' in:"
        head -5 check.out
        failures=$((failures + 1))
    else
        passes=$((passes + 1))
    fi
}
