#!/usr/bin/env bash
# make test-vm: the test suite where users run it, on real DAX and on
# Debian 12's own kernels. Each kernel (Debian's packages, downloaded and
# unpacked, never installed) boots under QEMU (TCG) with an emulated NVDIMM;
# the guest mounts the host's root read-only over virtio-9p, so it runs the
# very binaries built here, makes an fsdax namespace, mounts ext4 -o dax and
# runs, with every arena on that mount:
#   cache-line boot: the whole suite, pktstore-demo and the pktstore-kv demo
#   byte boot:       (nvdimm-persistence=cpu, the eADR case) the tests the
#                    medium can change and the receive paths' power-loss
#                    workloads, then the suite with io_uring refused
#                    (a seccomp filter, as Docker's default profile refuses
#                    it) but what cannot see the receive path, and both
#                    demos with and without io_uring
# It prints each guest's receive path, granularity and suite time, and exits
# non-zero if any run failed, 77 if QEMU cannot run here at all. Leave BUILD
# alone while it runs: the guests cache the host's files (9p cache=loose)
# and a rebuild mid-run mixes old and new binaries; BUILD=build-vm keeps it
# apart from a build/ others rebuild.
#
# Environment:
#   KERNELS   Debian 12 kernels to boot (default "6.1 6.12"): 6.1 is
#             bookworm's linux-image-amd64, 6.12 is linux-image-6.12-amd64
#             (bookworm-security) or, failing that, the bookworm-backports
#             kernel; a package name linux-image-...-amd64 names one exactly
#   MODES     "cacheline byte" (default), or either alone
#   BUILD     build directory (default build; built if needed)
#   PKTSTORE_POWERFAIL_POINTS   power-loss points in the guest (default 60:
#             under TCG 140 took 550 s; make test runs 1400 on the host)
#   PKTSTORE_TEST_TIME_SCALE    multiplies the time limits of the tests that
#             have them (ctest's for the kv tests, set when configuring BUILD,
#             and the kv scripts' own; default 8: TCG runs ~10x slower)
#   VM_CPUS, VM_MEM             guest CPUs (default 2), memory (default 2G)
#   VM_CACHE  where kernels and initramfs images are kept (/var/tmp/pktstore-vm)
#   VM_QEMU   the QEMU binary (default qemu-system-x86_64)
#   VM_BOOT_TIMEOUT             seconds one boot may take (default 5400: the
#             6.1 byte guest runs three suites, the recv(2) one alone over
#             30 minutes under TCG; 2400 cut it off on 2026-12-06)
#   VM_CTEST_ARGS               extra ctest arguments in the guest (e.g. -R roundtrip)
#   VM_SCOPE  what each boot runs (boot() lists it): "default"; "full", the
#             whole suite in all three runs; "ci", the bounded runs .ci/run
#             makes (the Criterion suites, kv.e2e.overwrite and the receive
#             paths' power-loss workloads at cache-line granularity, the
#             Criterion suites with io_uring refused at byte granularity,
#             both demos in each)
#   VM_RUNS   what each guest runs instead (words of scripts/vm/guest.sh:
#             suite, suite-medium, suite-no-uring, suite-no-uring-all,
#             suite-ci, kv-ci, powerfail-ci, suite-no-uring-ci, demo,
#             demo-no-uring, kv-demo, kv-demo-no-uring, script=FILE)
# Everything is in main, read whole before it runs.
main() {
set -uo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd -P)

KERNELS=${KERNELS:-6.1 6.12}
MODES=${MODES:-cacheline byte}
BUILD=${BUILD:-build}
POINTS=${PKTSTORE_POWERFAIL_POINTS:-60}
# Exported: the build below configures ctest's limits with it.
export PKTSTORE_TEST_TIME_SCALE=${PKTSTORE_TEST_TIME_SCALE:-8}
VM_CPUS=${VM_CPUS:-2}
VM_MEM=${VM_MEM:-2G}
VM_CACHE=${VM_CACHE:-/var/tmp/pktstore-vm}
VM_BOOT_TIMEOUT=${VM_BOOT_TIMEOUT:-5400}
VM_SCOPE=${VM_SCOPE:-default}
case $VM_SCOPE in
default | full | ci) ;;
*) echo "test-vm: ERROR: VM_SCOPE=$VM_SCOPE: use default, full or ci"; exit 2 ;;
esac
QEMU=${VM_QEMU:-qemu-system-x86_64}

say() { echo "test-vm: $*"; }
skip() {
	say "SKIP: $*"
	exit 77
}
die() {
	say "ERROR: $*"
	exit 1
}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
APT_UPDATED=
apt_update() {
	[ -n "$APT_UPDATED" ] && return 0
	$SUDO apt-get update -qq || return 1
	APT_UPDATED=1
}

# --- what the host needs ---------------------------------------------------
# A package that cannot be installed is named by the checks below: QEMU
# missing is a skip, the rest an error.
./scripts/install-deps.sh --vm || say "installing the packages the build and the VM run need failed"
command -v $QEMU >/dev/null || skip "$QEMU is not installed and could not be (package qemu-system-x86)"
[ -x /bin/busybox ] && /bin/busybox --list | grep -x insmod >/dev/null ||
	die "busybox-static is needed for the guest's initramfs"
[ -x /sbin/depmod ] || die "depmod (package kmod) is needed to read a kernel package's modules"
command -v ndctl >/dev/null || die "ndctl is needed in the guest (it runs the host's)"

# --- can QEMU run here at all? ---------------------------------------------
# The machine the guests get, without a kernel: a configuration QEMU cannot
# start (no TCG, no memory, no nvdimm support) is a skip that says why.
preflight=$(mktemp -d /tmp/pktstore-vm-preflight.XXXXXX)
truncate -s 64M "$preflight/nv"
if ! printf 'quit\n' | timeout 60 $QEMU -accel tcg -nodefaults -no-user-config -display none \
	-machine pc,nvdimm=on -m 256M,slots=2,maxmem=2G \
	-object memory-backend-file,id=m1,share=on,mem-path="$preflight/nv",size=64M \
	-device nvdimm,id=n1,memdev=m1 \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	-S -monitor stdio >"$preflight/out" 2>&1; then
	reason=$(grep -v '^(qemu)\|^QEMU [0-9].*monitor' "$preflight/out" | tail -3 | tr '\n' ' ')
	rm -rf "$preflight"
	skip "QEMU cannot start the guest machine here: ${reason:-no reason given}"
fi
rm -rf "$preflight"

# --- the build the guests run ----------------------------------------------
make --no-print-directory build BUILD="$BUILD" >/tmp/pktstore-vm-build.$$.log 2>&1 || {
	tail -30 /tmp/pktstore-vm-build.$$.log
	rm -f /tmp/pktstore-vm-build.$$.log
	die "the build failed"
}
rm -f /tmp/pktstore-vm-build.$$.log
BUILD=$(cd "$BUILD" && pwd -P)
mkdir -p "$BUILD/vm" "$BUILD/Testing"
cc -O2 -Wall -Wextra -Werror -o "$BUILD/vm/no-uring" tests/vm/no-uring.c || die "building no-uring failed"

# --- kernels ---------------------------------------------------------------
mkdir -p "$VM_CACHE" || die "cannot create $VM_CACHE"
chmod 755 "$VM_CACHE"
# One run at a time per VM_CACHE: a second would unpack the same kernels
# and delete the first's NVDIMM images and logs.
exec 9>"$VM_CACHE/.lock"
flock -n 9 || die "another make test-vm is running with VM_CACHE=$VM_CACHE; wait for it, or give this one its own VM_CACHE"

have_pkg() { apt-cache show "$1" >/dev/null 2>&1; }
dep_of() { apt-cache depends --no-recommends --no-suggests "$1" 2>/dev/null | awk '/ Depends: linux-image-/ { print $2; exit }'; }
newest() { apt-cache pkgnames linux-image- 2>/dev/null | grep -E "$1" | sort -V | tail -1; }

# The kernel package a KERNELS word names.
resolve_kernel() {
	local p=
	case $1 in
	linux-image-*) p=$1 ;;
	6.1) p=$(dep_of linux-image-amd64)
		case $p in linux-image-6.1.*) ;; *) p=$(newest '^linux-image-6\.1\.0-[0-9]+-amd64$') ;; esac ;;
	6.12)
		p=$(dep_of linux-image-6.12-amd64)
		[ -n "$p" ] || p=$(newest '^linux-image-6\.12\.[0-9]+\+(deb12|bpo)-amd64$')
		if [ -z "$p" ]; then
			# Not in bookworm or bookworm-security: bookworm-backports has it.
			local list=/etc/apt/sources.list.d/pktstore-vm-bookworm-backports.list
			if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
				say "adding bookworm-backports to apt's sources ($list) for the 6.12 kernel" >&2
				echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee $list >/dev/null
			fi
			APT_UPDATED=
			apt_update >&2
			p=$(newest '^linux-image-6\.12\.[0-9]+\+(deb12|bpo)-amd64$')
		fi ;;
	*) p=$(newest "^linux-image-$(printf %s "$1" | sed 's/\./\\./g')[.-].*amd64$") ;;
	esac
	[ -n "$p" ] && printf '%s\n' "$p"
}

# The unpacked kernel package, downloaded once: prints its directory.
fetch_kernel() {
	local pkg=$1 dir=$VM_CACHE/$1
	if [ ! -e "$dir/.unpacked" ]; then
		rm -rf "$dir" && mkdir -p "$dir/deb" || return 1
		(cd "$dir/deb" && apt-get download "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed') >&2
		ls "$dir"/deb/*.deb >/dev/null 2>&1 || return 1
		dpkg-deb -x "$dir"/deb/*.deb "$dir/root" || return 1
		# modules.dep is made at install time, by depmod: make it here.
		depmod -b "$dir/root" "$(ls "$dir/root/lib/modules" | head -1)" || return 1
		rm -rf "$dir/deb"
		touch "$dir/.unpacked"
	fi
	printf '%s\n' "$dir"
}

# The initramfs for an unpacked kernel: busybox, scripts/vm/init and the
# modules the guest needs with everything they depend on (modules.dep),
# decompressed, in load order. Rebuilt when init or this script changes.
GUEST_MODULES="virtio_pci 9pnet_virtio 9p nfit nd_pmem nd_btt dax_pmem crc32c_generic crc32c_intel ext4"
make_initramfs() {
	local kdir=$1 kver mdir out stamp
	kver=$(ls "$kdir/root/lib/modules" | head -1)
	mdir=$kdir/root/lib/modules/$kver
	out=$kdir/initramfs.gz
	stamp=$(cat scripts/vm/init "$0" /bin/busybox | md5sum | cut -d' ' -f1)
	if [ -e "$out" ] && [ "$(cat "$kdir/initramfs.stamp" 2>/dev/null)" = "$stamp" ]; then
		printf '%s\n' "$out"
		return 0
	fi
	local tree=$kdir/initramfs.tree
	rm -rf "$tree" && mkdir -p "$tree"/{bin,dev,proc,sys,tmp,newroot,lib/modules} || return 1
	cp /bin/busybox "$tree/bin/busybox" && cp scripts/vm/init "$tree/init" && chmod 755 "$tree/init" || return 1
	# name -> path, and the load order by depth-first walk of modules.dep.
	awk -v want="$GUEST_MODULES" '
		function base(p) { sub(/.*\//, "", p); sub(/\.ko(\.(xz|zst|gz))?$/, "", p); gsub(/-/, "_", p); return p }
		FILENAME ~ /modules\.builtin$/ { builtin[base($1)] = 1; next }
		{ f = $1; sub(/:$/, "", f); path[base(f)] = f; deps[f] = "" ;
		  for (i = 2; i <= NF; i++) deps[f] = deps[f] " " $i }
		function load(f,   n, d, i) {
			if (f in done) return; done[f] = 1
			n = split(deps[f], d, " ")
			for (i = n; i >= 1; i--) load(d[i])
			print f
		}
		END { n = split(want, w, " ")
		      for (i = 1; i <= n; i++) if (w[i] in path) load(path[w[i]]); else if (!(w[i] in builtin)) print w[i] > "/dev/stderr" }
	' "$mdir/modules.builtin" "$mdir/modules.dep" >"$kdir/modules.list" 2>"$kdir/modules.missing" || return 1
	: >"$tree/modules.order"
	local m dst
	while read -r m; do
		dst=${m%.xz}; dst=${dst%.zst}; dst=${dst%.gz}
		mkdir -p "$tree/lib/modules/$(dirname "$dst")"
		case $m in
		*.xz) xz -dc "$mdir/$m" >"$tree/lib/modules/$dst" ;;
		*.zst) zstd -qdc "$mdir/$m" >"$tree/lib/modules/$dst" ;;
		*.gz) gzip -dc "$mdir/$m" >"$tree/lib/modules/$dst" ;;
		*) cp "$mdir/$m" "$tree/lib/modules/$dst" ;;
		esac || return 1
		echo "$dst" >>"$tree/modules.order"
	done <"$kdir/modules.list"
	(cd "$tree" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp" && mv "$out.tmp" "$out" || return 1
	rm -rf "$tree"
	echo "$stamp" >"$kdir/initramfs.stamp"
	printf '%s\n' "$out"
}

# --- one boot --------------------------------------------------------------
QEMU_PID=
RUNDIR=
cleanup() {
	if [ -n "$QEMU_PID" ]; then
		kill "$QEMU_PID" 2>/dev/null
		sleep 1
		kill -9 "$QEMU_PID" 2>/dev/null
		wait "$QEMU_PID" 2>/dev/null
	fi
	[ -n "$RUNDIR" ] && rm -f "$RUNDIR"/*/nvdimm.img
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# RUNDIR/KERNEL-MODE per boot, replaced when that boot runs again: the
# logs of the other kernels' last boots stay.
RUNDIR=$VM_CACHE/run
mkdir -p "$RUNDIR" || die "cannot create $RUNDIR"
declare -a SUMMARY=()
status=0

# boot LABEL KDIR INITRAMFS MODE
boot() {
	local label=$1 kdir=$2 initrd=$3 mode=$4 res=$RUNDIR/$1 machine=pc,nvdimm=on runs
	local kernel
	kernel=$(ls "$kdir"/root/boot/vmlinuz-* | head -1)
	rm -rf "$res" && mkdir -p "$res" && chmod 777 "$res" || die "cannot create $res"
	# default: the whole suite once per kernel, at cache-line granularity;
	# at byte granularity what the medium can change, and with io_uring
	# refused what the receive path can (scripts/vm/guest.sh says what each
	# leaves out). full: the whole suite all three times. ci: the bounded
	# subset (guest.sh, CI_*), the io_uring-refused half at byte granularity.
	case $mode:$VM_SCOPE in
	cacheline:default) runs="suite demo kv-demo" ;;
	cacheline:full) runs="suite suite-no-uring-all demo kv-demo" ;;
	cacheline:ci) runs="suite-ci kv-ci powerfail-ci demo kv-demo" ;;
	byte:default) runs="suite-medium powerfail-ci suite-no-uring demo demo-no-uring kv-demo kv-demo-no-uring" ;;
	byte:full) runs="suite demo" ;;
	byte:ci) runs="suite-no-uring-ci demo demo-no-uring kv-demo-no-uring" ;;
	*) die "MODES: unknown mode '$mode' (cacheline, byte)" ;;
	esac
	[ "$mode" = byte ] && machine=$machine,nvdimm-persistence=cpu
	cat >"$res/config.sh" <<-EOF
	GUEST_SCRIPT='$SRC/scripts/vm/guest.sh'
	SRC='$SRC'
	BUILD='$BUILD'
	RUNS='${VM_RUNS:-$runs}'
	POINTS='$POINTS'
	TIME_SCALE='$PKTSTORE_TEST_TIME_SCALE'
	RES=/tmp/results
	CTEST_ARGS='${VM_CTEST_ARGS:-}'
	EOF
	truncate -s 1G "$res/nvdimm.img"
	say "booting $label: $(basename "$kernel"), $VM_CPUS CPUs, $machine (log: $res/console.log)"
	local t0=$(date +%s)
	timeout --kill-after=10 "$VM_BOOT_TIMEOUT" $QEMU -accel tcg -cpu max -smp "$VM_CPUS" \
		-nodefaults -no-user-config -display none -monitor none -no-reboot \
		-machine $machine -m "$VM_MEM",slots=2,maxmem=8G \
		-object memory-backend-file,id=m1,share=on,mem-path="$res/nvdimm.img",size=1G \
		-device nvdimm,id=n1,memdev=m1 \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		-virtfs local,path="$res",mount_tag=results,security_model=none \
		-kernel "$kernel" -initrd "$initrd" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off rdinit=/init" \
		-serial stdio </dev/null >"$res/console.log" 2>&1 &
	QEMU_PID=$!
	# The guest's lines as they come, in the background: bash runs a trap
	# (TERM from CI's time limit, INT) only once a foreground command ends,
	# but at once during wait, so the cleanup stops QEMU without delay.
	tail -n +1 -F --pid=$QEMU_PID "$res/console.log" 2>/dev/null |
		sed -un "s/\r//; s/^PKTSTORE-VM: /  $label: /p" &
	local shown=$!
	wait $QEMU_PID
	local qrc=$? t1=$(date +%s)
	wait $shown
	QEMU_PID=
	rm -f "$res/nvdimm.img"
	local done_line
	done_line=$(grep -a '^PKTSTORE-VM: DONE' "$res/console.log" | tr -d '\r' | tail -1)
	local verdict
	if [ $qrc -eq 124 ] || [ $qrc -eq 137 ]; then
		verdict="FAIL (no end within ${VM_BOOT_TIMEOUT}s)"
	elif [ "$done_line" = "PKTSTORE-VM: DONE failed=0" ]; then
		verdict=ok
	elif [ -n "$done_line" ]; then
		verdict=FAIL
	else
		verdict="FAIL (the guest stopped before its end: qemu exit $qrc; see $res/console.log)"
		grep -a -iE 'panic|error|qemu' "$res/console.log" | tail -5 | sed 's/^/    /'
	fi
	[ "$verdict" = ok ] || status=1
	# One summary line per run: kernel, mode, path, granularity, time, counts.
	local path gran
	path=$(grep -a 'PKTSTORE-VM:   receive path' "$res/console.log" | head -1 | tr -d '\r' | sed 's/.*receive path *//')
	gran=$(grep -a 'PKTSTORE-VM:   granularity' "$res/console.log" | head -1 | tr -d '\r' | sed 's/.*granularity *//')
	SUMMARY+=("$label: $verdict in $((t1 - t0))s; receive path ${path:-?}; granularity ${gran:-?}")
	while read -r l; do
		SUMMARY+=("    $l")
	done < <(grep -a '^PKTSTORE-VM: RUN ' "$res/console.log" | tr -d '\r' | sed 's/^PKTSTORE-VM: RUN //')
}

# A machine that never ran apt-get update knows no kernel packages.
have_pkg linux-image-amd64 || apt_update || die "apt-get update failed: the kernels come from Debian's archive"
for k in $KERNELS; do
	pkg=$(resolve_kernel "$k")
	[ -n "$pkg" ] || { say "no Debian kernel package for '$k'"; SUMMARY+=("$k: FAIL (no such kernel package)"); status=1; continue; }
	kdir=$(fetch_kernel "$pkg") || { say "downloading $pkg failed"; SUMMARY+=("$k: FAIL (download of $pkg)"); status=1; continue; }
	initrd=$(make_initramfs "$kdir") || { say "building the initramfs for $pkg failed"; status=1; continue; }
	[ -s "$kdir/modules.missing" ] && say "$pkg lacks modules: $(tr '\n' ' ' <"$kdir/modules.missing")"
	for mode in $MODES; do
		boot "$k-$mode" "$kdir" "$initrd" "$mode"
	done
done

echo
say "summary (logs in $RUNDIR):"
printf '  %s\n' "${SUMMARY[@]}"
[ $status -eq 0 ] && say "all runs passed" || say "FAILED"
return $status
}
# One line: bash reads it whole before main runs, so an edit of this file
# during a run cannot change what follows.
main "$@"; exit $?
