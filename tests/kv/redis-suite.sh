#!/bin/bash
# Redis's own test suite against pktstore-kv, in its external mode.
#
#   tests/kv/redis-suite.sh REDIS_SOURCE_TREE PKTSTORE_KV [UNIT...]
#
# REDIS_SOURCE_TREE is a checkout or export of the redis repository (its
# tests/, runtest and src/commands/; release 7.0.15 is the one measured);
# nothing of it is part of this project, and this script changes only a
# temporary copy: the suite's client gets one hook that logs, for every
# command a test sends, the test's name (set KV_SUITE_CMDLOG to use it
# alone). The units default to those that cover the commands
# examples/kv/README.md lists.
#
# The suite runs with --singledb --durable (a failing test does not stop
# the run) and without the tests tagged needs:repl (they read the
# replication stream, which pktstore-kv has not). External mode sends
# FUNCTION FLUSH before each unit; pktstore-kv answers it (it has no
# functions).
#
# A test "uses only supported commands" when every command it sent is one
# pktstore-kv supports, or one Redis does not know either (a test of the
# unknown-command error); for CONFIG, CLIENT, COMMAND, FUNCTION, OBJECT,
# DEBUG and the other containers the subcommand counts. HELLO 3 (RESP3) and
# EVAL, EVALSHA and SCRIPT (pktstore-kv recognises a few scripts, runs no
# Lua) do not count as supported. What a test sent is taken from two runs:
# the one against pktstore-kv, and, when redis-server is on PATH (or
# KV_SUITE_REDIS_SERVER names one; "none": no such run), the same run
# against it first, since a test that fails early against pktstore-kv may
# not have sent everything (without it, such tests count as failures).
# The table gives, per unit, passed / failed / total among those tests,
# and passed / total among all tests run, for both servers; every failing
# supported test is listed with its error.
set -u
TREE=${1:?usage: redis-suite.sh REDIS_SOURCE_TREE PKTSTORE_KV [UNIT...]}
KV=${2:?usage: redis-suite.sh REDIS_SOURCE_TREE PKTSTORE_KV [UNIT...]}
shift 2
UNITS=("$@")
[ ${#UNITS[@]} -eq 0 ] && UNITS=(protocol keyspace info-command type/string type/incr quit other
	scan expire multi)
for need in tclsh redis-cli python3; do
	command -v $need >/dev/null || { echo "redis-suite: $need is needed" >&2; exit 2; }
done
[ -x "$TREE/runtest" ] && [ -d "$TREE/tests/unit" ] && [ -d "$TREE/src/commands" ] ||
	{ echo "redis-suite: $TREE is not a Redis source tree (runtest, tests/, src/commands/)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kv-redis-suite.XXXXXX")
SERVER_PID=
cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

# The suite, copied; its client logs the commands of each test.
cp -r "$TREE/tests" "$TREE/runtest" "$WORK/" && mkdir -p "$WORK/src"
python3 - "$WORK/tests/support/redis.tcl" <<'EOF' || exit 2
import sys
p = sys.argv[1]
s = open(p).read()
anchor = "    if {[info command ::redis::__method__$method] eq {}} {\n"
hook = anchor + """        if {[info exists ::env(KV_SUITE_CMDLOG)] && [info exists ::cur_test] && $::cur_test ne ""} {
            set kvsub [string tolower [lindex $argv 0]]
            if {!([string tolower $method] eq "debug" && $kvsub eq "log")} {
                set kvlf [open $::env(KV_SUITE_CMDLOG) a]
                puts $kvlf "$::cur_test\\t[string tolower $method]\\t$kvsub"
                close $kvlf
            }
        }
"""
if s.count(anchor) != 1:
    sys.exit("redis-suite: the suite's client is not the expected one (tests/support/redis.tcl)")
open(p, "w").write(s.replace(anchor, hook))
EOF

ARENA="${KV_SUITE_ARENA_DIR:-/dev/shm}/kv-redis-suite.$$.arena"
trap 'cleanup; rm -f "$ARENA"' EXIT
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
args=()
for u in "${UNITS[@]}"; do args+=(--single "unit/$u"); done
suite() { # PORT NAME: the run's output in $WORK/NAME.log, its commands in $WORK/NAME.cmds
	(cd "$WORK" && KV_SUITE_CMDLOG="$WORK/$2.cmds" timeout "${KV_SUITE_TIMEOUT:-1800}" \
		./runtest --host 127.0.0.1 --port "$1" --singledb --durable --tags -needs:repl \
		--timeout 120 "${args[@]}") 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >"$WORK/$2.log"
	touch "$WORK/$2.cmds"
}

REF=${KV_SUITE_REDIS_SERVER:-$(command -v redis-server)}
if [ -n "$REF" ] && [ "$REF" != none ]; then
	rport=$(free_port)
	"$REF" --port "$rport" --bind 127.0.0.1 --save "" --appendonly no \
		--enable-debug-command yes --dir "$WORK" >"$WORK/redis.out" 2>&1 &
	SERVER_PID=$!
	for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
	suite "$rport" reference
	kill "$SERVER_PID"
	wait "$SERVER_PID" 2>/dev/null
	SERVER_PID=
else
	: >"$WORK/reference.log"
	: >"$WORK/reference.cmds"
fi

"$KV" --arena "$ARENA" --size 256M --resp 127.0.0.1:0 --http 127.0.0.1:0 >"$WORK/kv.out" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
	grep -q "RESP on" "$WORK/kv.out" && break
	sleep 0.1
done
KVPORT=$(sed -n 's/.*RESP on [^,]*:\([0-9]*\),.*/\1/p' "$WORK/kv.out")
[ -n "$KVPORT" ] || { cat "$WORK/kv.out"; echo "redis-suite: pktstore-kv did not start" >&2; exit 2; }
redis-cli -p "$KVPORT" command list | sort >"$WORK/supported"
suite "$KVPORT" kv

python3 - "$TREE" "$WORK/supported" "$WORK/kv.log" "$WORK/kv.cmds" "$WORK/reference.log" \
	"$WORK/reference.cmds" <<'EOF'
import collections, glob, json, os, re, sys
tree, supfile, runlog, cmdlog, reflog, refcmds = sys.argv[1:7]
supported = set(l.strip().lower() for l in open(supfile) if l.strip())
supported -= {"eval", "evalsha", "script"}  # a few recognised scripts, no Lua
# Redis's own command names, containers with their subcommands.
redis_cmds, containers = set(), set()
for p in glob.glob(os.path.join(tree, "src/commands/*.json")):
    for name, v in json.load(open(p)).items():
        if "container" in v:
            containers.add(v["container"].lower())
            redis_cmds.add(v["container"].lower() + " " + name.lower())
        else:
            redis_cmds.add(name.lower())
# Subcommands pktstore-kv has (COMMAND DOCS would say; these are the ones it lists).
sub_supported = {"config get", "config set", "config resetstat", "config help",
                 "client id", "client getname", "client setname", "client setinfo",
                 "client list", "client info", "client help", "command count", "command info",
                 "command docs", "command list", "command help", "function flush",
                 "function list", "function help", "script load", "script exists",
                 "script flush", "script help"}
used = collections.defaultdict(set)
for log in (cmdlog, refcmds):
    for line in open(log, errors="replace"):
        f = line.rstrip("\n").split("\t")
        if len(f) < 3:
            continue
        name = f[1] + " " + f[2] if f[1] in containers else f[1]
        if f[1] == "hello" and f[2] == "3":
            name = "hello 3 (resp3)"
            redis_cmds.add(name)
        used[f[0]].add(name)
def unsupported(test):
    bad = []
    for c in used.get(test, ()):
        if c not in redis_cmds:
            continue  # unknown to Redis too: the test checks the error
        if " " in c:
            if c not in sub_supported:
                bad.append(c)
        elif c not in supported:
            bad.append(c)
    return sorted(bad)
def parse(log):
    unit, results, errors, cur_err = None, [], {}, None
    for line in open(log, errors="replace"):
        line = line.rstrip("\n")
        m = re.match(r"^Testing (unit/\S+)", line)
        if m:
            unit = m.group(1)
            continue
        m = re.match(r"^\[(ok|err|exception|skip|ignore)\]: (.*?)( \(\d+ ms\))?$", line)
        if m:
            kind, name = m.group(1), m.group(2)
            if kind in ("skip", "ignore"):
                continue
            if kind == "err" and " in tests/" in name:
                name = name.rsplit(" in tests/", 1)[0]
            results.append((unit, name, kind))
            cur_err = (unit, name) if kind != "ok" else None
            continue
        if cur_err and line.strip() and cur_err not in errors:
            errors[cur_err] = line.strip()[:200]
    return results, errors

def table(results):
    t = collections.OrderedDict()
    for unit, name, kind in results:
        row = t.setdefault(unit, [0, 0, 0, 0, 0])
        bad = unsupported("%s in tests/%s.tcl" % (name, unit))
        ok = kind == "ok"
        row[3] += ok
        row[4] += 1
        if not bad:
            row[0] += ok
            row[1] += not ok
            row[2] += 1
    return t

kv, kv_err = parse(runlog)
ref, _ = parse(reflog)
kt, rt = table(kv), table(ref)
print("%-18s %-33s %-18s | %s" % ("unit", "pktstore-kv, supported-only:", "pktstore-kv, all:",
                                   "redis-server, supported-only / all" if ref else ""))
print("%-18s %-33s %-18s |" % ("", "passed / failed / total", "passed / total"))
tot, rtot = [0] * 5, [0] * 5
for unit, row in kt.items():
    tot = [a + b for a, b in zip(tot, row)]
    r = rt.get(unit)
    if r:
        rtot = [a + b for a, b in zip(rtot, r)]
    print("%-18s %8d / %d / %-18d %6d / %-9d | %s" % (unit, row[0], row[1], row[2], row[3], row[4],
          "%d/%d passed, %d/%d" % (r[0], r[2], r[3], r[4]) if r else ""))
print("%-18s %8d / %d / %-18d %6d / %-9d | %s" % ("total", tot[0], tot[1], tot[2], tot[3], tot[4],
      "%d/%d passed, %d/%d" % (rtot[0], rtot[2], rtot[3], rtot[4]) if ref else ""))
if tot[2]:
    print("pktstore-kv passes %.1f%% of the tests that use only supported commands" %
          (100.0 * tot[0] / tot[2]))
for unit, name, kind in kv:
    if kind != "ok" and not unsupported("%s in tests/%s.tcl" % (name, unit)):
        print("FAILED %s: %s: %s" % (unit, name, kv_err.get((unit, name), "")))
EOF
[ -n "${KV_SUITE_KEEP:-}" ] && cp "$WORK"/*.log "$WORK"/*.cmds "$KV_SUITE_KEEP"/ 2>/dev/null
grep -q "\[ok\]" "$WORK/kv.log" || { tail -30 "$WORK/kv.log"; exit 1; }
exit 0
