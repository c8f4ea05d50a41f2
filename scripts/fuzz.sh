#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, through the libfuzzer-sys crate) of the code that reads
# outside input: the Dockerfile frontend, word expansion, .dockerignore, layer tars and outer
# archives. Each target in fuzz/ runs for FUZZ_SECONDS (default 45) from the committed seeds in
# fuzz/corpus/<target> (plus BuildKit's test data from ../shared when it is there). A crash, a
# hang (10 s on one input) or an OOM fails the script and leaves the input in
# fuzz/artifacts/<target>/: turn it into a regression test next to the code it broke.
#
# Built the way `cargo fuzz build -O --sanitizer none -a` builds (the same coverage flags), with
# plain cargo on the stable toolchain: no cargo-fuzz to install. FUZZ_SANITIZER=address adds
# AddressSanitizer (RUSTC_BOOTSTRAP=1 lets stable take -Zsanitizer); FUZZ_TARGETS="a b" runs
# only those targets. `cargo fuzz run <target>` from fuzz/ works too where cargo-fuzz is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-45}
read -r -a targets <<<"${FUZZ_TARGETS:-dockerfile expand dockerignore layer archive}"
testdata=$PWD/../shared/buildkit-testdata
host=$(rustc -vV | sed -n 's/^host: //p')

flags="--cfg fuzzing -Cdebug-assertions -Cpasses=sancov-module"
for a in level=4 inline-8bit-counters pc-table trace-compares stack-depth; do
  flags+=" -Cllvm-args=-sanitizer-coverage-$a"
done
flags+=" -Cllvm-args=-simplifycfg-branch-fold-threshold=0"
tdir=target
if [ "${FUZZ_SANITIZER:-none}" != none ]; then
  flags+=" -Zsanitizer=$FUZZ_SANITIZER"
  tdir=target/sanitizer-$FUZZ_SANITIZER  # a build of its own, not one that flips back and forth
  export RUSTC_BOOTSTRAP=1 ASAN_OPTIONS=detect_odr_violation=0
fi

cd fuzz
cargo fmt -- --check
t0=$SECONDS
# --target keeps the flags off build scripts and proc macros (they run on the host).
RUSTFLAGS="$flags" cargo build --release --locked --target "$host" --target-dir "$tdir" --bins -q
echo "fuzz: built ${#targets[@]} targets in $((SECONDS - t0)) s"

# The targets that write files get a scratch directory, on tmpfs when there is one (10x faster).
scratch=$(mktemp -d "$( [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/hush-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export HUSH_FUZZ_TMP=$scratch

# BuildKit's parser and expansion data as extra seeds (read in place, never committed).
seed_from_testdata() {
  local t=$1 dir=work/$1
  mkdir -p "$dir"
  [ -d "$testdata" ] || return 0
  case $t in
    dockerfile)
      for d in "$testdata"/parser/testfiles/*/ "$testdata"/parser/testfiles-negative/*/; do
        [ -f "$d/Dockerfile" ] && cp "$d/Dockerfile" "$dir/buildkit-$(basename "$d")"
      done ;;
    expand)
      # The input column of `A|input | expected` and `input | expected` rows, one file each.
      local n=0
      while IFS= read -r row; do
        n=$((n + 1))
        printf '%s' "$row" >"$dir/buildkit-row-$n"
      done < <(grep '^[AU]|' "$testdata/shell/envVarTest" | cut -d'|' -f2 | sed 's/ *$//'
               grep -v '^#\|^ENV ' "$testdata/shell/wordsTest" | sed 's/ *|.*//') ;;
  esac
  return 0
}

failed=()
for t in "${targets[@]}"; do
  seed_from_testdata "$t"
  case $t in layer | archive) max_len=16384 ;; *) max_len=8192 ;; esac
  mkdir -p artifacts/"$t" target/fuzz-logs
  log=target/fuzz-logs/$t.log
  t1=$SECONDS
  rc=0
  # libFuzzer stops itself after $secs; the outer bound only catches a fuzzer that does not.
  timeout -k 10 $((secs + 60)) "$tdir/$host/release/$t" -artifact_prefix=artifacts/"$t"/ \
    work/"$t" corpus/"$t" \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
    -print_final_stats=1 >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  echo "fuzz: $t: ${execs:-?} execs in $((SECONDS - t1)) s, ${cov:-cov: ?}," \
       "corpus $(find work/"$t" -type f | wc -l) inputs, exit $rc"
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written|==[0-9]+==' "$log" | head -20
    echo "fuzz: $t: full log in fuzz/$log"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}; reproduce from fuzz/ with" \
       "$tdir/$host/release/<target> artifacts/<target>/<input>"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash in ${secs} s each ($((SECONDS - t0)) s in all)"
