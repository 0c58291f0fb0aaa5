#!/bin/bash
# Runs inside the guest scripts/test-vm.sh boots, chrooted into the host's
# root (read-only over virtio-9p): turn the emulated NVDIMM into an fsdax
# namespace, mount ext4 on it with -o dax, and run what config.sh lists on
# it. Every line the host reads starts with "PKTSTORE-VM: "; the full logs
# go to the results share.
#   guest.sh CONFIG   (CONFIG sets SRC, BUILD, RUNS, POINTS, TIME_SCALE, RES)
# All of it is one function, read whole before it runs: the file is the
# host's, and may change while a guest runs it.
main() {
set -u
. "$1"
say() { echo "PKTSTORE-VM: $*"; }
die() {
	say "ERROR: $*"
	exit 1
}

say "kernel $(uname -r) with $(nproc) CPUs"
command -v ndctl >/dev/null || die "ndctl is not installed on the host"
ndctl create-namespace -f -e namespace0.0 -m fsdax -M mem >"$RES/ndctl.json" 2>&1 ||
	die "ndctl create-namespace: $(tail -3 "$RES/ndctl.json")"
region=$(ls -d /sys/bus/nd/devices/region* 2>/dev/null | head -1)
say "nvdimm region ${region##*/}: persistence_domain $(cat "$region/persistence_domain" 2>/dev/null || echo none)"
dev=/dev/$(sed -n 's/.*"blockdev":"\([^"]*\)".*/\1/p' "$RES/ndctl.json" | head -1)
[ -b "$dev" ] || dev=/dev/pmem0
[ -b "$dev" ] || die "no pmem block device after ndctl ($(tr -d '\n' <"$RES/ndctl.json"))"
mkfs.ext4 -q -F -b 4096 "$dev" >"$RES/mkfs.log" 2>&1 || die "mkfs.ext4 $dev: $(tail -3 "$RES/mkfs.log")"
DAX=/tmp/dax
mkdir -p $DAX
mount -t ext4 -o dax "$dev" $DAX || die "mount -o dax $dev failed"
opts=$(awk -v d=$DAX '$2 == d { print $4 }' /proc/mounts)
case ",$opts," in
*,dax*) ;;
*) die "$dev mounted without dax ($opts)" ;;
esac
say "mounted $dev on $DAX ($opts)"
mkdir -p $DAX/file $DAX/pm $DAX/kv
# Arenas of every test on the DAX mount: MEDIUM_FILE, MEDIUM_TMPFS (the
# "emulated PM" medium, /dev/shm on a host, which the power-loss emulator,
# the command-line tool's test, the adapters' and distinct-stores use too)
# and the kv end-to-end tests.
export PKTSTORE_TEST_DIR=$DAX/file PKTSTORE_TEST_PM_DIR=$DAX/pm KV_TEST_DIR=$DAX/kv
export PKTSTORE_POWERFAIL_POINTS=$POINTS CRITERION_VERBOSITY_LEVEL=1
# The init's chroot starts from an empty environment: the slow-machine
# factor of the tests' time limits comes from config.sh.
export PKTSTORE_TEST_TIME_SCALE=${TIME_SCALE:-1}
say "time limits scaled by $PKTSTORE_TEST_TIME_SCALE"
export TMPDIR=/tmp

# ctest writes its logs under the build tree, read-only here.
mkdir -p "$BUILD/Testing" 2>/dev/null
mount -t tmpfs tmpfs "$BUILD/Testing" || die "cannot mount a tmpfs on $BUILD/Testing"

failed=0

# suite NAME SELECT [WRAPPER...]: ctest over the build, the tests SELECT
# picks: "" all, "-REGEX" all but those matching, "+REGEX" only those;
# counts of ctest tests and of Criterion test cases (passed, skipped with
# reasons, failed).
suite() {
	local name=$1 select=$2 exclude= log=$RES/ctest-$1.log t0 t1 rc args=()
	case $select in
	-*) exclude=${select#-}; args=(-E "$exclude") ;;
	+*) args=(-R "${select#+}") ;;
	esac
	shift 2
	rm -rf "$BUILD/Testing/"*
	t0=$(date +%s)
	# CTEST_ARGS (VM_CTEST_ARGS on the host) are words: -R roundtrip etc.
	set -f
	(cd "$BUILD" && "$@" ctest --output-on-failure --timeout 600 "${args[@]}" ${CTEST_ARGS:-}) >"$log" 2>&1
	rc=$?
	set +f
	t1=$(date +%s)
	[ -z "$exclude" ] || say "$name leaves out: $exclude"
	case $select in +*) say "$name runs only: ${select#+}" ;; esac
	cp "$BUILD/Testing/Temporary/LastTest.log" "$RES/lasttest-$name.log" 2>/dev/null
	local summary cpass cskip cfail
	summary=$(grep -E 'tests passed|tests failed' "$log" | tail -1)
	cpass=$(grep -c '^\[PASS\]' "$RES/lasttest-$name.log" 2>/dev/null)
	cskip=$(grep -c '^\[SKIP\]' "$RES/lasttest-$name.log" 2>/dev/null)
	cfail=$(grep -cE '^\[(FAIL|CRASH)\]|^\[----\].*(FAIL|CRASH)' "$RES/lasttest-$name.log" 2>/dev/null)
	say "RUN $name rc=$rc time=$((t1 - t0))s ctest: ${summary:-no summary}; criterion cases: ${cpass:-0} passed, ${cskip:-0} skipped, ${cfail:-0} failed"
	grep -E '^[[:space:]]*[0-9]+ - .*\((Failed|Timeout|Not Run|Subprocess|Exception|SEGFAULT|Child aborted)' "$log" |
		sed 's/^[[:space:]]*/PKTSTORE-VM:   failed: /'
	grep -E '^[[:space:]]*[0-9]+ - .*\(Skipped\)' "$log" | sed 's/^[[:space:]]*/PKTSTORE-VM:   ctest skipped: /'
	grep -h '^\[SKIP\]' "$RES/lasttest-$name.log" 2>/dev/null | sort | head -60 |
		sed 's/^/PKTSTORE-VM:   /'
	sed -n 's/^ *[0-9]*\/[0-9]* Test *#[0-9]*: \([^ ]*\) .* \([0-9.]*\) sec$/\2 \1/p' "$log" |
		sort -rn | head -6 | awk '{ printf "%s %.0fs", (NR > 1 ? "," : "PKTSTORE-VM:   slowest:"), $1; printf " %s", $2 } END { print "" }'
	[ $rc -eq 0 ] || failed=1
}

# demo NAME [WRAPPER...]: the library's crash demo on the DAX mount; its
# receive path and granularity lines are the guest's.
demo() {
	local name=$1 log=$RES/$1.log rc
	shift
	rm -f $DAX/demo.arena
	# The kill comes at half the stream once something was acknowledged,
	# or at --ms: 1500 ms (the default) times the slow-machine factor.
	# Under TCG the first store to each page of a fresh arena on DAX
	# faults for 30-60 us, and once, at 1500 ms, the server had persisted
	# 256 records and acknowledged none yet (the verdict then is FAILED).
	"$@" "$BUILD/examples/demo/pktstore-demo" --arena $DAX/demo.arena \
		--ms $((1500 * PKTSTORE_TEST_TIME_SCALE)) >"$log" 2>&1
	rc=$?
	say "RUN $name rc=$rc"
	grep -E '^(receive path|granularity|verdict) ' "$log" | sed 's/^/PKTSTORE-VM:   /'
	if [ -x "$BUILD/tools/pktstore" ] && [ -e $DAX/demo.arena ]; then
		"$BUILD/tools/pktstore" info $DAX/demo.arena >"$RES/$name-info.log" 2>&1
		grep -iE 'granularity|receive' "$RES/$name-info.log" | sed 's/^ */PKTSTORE-VM:   info: /'
	fi
	[ $rc -eq 0 ] || failed=1
}

kvdemo() {
	local name=$1 log=$RES/$1.log rc
	shift
	KV_TEST_DIR=$DAX/kv "$@" "$SRC/examples/kv/demo.sh" "$BUILD/examples/kv/pktstore-kv" \
		"$BUILD/examples/kv/kv_load" >"$log" 2>&1
	rc=$?
	say "RUN $name rc=$rc"
	grep -iE 'receive path|granularity|verdict|FAIL' "$log" | sed 's/^ */PKTSTORE-VM:   /'
	[ $rc -eq 0 ] || failed=1
}

# What a run leaves out, and why. The medium: the power-loss test runs
# apart, its receive-path workloads (powerfail-ci), the command-line tool
# reads arenas the demo wrote, the parsers have no arena, and the kv
# server reaches the medium only through the library calls its tests cover
# (the kv demo runs at each granularity).
# io_uring refused: the power-loss workloads that do not need io_uring force
# recv and ran in the full suite, the kv damage campaign damages stopped
# arenas, whatever the path, and kv.e2e.full.uring-fixed asks for io_uring.
MEDIUM_EXCLUDE='-^(powerfail|cli|kv\..*)$'
NO_URING_EXCLUDE='-^(powerfail|kv\.parser\..*|kv\.e2e\.campaign|kv\.e2e\.full\.uring-fixed)$'
# The bounded runs (VM_SCOPE=ci): what the medium and the kernel can change
# in the least time. The Criterion suites, the adapters and distinct-stores
# (every receive path the kernel has, on DAX), kv.e2e.overwrite (the kv
# server under load through pktstore_fd(): it crawled on 6.12 when the fd
# missed wake-ups), and the power-loss workloads of the receive paths.
CI_EXCLUDE='-^(powerfail|cli|kv\..*)$'
CI_KV='+^kv\.e2e\.overwrite$'
CI_POWERFAIL='powerfail/@(recv|uring_inc|uring_fixed|full)'
NO_URING="$BUILD/vm/no-uring"

# powerfail NAME FILTER: the power-loss test's cases FILTER picks (a
# Criterion --filter), with PKTSTORE_POWERFAIL_POINTS=POINTS (split among the
# seven workloads, at least 20 each).
powerfail() {
	local name=$1 log=$RES/$1.log t0 rc cpass cskip cfail
	t0=$(date +%s)
	"$BUILD/tests/test_powerfail" --jobs 1 --filter "$2" >"$log" 2>&1
	rc=$?
	cpass=$(grep -c '^\[PASS\]' "$log")
	# The cases FILTER leaves out are reported as skipped and disabled.
	cskip=$(grep '^\[SKIP\]' "$log" | grep -vc 'Test is disabled$')
	cfail=$(grep -cE '^\[(FAIL|CRASH)\]|^\[----\].*(FAIL|CRASH)' "$log")
	say "RUN $name rc=$rc time=$(($(date +%s) - t0))s cases $2, PKTSTORE_POWERFAIL_POINTS=$POINTS (at least 20 crash points a workload): ${cpass} passed, ${cskip} skipped, ${cfail} failed"
	grep -h '^\[SKIP\]' "$log" | grep -v 'Test is disabled$' | sed 's/^/PKTSTORE-VM:   /'
	grep -E '^\[(FAIL|CRASH)\]|Assertion Failed' "$log" | head -10 | sed 's/^/PKTSTORE-VM:   /'
	[ $rc -eq 0 ] && [ "$cpass" -gt 0 ] || failed=1
}
for run in $RUNS; do
	case $run in
	suite) suite suite "" ;;
	suite-ci) suite suite-ci "$CI_EXCLUDE" ;;
	kv-ci) suite kv-ci "$CI_KV" ;;
	powerfail-ci) powerfail powerfail-ci "$CI_POWERFAIL" ;;
	suite-no-uring-ci) suite suite-no-uring-ci "$CI_EXCLUDE" "$NO_URING" ;;
	suite-medium) suite suite-medium "$MEDIUM_EXCLUDE" ;;
	suite-no-uring) suite suite-no-uring "$NO_URING_EXCLUDE" "$NO_URING" ;;
	suite-no-uring-all) suite suite-no-uring-all "" "$NO_URING" ;;
	demo) demo demo ;;
	demo-no-uring) demo demo-no-uring "$NO_URING" ;;
	kv-demo) kvdemo kv-demo ;;
	kv-demo-no-uring) kvdemo kv-demo-no-uring "$NO_URING" ;;
	script=*)
		# script=FILE: a script of one's own on the DAX mount (SRC, BUILD,
		# RES and DAX exported); its "PKTSTORE-VM: " lines are shown.
		local f=${run#script=} log=$RES/script-$(basename "${run#script=}").log rc
		SRC=$SRC BUILD=$BUILD RES=$RES DAX=$DAX bash "$f" >"$log" 2>&1
		rc=$?
		say "RUN script $f rc=$rc"
		grep '^PKTSTORE-VM: ' "$log"
		[ $rc -eq 0 ] || failed=1 ;;
	*) say "ERROR: unknown run '$run'"; failed=1 ;;
	esac
done
umount "$BUILD/Testing" 2>/dev/null
umount $DAX
say "DONE failed=$failed"
return $failed
}
# One line: bash reads it whole before main runs, so an edit of this file
# during a run cannot change what follows.
main "$@"; exit $?
