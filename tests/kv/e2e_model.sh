#!/bin/bash
# The campaign's checker (kv_load campaign PORT 0 STATEFILE 0), given model
# files written by hand against states set with redis-cli: it must reject
# a state the model does not allow and take the one it does, whenever the
# check runs. Every case is decided by the model alone (expiry bounds that
# hold for the whole test), so none depends on timing.
#
# ce:48 is an expiring key of the campaign; its value of 1 byte for any
# generation is "4" (the first byte of its tag "48@GEN/1:").
. "$(dirname "$0")/lib.sh" "$@"
need timeout redis-cli

start_server --size 8M
ms() { date +%s%3N; }

# model FILE PRESENT GEN SIZE LO HI PEND: ce:48's line (the other keys absent).
model() {
	echo "48 $2 $3 $4 0 $5 $6 $7 $(($3 + 1)) $4 0 0" >"$1"
}
# check FILE: run the checker; its output in $WORK/check.out.
check() {
	tmo 30 "$LOAD" campaign "$RESP_PORT" 0 "$1" 0 >"$WORK/check.out" 2>&1
}
# model_expiry FILE: ce:48's "LO HI" as the checker saved them.
model_expiry() {
	awk '$1 == 48 { print $6, $7 }' "$1"
}

P_PERSIST=6
now=$(ms)
# A time that was possibly up already and surely not for long: any check
# during this test lies within its slack on both sides.
lo=$((now - 1000)) hi=$((now + 600000))

# 1. Acknowledged with a time, served without one: the time was lost.
rcli set ce:48 4 >/dev/null
model "$WORK/m1" 1 7 1 $lo $hi 0
check "$WORK/m1" && fail "a key served with no time passed for one acknowledged with a time (PTTL -1 taken for a time within the bounds): $(cat "$WORK/check.out")"
grep -q "PTTL -1" "$WORK/check.out" || fail "case 1: the checker did not say why: $(cat "$WORK/check.out")"

# 2. The same with a PERSIST in flight: it applied, and the model must
# take its state (no time), or a later check, once the time is surely up,
# would find the key and fail.
model "$WORK/m2" 1 7 1 $lo $hi $P_PERSIST
check "$WORK/m2" || fail "the in-flight PERSIST's state was refused: $(cat "$WORK/check.out")"
expect_eq "model after an in-flight PERSIST that applied" "$(model_expiry "$WORK/m2")" "0 0"

# 3. A PERSIST in flight that did not apply: the key keeps its time, and
# so does the model.
rcli set ce:48 4 pxat $((now + 300000)) >/dev/null
model "$WORK/m3" 1 7 1 $lo $hi $P_PERSIST
check "$WORK/m3" || fail "the acknowledged state with its time was refused: $(cat "$WORK/check.out")"
expect_eq "model after an in-flight PERSIST that did not apply" "$(model_expiry "$WORK/m3")" "$lo $hi"

# 4. No time acknowledged, served with one.
model "$WORK/m4" 1 7 1 0 0 0
check "$WORK/m4" && fail "a key served with a time passed for one acknowledged without: $(cat "$WORK/check.out")"

# 5. Acknowledged with a time, served without one, with a SET PX in flight
# whose time is as wide: neither state has no time.
rcli set ce:48 4 >/dev/null
echo "48 1 7 1 0 $lo $hi 5 8 1 $lo 0" >"$WORK/m5"
check "$WORK/m5" && fail "a key served with no time passed for an in-flight SET PX: $(cat "$WORK/check.out")"

stop_server_clean
echo PASS
