#!/usr/bin/env bash
# tests/fuzz/run.sh — build raced's libFuzzer targets with clang under
# AddressSanitizer + UBSan and run each for a fixed time.
#
#   tests/fuzz/run.sh                      every target, 40 s each (CI)
#   tests/fuzz/run.sh --seconds 300        the long run (docs/fuzzing.md)
#   tests/fuzz/run.sh --seconds 60 jsondoc config
#
# The targets (tests/fuzz/fuzz_*.c): jsondoc (against jansson), urltemplate,
# jsonnum, linkheader, control, config.  Each starts from its seed corpus
# (tests/fuzz/corpus/TARGET, never written to) and keeps what it finds in
# BUILD/corpus/TARGET, so a second run goes on from there.  A target fails
# on a crash, a sanitizer report, a failed property (the differential
# check aborts), an input that runs longer than --timeout seconds (a hang)
# or one that needs more than --rss-limit MiB; the input is kept as
# BUILD/artifacts/TARGET/crash-* (or timeout-*, oom-*) and can be replayed
# with BUILD/tests/fuzz/fuzz_TARGET FILE.
#
# Output: a line per target, "PASS fuzz_TARGET: ..." or "FAIL fuzz_TARGET:
# ...", with libFuzzer's figures (runs, exec/s, coverage, features, corpus),
# then "fuzz: N passed, N failed".  Exit 0 when every target passed, 1 when
# one failed (or the build did), 77 when clang or libFuzzer is missing
# (nothing ran).
#
# Options: --seconds N (per target), --build DIR (default build-fuzz),
# --timeout S (per input, default 10), --rss-limit MB (default 2048),
# --jobs N (parallel fuzzing processes per target, default 1), --coverage
# (then replay each corpus in a clang source-coverage build, BUILD-cov, and
# print "COVERAGE fuzz_TARGET:" with the line and branch coverage of the
# modules it fuzzes; needs llvm-cov and llvm-profdata, Debian's llvm-14).
set -uo pipefail
cd "$(dirname "$0")/../.."

seconds=40 build=build-fuzz timeout=10 rss=2048 jobs=1 coverage=0
targets=()
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) seconds=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--rss-limit) rss=$2; shift 2 ;;
	--jobs) jobs=$2; shift 2 ;;
	--coverage) coverage=1; shift ;;
	-h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) echo "run.sh: unknown option $1 (see --help)" >&2; exit 1 ;;
	*) targets+=("$1"); shift ;;
	esac
done
[ ${#targets[@]} -gt 0 ] || targets=(jsondoc urltemplate jsonnum linkheader control config)
for t in "${targets[@]}"; do
	[ -f "tests/fuzz/fuzz_$t.c" ] || { echo "run.sh: no target '$t' (tests/fuzz/fuzz_$t.c)" >&2; exit 1; }
done

cc=$(command -v clang || command -v clang-14) || {
	echo "run.sh: clang not found (Debian: apt-get install clang-14 libclang-rt-14-dev)" >&2
	exit 77
}

# The library with coverage instrumentation for libFuzzer, both sanitizers;
# werror off: the gcc build is the one that gates warnings, and clang's
# -Wformat=2 flags the one vsnprintf wrapper gcc accepts.
if [ ! -f "$build/build.ninja" ]; then
	if ! CC=$cc meson setup "$build" -Dfuzz=true -Dwerror=false \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fsanitize=fuzzer-no-link >"$build.setup.log" 2>&1; then
		tail -n 20 "$build.setup.log"
		grep -q 'needs clang with libFuzzer' "$build.setup.log" && exit 77
		echo "fuzz: 0 passed, ${#targets[@]} failed"
		exit 1
	fi
fi
names=()
for t in "${targets[@]}"; do names+=("tests/fuzz/fuzz_$t"); done
if ! meson compile -C "$build" "${names[@]}" >"$build.compile.log" 2>&1; then
	grep -E 'error|FAILED' "$build.compile.log" | head -n 40
	echo "fuzz: 0 passed, ${#targets[@]} failed"
	exit 1
fi

# The last "#N ... cov: ... ft: ... corp: ..." status line, and the final stats.
figures() { # log
	local status runs eps
	status=$(grep -E '^#[0-9]+' "$1" | tail -n 1)
	runs=$(awk '/stat::number_of_executed_units:/ {print $2}' "$1" | tail -n 1)
	eps=$(awk '/stat::average_exec_per_sec:/ {print $2}' "$1" | tail -n 1)
	printf '%s runs, %s exec/s, %s' "${runs:-?}" "${eps:-?}" \
		"$(sed -E 's/.*(cov: [0-9]+ ft: [0-9]+ corp: [0-9]+\/[0-9]+[a-zA-Z]*).*/\1/' <<<"$status")"
}

passed=0 failed=0
for t in "${targets[@]}"; do
	exe=$build/tests/fuzz/fuzz_$t seeds=tests/fuzz/corpus/$t
	work=$build/corpus/$t art=$build/artifacts/$t log=$build/fuzz_$t.log
	mkdir -p "$work" "$art"
	dict=()
	[ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
	par=()
	[ "$jobs" -gt 1 ] && par=(-fork="$jobs" -ignore_crashes=0)
	"$exe" -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss" \
		-print_final_stats=1 -artifact_prefix="$art/" "${dict[@]}" "${par[@]}" \
		"$work" "$seeds" >"$log" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		echo "PASS fuzz_$t: $seconds s, $(figures "$log")"
	else
		failed=$((failed + 1))
		echo "FAIL fuzz_$t (exit $rc): $(ls -t "$art" | head -n 1 | sed "s|^|$art/|")"
		grep -E -A 12 'property failed|ERROR: |runtime error|Timeout|out-of-memory' "$log" | head -n 40
	fi
done
# The modules each target fuzzes, for --coverage.
declare -A modules=(
	[jsondoc]="lib/json/jsondoc.c lib/json/jsonptr.c"
	[urltemplate]="lib/http/urltemplate.c"
	[jsonnum]="lib/json/jsonnum.c"
	[linkheader]="lib/http/linkheader.c"
	[control]="lib/control/control.c lib/control/ctlcommands.c"
	[config]="lib/config/config.c lib/config/config_lex.c lib/config/config_value.c lib/config/config_check.c lib/config/config_diff.c lib/config/tokenfile.c"
)
report_coverage() {
	local cov=$build-cov profdata llvmcov
	profdata=$(command -v llvm-profdata || command -v llvm-profdata-14) &&
		llvmcov=$(command -v llvm-cov || command -v llvm-cov-14) ||
		{ echo "run.sh: --coverage needs llvm-profdata and llvm-cov (Debian: llvm-14)" >&2; return; }
	if [ ! -f "$cov/build.ninja" ] && ! CC=$cc meson setup "$cov" -Dfuzz=true -Dwerror=false \
		"-Dc_args=-fsanitize=fuzzer-no-link -fprofile-instr-generate -fcoverage-mapping" \
		-Dc_link_args=-fprofile-instr-generate >"$cov.setup.log" 2>&1; then
		tail -n 20 "$cov.setup.log"; return
	fi
	meson compile -C "$cov" "${names[@]}" >"$cov.compile.log" 2>&1 || { tail -n 20 "$cov.compile.log"; return; }
	for t in "${targets[@]}"; do
		rm -f "$cov/$t.profraw"
		LLVM_PROFILE_FILE="$cov/$t.profraw" "$cov/tests/fuzz/fuzz_$t" -runs=0 \
			"$build/corpus/$t" "tests/fuzz/corpus/$t" >"$cov/$t.log" 2>&1
		"$profdata" merge -o "$cov/$t.profdata" "$cov/$t.profraw" || continue
		echo "COVERAGE fuzz_$t: $("$llvmcov" report "$cov/tests/fuzz/fuzz_$t" -instr-profile="$cov/$t.profdata" |
			awk -v want=" ${modules[$t]} " 'index(want, " " $1 " ") {
				printf "%s%s %s of %s lines, %s of %s branches", sep, $1, $10, $8, $13, $11; sep = "; " }')"
	done
}
[ "$coverage" -eq 1 ] && report_coverage

echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
