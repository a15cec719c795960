#!/usr/bin/env bash
# `kiln db` end to end: import, export, stats, merge, prune, and the errors
# for bad exports and files that are not kiln records databases.
# usage: test_db.sh KILN
set -u
KILN=$1
. "$(dirname "$0")/expect.sh"

# record HASH STATUS MEDIAN TRIAL: one export line
record() {
  local median=$3 err=""
  [ "$2" = ok ] || { median=null; err="failed: \\\"quoted\\\"\\n2nd line"; }
  printf '{"workload":{"hash":"%s","ops":"MatMul","description":"C[i, j] = sum(k) (A[i, k] * B[k, j])"},' "$1"
  printf '"target":"kind=cpu\\nllvm.cpu=znver4\\nllvm.version=19.1.7\\n","trace":"split C.i %s","knobs":"tile_i=%s",' "$4" "$4"
  printf '"median_s":%s,"spread_s":null,"compile_s":0.5,"n_repeats":10,"status":"%s","error":"%s",' "$median" "$2" "$err"
  printf '"time":%s,"kiln_version":"0.1.0","seed":1,"trial":%s}\n' "$((1700000000 + $4))" "$4"
}

{
  echo '{"kiln_records":1}'
  record 00000000000000a1 ok 0.003 1
  record 00000000000000a1 ok 0.001 2
  record 00000000000000a1 ok 0.002 3
  record 00000000000000a1 crash 0 4
  record 00000000000000b2 ok 0.0005 5
  record 00000000000000b2 wrong 0 6
} >"$TMP/a.jsonl"

expect 2 "usage: kiln db" -- "$KILN" db
expect 2 "usage: kiln db" -- "$KILN" db frob "$TMP/x.db"

# import twice: the second adds nothing
expect 0 "imported 6 records .*\(0 already there\)" -- "$KILN" db import "$TMP/a.db" "$TMP/a.jsonl"
expect 0 "imported 0 records .*\(6 already there\)" -- "$KILN" db import "$TMP/a.db" "$TMP/a.jsonl"
expect 0 "records +6 \(ok 4, wrong 1, crash 1, timeout 0, oom 0, compile_error 0\)" -- "$KILN" db stats "$TMP/a.db"
expect 0 "best +2 workload/target pairs" -- "$KILN" db stats "$TMP/a.db"
expect 0 "00000000000000a1 .* 4 +3 +1.000 ms +MatMul" -- "$KILN" db stats "$TMP/a.db"
expect 0 "llvm.cpu=znver4" -- "$KILN" db stats "$TMP/a.db"

# export reproduces the input exactly, to a file or stdout
expect 0 "" -- "$KILN" db export "$TMP/a.db" -o "$TMP/a.out.jsonl"
cmp -s "$TMP/a.jsonl" "$TMP/a.out.jsonl" && ok || bad "export differs from the imported file"
"$KILN" db export "$TMP/a.db" >"$TMP/a.stdout.jsonl" && cmp -s "$TMP/a.jsonl" "$TMP/a.stdout.jsonl" && ok ||
  bad "export to stdout differs"
expect 0 "imported 6 records" -- bash -c "\"$KILN\" db import \"$TMP/c.db\" - <\"$TMP/a.jsonl\""

# merge: new records only, and again nothing
{
  echo '{"kiln_records":1}'
  record 00000000000000a1 ok 0.001 2
  record 00000000000000c3 ok 0.004 7
} >"$TMP/b.jsonl"
expect 0 "imported 2" -- "$KILN" db import "$TMP/b.db" "$TMP/b.jsonl"
expect 0 "merged 5 records from .*a.db into .*b.db \(1 already there\)" -- "$KILN" db merge "$TMP/b.db" "$TMP/a.db"
expect 0 "merged 0 records .*\(6 already there\)" -- "$KILN" db merge "$TMP/b.db" "$TMP/a.db"
expect 0 "records +7 " -- "$KILN" db stats "$TMP/b.db"
expect 1 "kiln: .*b.db: merging a database into itself" -- "$KILN" db merge "$TMP/b.db" "$TMP/b.db"

# prune
expect 2 "say what to drop" -- "$KILN" db prune "$TMP/b.db"
expect 2 "--keep-best wants a count" -- "$KILN" db prune "$TMP/b.db" --keep-best 0
expect 0 "pruned 2 records" -- "$KILN" db prune "$TMP/b.db" --failed
expect 0 "pruned 1 records" -- "$KILN" db prune "$TMP/b.db" --keep-best 2
expect 0 "records +4 \(ok 4, " -- "$KILN" db stats "$TMP/b.db"
expect 0 "00000000000000a1 .* 2 +2 +1.000 ms" -- "$KILN" db stats "$TMP/b.db"

# --vacuum gives the space of pruned records back
{
  echo '{"kiln_records":1}'
  for i in $(seq 1 200); do record 00000000000000d4 ok "0.$i" "$i"; done
} >"$TMP/many.jsonl"
sed -i "s/\"trace\":\"split/\"trace\":\"$(printf '%0500d' 0) split/" "$TMP/many.jsonl"
expect 0 "imported 200" -- "$KILN" db import "$TMP/v.db" "$TMP/many.jsonl"
expect 0 "pruned 0" -- "$KILN" db prune "$TMP/v.db" --vacuum # checkpoints: every record in the file
before=$(stat -c %s "$TMP/v.db")
expect 0 "pruned 199 records" -- "$KILN" db prune "$TMP/v.db" --keep-best 1 --vacuum
after=$(stat -c %s "$TMP/v.db")
[ "$after" -lt $((before / 4)) ] && ok || bad "--vacuum left $after bytes of $before"

# bad exports name the file and line; nothing of them is imported
sed '3s/"status":"ok"/"status":"fine"/' "$TMP/a.jsonl" >"$TMP/bad.jsonl"
expect 1 "kiln: .*bad.jsonl:3: a bad record: an unknown status" -- "$KILN" db import "$TMP/d.db" "$TMP/bad.jsonl"
expect 0 "records +0 " -- "$KILN" db stats "$TMP/d.db"
sed '4s/,"seed":1/,"seed":1,"shell":"rm -rf \/"/' "$TMP/a.jsonl" >"$TMP/bad2.jsonl"
expect 1 "bad2.jsonl:4: .*unknown key 'shell'" -- "$KILN" db import "$TMP/d.db" "$TMP/bad2.jsonl"
echo '{"kiln_records":9}' >"$TMP/newer.jsonl"
expect 1 "newer.jsonl:1: .*newer kiln" -- "$KILN" db import "$TMP/d.db" "$TMP/newer.jsonl"
echo 'hello' >"$TMP/hello.jsonl"
expect 1 "hello.jsonl:1: not a kiln records export" -- "$KILN" db import "$TMP/d.db" "$TMP/hello.jsonl"
expect 1 "kiln: .*nonexistent.jsonl: cannot open" -- "$KILN" db import "$TMP/d.db" "$TMP/nonexistent.jsonl"

# files that are not kiln records databases
head -c 5000 /dev/urandom >"$TMP/random.db"
expect 1 "kiln: .*random.db: not a kiln records database" -- "$KILN" db stats "$TMP/random.db"
expect 1 "kiln: .*random.db: not a kiln records database" -- "$KILN" db merge "$TMP/b.db" "$TMP/random.db"
expect 1 "kiln: .*nonexistent.db: cannot open" -- "$KILN" db stats "$TMP/nonexistent.db"
: >"$TMP/empty.db"
expect 1 "kiln: .*empty.db: an empty file" -- "$KILN" db export "$TMP/empty.db"
cp "$TMP/a.db" "$TMP/cut.db"
truncate -s 2000 "$TMP/cut.db"
expect 1 "kiln: .*cut.db: a damaged or truncated database" -- "$KILN" db stats "$TMP/cut.db"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
