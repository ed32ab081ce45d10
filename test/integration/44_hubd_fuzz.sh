#!/usr/bin/env bash
# A short libFuzzer run (address + undefined sanitizers) of hubd's request
# router, percent-decoder and JSON checker, from the seed corpus in
# test/fuzz/corpus.  By hand, longer:
#   make hubd-fuzz && test/fuzz/hubd_fuzz -max_total_time=600 test/fuzz/corpus
set -uo pipefail
source "$HUB_ROOT/test/lib.sh"
cd "$HUB_ROOT"

make -s hubd-fuzz >"$HUB_RUN/fuzz-build.log" 2>&1
tap_ok $? "the fuzz target builds with clang -fsanitize=fuzzer,address,undefined"
corpus="$HUB_RUN/fuzz-corpus"
mkdir -p "$corpus" && cp test/fuzz/corpus/* "$corpus/"
test/fuzz/hubd_fuzz -max_total_time="${HUBD_FUZZ_SECONDS:-20}" -timeout=5 -rss_limit_mb=1024 \
	-artifact_prefix="$HUB_RUN/" "$corpus" >"$HUB_RUN/fuzz.log" 2>&1
status=$?
tail -n 3 "$HUB_RUN/fuzz.log" | sed 's/^/# /'
tap_is "$status" 0 "the router and JSON checker survive ${HUBD_FUZZ_SECONDS:-20} s of fuzzing without a crash or sanitizer report"
runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$HUB_RUN/fuzz.log")
tap_ok "$((${runs:-0} > 10000 ? 0 : 1))" "the fuzzer really ran (${runs:-0} inputs)"

tap_done
