#!/usr/bin/env bats
# json.bats - JSON in and out: -J inputs and their placeholders, bad input
# lines and --on-bad-input, --json records (fields, key order, binary and
# UTF-8 output), --max-output, --results and the usage errors.
#
# Records are read with real JSON parsers, never with grep: jq (records()
# prints each one compact, without the timing fields, keys in the order
# cpmap wrote them) and python3's json module (pyrecs: every line must be
# one strict JSON object of valid UTF-8 with no duplicate key).  Timing is
# forced with FIFO gates, never with sleep.

load helpers

setup() {
	setup_scratch
	S=$SCRATCH
	export S
	OUT=$S/out
	ERR=$S/err
	mkfifo "$S/gate"
}

teardown() {
	kill_test_processes
}

# jrun ARGS...: run cpmap (stdin is the test's), stdout in $OUT, stderr in
# $ERR, exit status in $status.
jrun() {
	status=0
	timeout 20 "$CPMAP" "$@" >"$OUT" 2>"$ERR" || status=$?
}

# jfeed TEXT ARGS...: jrun with printf TEXT on stdin.
jfeed() {
	local text=$1
	shift
	# shellcheck disable=SC2059 # TEXT is a printf format on purpose
	printf "$text" >"$S/in"
	jrun "$@" <"$S/in"
}

# records [FILTER]: every record in $OUT, compact, without start/duration
# (which differ from run to run), through the jq FILTER if given.
records() {
	jq -c "del(.start, .duration)${1:+ | $1}" "$OUT"
}

# pyrecs CODE ARGS...: run python3 CODE with recs = the records of $OUT,
# checked strictly: every line one JSON object, valid UTF-8, no duplicate
# key, output ending in a newline.  b64(s) decodes strict base64.
# sys.argv[2:] are ARGS.
pyrecs() {
	python3 -c '
import base64, json, sys

def pairs(kv):
    keys = [k for k, _ in kv]
    assert len(keys) == len(set(keys)), "duplicate key in %r" % keys
    return dict(kv)

def b64(s):
    return base64.b64decode(s.encode("ascii"), validate=True)

data = open(sys.argv[1], "rb").read()
assert data == b"" or data.endswith(b"\n"), "no newline at the end"
recs = []
for line in data.split(b"\n")[:-1]:
    rec = json.loads(line.decode("utf-8"), object_pairs_hook=pairs)
    assert isinstance(rec, dict), "not an object: %r" % line[:80]
    recs.append(rec)
'"$1" "$OUT" "${@:2}"
}

# The keys of a record, in order, for each status.
KEYS_RUN='["seq","input","argv","host","slot","attempts","start","duration","status","exit","signal","stdout","stderr","error"]'

# ---- -J inputs ------------------------------------------------------------

@test "-J objects give fields, dotted paths and array elements by index" {
	jfeed '{"name":"n v","a":{"b":"deep","n":[1,2]},"items":["i0",{"k":"v"}],"num":1.5,"t":true,"z":null,"q":"say \\"hi\\""}\n' \
		-J argv-print '{name}' '{a.b}' '{items.0}' '{items.1}' '{items.1.k}' '{a.n}' '{a.n.1}' '{num}' '{t}' '{z}' '{q}'
	[ "$status" -eq 0 ]
	assert_equal "$(cat "$OUT")" 'n v
deep
i0
{"k":"v"}
v
[1,2]
2
1.5
true
null
say "hi"'
	[ ! -s "$ERR" ]
}

@test "-J: a key that holds dots wins over the dotted path" {
	jfeed '{"a.b":"key","a":{"b":"path"}}\n{"a":{"b":"path"}}\n' \
		-J -k argv-print '{a.b}'
	[ "$status" -eq 0 ]
	assert_equal "$(cat "$OUT")" 'key
path'
}

@test "-J: {} is the record's compact JSON text" {
	jfeed '{ "a" : [1, 2] , "b":"c\\u00e9", "d" : { } }\n[ 1 , "x" ]\n' \
		-J -k argv-print '<{}>'
	[ "$status" -eq 0 ]
	assert_equal "$(cat "$OUT")" '<{"a":[1,2],"b":"cé","d":{}}>
<[1,"x"]>'
}

@test "-J: numbers keep every digit, in {} and in the record's input" {
	jfeed '0.30000000000000004\n[1.0000000000000002]\n{"x":-2.2250738585072014e-308}\n' \
		-J -k --json argv-print '{}'
	[ "$status" -eq 0 ]
	pyrecs '
want = [0.30000000000000004, [1.0000000000000002], {"x": -2.2250738585072014e-308}]
assert [r["input"] for r in recs] == want, [r["input"] for r in recs]
assert [json.loads(r["argv"][1]) for r in recs] == want, [r["argv"] for r in recs]'
}

@test "-J keeps numbers as written: placeholders, --stdin, --persist and the record's input" {
	printf '%s\n' '{ "n" : 0.1, "e":1e2, "z":-0, "f":2.50, "big":123456789012345678901234567890,' \
		'"h":1e999, "a":[ -0.0 , 1E-400 ], "s":"1e2" }' | tr -d '\n' >"$S/in"
	echo >>"$S/in"
	compact='{"n":0.1,"e":1e2,"z":-0,"f":2.50,"big":123456789012345678901234567890,"h":1e999,"a":[-0.0,1E-400],"s":"1e2"}'
	jrun -J argv-print '{n}' '{e}' '{z}' '{f}' '{big}' '{h}' '{a}' '{a.1}' '{s}' <"$S/in"
	[ "$status" -eq 0 ]
	assert_equal "$(cat "$OUT")" '0.1
1e2
-0
2.50
123456789012345678901234567890
1e999
[-0.0,1E-400]
1E-400
1e2'
	jrun -J --stdin cat <"$S/in"
	[ "$status" -eq 0 ]
	assert_equal "$(cat "$OUT")" "$compact"
	jrun -J --persist cat <"$S/in"
	[ "$status" -eq 0 ]
	assert_equal "$(cat "$OUT")" "$compact"
	# The record holds the value's text itself: {"seq":1,"input":...,"argv":
	jrun -J --json argv-print '{}' <"$S/in"
	[ "$status" -eq 0 ]
	assert_equal "$(cut -c1-${#compact} <(sed 's/^{"seq":1,"input"://' "$OUT"))" "$compact"
	pyrecs '
assert recs[0]["argv"] == ["argv-print", sys.argv[2]], recs[0]["argv"]
assert recs[0]["input"]["big"] == 123456789012345678901234567890' "$compact"

	# Top-level numbers and arrays of them, as {}, {1} and appended.
	jfeed '1e2\n-0\n2.50\n[1.0,-1e-7]\n' -J -k argv-print '<{}>' '{1}'
	[ "$status" -eq 0 ]
	assert_equal "$(cat "$OUT")" '<1e2>
1e2
<-0>
-0
<2.50>
2.50
<[1.0,-1e-7]>
1.0'
	jfeed '[1.0,-1e-7,18446744073709551616]\n' -J argv-print
	assert_equal "$(cat "$OUT")" '1.0
-1e-7
18446744073709551616'
}

@test "-J: a bad line's message quotes the text as written, numbers too; a NUL byte is bad" {
	jfeed '{"a" 12}\n[1 2.50]\n[-]\n[0.9\000]\n' -J -k --json argv-print
	[ "$status" -eq 4 ]
	assert_equal "$(records '.error.message')" '"line 1, column 7: '"':' expected near '12'"'"
"line 2, column 7: '"']' expected near '2.50'"'"
"line 3, column 2: invalid token near '"'-'"'"
"line 4, column 5: a NUL byte is not JSON"'
}

@test "-J arrays give {1} {2}, and their elements as arguments when no placeholder is used" {
	jfeed '["a b","c",3,[4],{"k":1},null]\n' -J argv-print '{1}|{3}|{2}'
	[ "$status" -eq 0 ]
	assert_equal "$(cat "$OUT")" 'a b|3|c'

	jfeed '["a b","c",3,[4],{"k":1},null]\n[]\n["only"]\n' -J -k argv-print x
	[ "$status" -eq 0 ]
	assert_equal "$(cat "$OUT")" 'x
a b
c
3
[4]
{"k":1}
null
x
x
only'
}

@test "-J strings act like lines with their text, other scalars give their JSON text" {
	jfeed '"s t"\n"a\\nb\\\\c"\n"\\u00e9\\u2713"\n42\n3.5\ntrue\nfalse\nnull\n' \
		-J -k argv-print '<{}>'
	[ "$status" -eq 0 ]
	assert_equal "$(cat "$OUT")" '<s t>
<a\nb\\c>
<é✓>
<42>
<3.5>
<true>
<false>
<null>'
}

@test "-J with --stdin writes each record compact plus a newline to the task's stdin" {
	jfeed '{ "a" : [1, 2] }\n"s t"\n[ 1 ,"x"]\n' -J -k --stdin --json cat
	[ "$status" -eq 0 ]
	assert_equal "$(records '[.argv, .stdout]')" '[["cat"],"{\"a\":[1,2]}\n"]
[["cat"],"s t\n"]
[["cat"],"[1,\"x\"]\n"]'
	pyrecs '
assert [r["stdout"] for r in recs] == ["{\"a\":[1,2]}\n", "s t\n", "[1,\"x\"]\n"]'
}

@test "-J with --chunk 2 gives records an \"inputs\" array" {
	jfeed '{"a":1}\n[2,3]\n"s"\n' -J -k -n 2 --json argv-print
	[ "$status" -eq 0 ]
	assert_equal "$(records '[.seq, .inputs, .input, .argv]')" \
		'[1,[{"a":1},[2,3]],null,["argv-print","{\"a\":1}","2","3"]]
[2,null,"s",["argv-print","s"]]'
	pyrecs '
assert list(recs[0])[:3] == ["seq", "inputs", "argv"], list(recs[0])
assert "input" not in recs[0]
assert list(recs[1])[:3] == ["seq", "input", "argv"], list(recs[1])'
}

# ---- bad input ---------------------------------------------------------------

# Lines of $S/in for the bad-input run: case names and the lines themselves.
bad_lines() {
	python3 -c '
import sys
lines = [
    b"{\"ok\":1}",                      # 1 fine
    b"{bad",                            # 2 invalid JSON
    b"{\"a\":1,\"a\":2}",               # 3 duplicate key
    b"[" * 5000 + b"]" * 5000,          # 4 too deep
    b"\"" + b"x" * (10 << 20) + b"\"",  # 5 10 MB
    b"{\"s\":\"a\xffb\"}",              # 6 invalid UTF-8 in a string
    b"",                                # 7 empty line
    b"[2]",                             # 8 fine
]
sys.stdout.buffer.write(b"\n".join(lines) + b"\n")' >"$S/in"
}

@test "each kind of bad -J line gives a bad-input record with its line, and the run goes on" {
	bad_lines
	jrun -J -k --json argv-print <"$S/in"
	[ "$status" -eq 6 ]
	# kind, line, column (null when not applicable) per record.
	assert_equal "$(records '[.seq, .status, .argv, .exit, .error.kind, .error.line, .error.column]')" \
		'[1,"ok",["argv-print","{\"ok\":1}"],0,null,null,null]
[2,"error",null,null,"bad-input",2,4]
[3,"error",null,null,"bad-input",3,10]
[4,"error",null,null,"bad-input",4,2049]
[5,"error",null,null,"bad-input",5,null]
[6,"error",null,null,"bad-input",6,7]
[7,"error",null,null,"bad-input",7,null]
[8,"ok",["argv-print","2"],0,null,null,null]'
	pyrecs '
raw = open(sys.argv[2], "rb").read().split(b"\n")
for r in recs:
    if r["status"] == "ok":
        continue
    e = r["error"]
    n = r["seq"]
    where = "line %d, column %d: " % (n, e["column"]) if "column" in e else "line %d: " % n
    assert e["message"].startswith(where), (where, e["message"])
    assert list(e) == ["kind", "message", "line"] + (["column"] if "column" in e else []), list(e)
    # The raw line: as text, or as base64 when it is not UTF-8.
    if "input_base64" in r:
        assert "input" not in r
        assert b64(r["input_base64"]) == raw[n - 1], n
    elif n == 5:
        assert raw[n - 1].startswith(r["input"].encode()) and len(r["input"]) > 0
    else:
        assert r["input"].encode() == raw[n - 1], (n, r["input"])
assert "input_base64" in recs[5], "line 6 is not UTF-8"
assert recs[0]["stdout"] == "{\"ok\":1}\n" and recs[7]["stdout"] == "2\n"
' "$S/in"
	# One message per bad line on stderr.
	[ "$(LC_ALL=C grep -ac '^cpmap: task \([2-7]\) (input .*): line \1[:,]' "$ERR")" -eq 6 ]
	[ "$(wc -l <"$ERR")" -eq 6 ]
}

@test "-J: a bad line read while no task runs does not stall the run" {
	# First line bad; and with -j1, a bad line after a task has ended.
	while IFS='|' read -r text want_out want_status; do
		jfeed "$text" -j1 -J -k argv-print
		[ "$status" -eq "$want_status" ] || { echo "'$text': status $status"; false; }
		assert_equal "$(cat "$OUT")" "$(printf "$want_out")"
	done <<'EOF'
not json\n||1
not json\n[1]\n|1|1
[1]\nnot json\n|1|1
[1]\nnot json\n\n[2]\n|1\n2|2
EOF
}

@test "-J: the messages of bad lines name the problem" {
	jfeed '{"a":1,"a":2}\nnot json\n\n' -J -k --json true
	[ "$status" -eq 3 ]
	pyrecs '
m = [r["error"]["message"] for r in recs]
assert "duplicate" in m[0], m[0]
assert m[1].startswith("line 2, column 3: ") and "invalid token" in m[1], m[1]
assert m[2] == "line 3: empty line, not a JSON value", m[2]'
}

@test "-J: a missing field is a bad-input error for that task only" {
	jfeed '{"name":"a"}\n{"other":1}\n{"name":"c","x":"s"}\n' \
		-J -k --json argv-print '{name}'
	[ "$status" -eq 1 ]
	assert_equal "$(records '[.seq, .status, .argv, .stdout, .error]')" \
		'[1,"ok",["argv-print","a"],"a\n",null]
[2,"error",null,"",{"kind":"bad-input","message":"input 2: no field '"'name'"' in the record","line":2}]
[3,"ok",["argv-print","c"],"c\n",null]'
	assert_equal "$(cat "$ERR")" "cpmap: task 2 (input {\"other\":1}): input 2: no field 'name' in the record"
}

@test "-J: a dotted path through a non-object is a missing field" {
	jfeed '{"a":"s"}\n{"a":[1]}\n{"a":{"b":0}}\n' -J -k --json argv-print '{a.b}'
	[ "$status" -eq 2 ]
	assert_equal "$(records '[.status, .error.message]')" \
		"[\"error\",\"input 1: no field 'a.b' in the record\"]
[\"error\",\"input 2: no field 'a.b' in the record\"]
[\"ok\",null]"
}

@test "-J: a missing array element is a bad-input error for that task only" {
	jfeed '[1,2,3]\n[1,2]\n["x","y","z"]\n' -J -k --json argv-print '{3}'
	[ "$status" -eq 1 ]
	assert_equal "$(records '[.seq, .status, .argv, .stdout, .error]')" \
		'[1,"ok",["argv-print","3"],"3\n",null]
[2,"error",null,"",{"kind":"bad-input","message":"input 2: no element 3","line":2}]
[3,"ok",["argv-print","z"],"z\n",null]'
	assert_equal "$(cat "$ERR")" 'cpmap: task 2 (input [1,2]): input 2: no element 3'
}

@test "--on-bad-input=skip: a message on stderr, no record, not counted as failed" {
	jfeed '{"a":1}\nnot json\n\n[2]\n' -J -k --on-bad-input=skip --json argv-print
	[ "$status" -eq 0 ]
	assert_equal "$(records '[.status, .input, .stdout]')" '["ok",{"a":1},"{\"a\":1}\n"]
["ok",[2],"2\n"]'
	run cat "$ERR"
	[ "${#lines[@]}" -eq 2 ]
	[[ ${lines[0]} == "cpmap: skipping bad input: line 2, column 3: "* ]]
	assert_equal "${lines[1]}" 'cpmap: skipping bad input: line 3: empty line, not a JSON value'
}

@test "--on-bad-input=skip also works without --json" {
	jfeed '["a"]\n{x\n["b"]\n' -J -k --on-bad-input=skip argv-print
	[ "$status" -eq 0 ]
	assert_equal "$(cat "$OUT")" 'a
b'
	[[ $(cat "$ERR") == "cpmap: skipping bad input: line 2, column "* ]]
}

@test "--on-bad-input=abort writes the record, starts nothing new, lets running tasks finish, exits 255" {
	cat >"$S/task" <<'EOF'
#!/bin/sh
echo "$1" >>"$S/started"
if [ "$1" = block ]; then exec fifo-wait "$S/gate" 0 blocked; fi
echo "$1"
EOF
	chmod +x "$S/task"
	printf '{"w":"block"}\nnot json\n{"w":"never"}\n{"w":"never2"}\n' >"$S/in"
	bg_cpmap -J -j2 --on-bad-input=abort --json "$S/task" '{w}'
	wait_lines "$S/started" 1
	wait_lines "$ERR" 2
	# The bad line's record is out while task 1 still runs.
	wait_lines "$OUT" 1
	release "$S/gate"
	finish
	[ "$status" -eq 255 ]
	assert_equal "$(records '[.seq, .status, .stdout, .error.kind]')" '[2,"error","","bad-input"]
[1,"ok","blocked\n",null]'
	assert_equal "$(cat "$S/started")" 'block'
	run cat "$ERR"
	[ "${#lines[@]}" -eq 2 ]
	[[ ${lines[0]} == "cpmap: task 2 (input not json): line 2, column "* ]]
	assert_equal "${lines[1]}" 'cpmap: stopping: bad input (--on-bad-input=abort)'
}

# ---- --json records -----------------------------------------------------------

@test "--json: an ok task's record has every field, in order" {
	before=$(date +%s)
	jrun --json argv-print ::: 'a b'
	after=$(date +%s)
	[ "$status" -eq 0 ]
	assert_equal "$(records)" '{"seq":1,"input":"a b","argv":["argv-print","a b"],"host":"local","slot":1,"attempts":1,"status":"ok","exit":0,"signal":null,"stdout":"a b\n","stderr":"","error":null}'
	pyrecs '
r = recs[0]
assert list(r) == json.loads(sys.argv[2]), list(r)
before, after = int(sys.argv[3]), int(sys.argv[4])
assert isinstance(r["start"], float), r["start"]
assert before - 1 <= r["start"] <= after + 1, (before, r["start"], after)
assert isinstance(r["duration"], (float, int)) and 0 <= r["duration"] <= after - before + 1, r["duration"]
' "$KEYS_RUN" "$before" "$after"
	[ ! -s "$ERR" ]
}

@test "--json: a failed task's record has its exit status and its stderr; cpmap's stderr nothing (a plain exit is quiet)" {
	jrun --json sh -c 'echo out; echo err >&2; exit 3' ::: a
	[ "$status" -eq 1 ]
	assert_equal "$(records)" '{"seq":1,"input":"a","argv":["sh","-c","echo out; echo err >&2; exit 3","a"],"host":"local","slot":1,"attempts":1,"status":"failed","exit":3,"signal":null,"stdout":"out\n","stderr":"err\n","error":null}'
	pyrecs 'assert list(recs[0]) == json.loads(sys.argv[2])' "$KEYS_RUN"
	assert_equal "$(cat "$ERR")" ''
}

@test "--json: a task killed by a signal has status signaled and the signal's name" {
	jrun --json sh -c 'kill -9 $$' ::: a
	[ "$status" -eq 1 ]
	assert_equal "$(records)" '{"seq":1,"input":"a","argv":["sh","-c","kill -9 $$","a"],"host":"local","slot":1,"attempts":1,"status":"signaled","exit":null,"signal":"SIGKILL","stdout":"","stderr":"","error":null}'
	pyrecs 'assert list(recs[0]) == json.loads(sys.argv[2])' "$KEYS_RUN"
	assert_equal "$(cat "$ERR")" 'cpmap: task 1 (input a): killed by SIGKILL'
}

@test "--json: a command that cannot start gives status error with error kind spawn" {
	jrun --json -k cpmap-no-such-command ::: a b
	[ "$status" -eq 2 ]
	assert_equal "$(records 'del(.host, .slot, .attempts)')" \
		'{"seq":1,"input":"a","argv":["cpmap-no-such-command","a"],"status":"error","exit":null,"signal":null,"stdout":"","stderr":"","error":{"kind":"spawn","message":"cannot run cpmap-no-such-command: No such file or directory"}}
{"seq":2,"input":"b","argv":["cpmap-no-such-command","b"],"status":"error","exit":null,"signal":null,"stdout":"","stderr":"","error":{"kind":"spawn","message":"cannot run cpmap-no-such-command: No such file or directory"}}'
	pyrecs 'assert all(list(r) == json.loads(sys.argv[2]) for r in recs)' "$KEYS_RUN"
	# (cpmap's own messages come as tasks end, even with -k)
	assert_equal "$(LC_ALL=C sort "$ERR")" 'cpmap: task 1 (input a): cannot run cpmap-no-such-command: No such file or directory
cpmap: task 2 (input b): cannot run cpmap-no-such-command: No such file or directory'
}

@test "--json: a bad input's record has the raw line, argv null and the error's place" {
	jfeed 'not json\n' -J --json argv-print
	[ "$status" -eq 1 ]
	assert_equal "$(records 'del(.host, .slot, .attempts, .error.message)')" \
		'{"seq":1,"input":"not json","argv":null,"status":"error","exit":null,"signal":null,"stdout":"","stderr":"","error":{"kind":"bad-input","line":1,"column":3}}'
	pyrecs '
assert list(recs[0]) == json.loads(sys.argv[2]), list(recs[0])
assert list(recs[0]["error"]) == ["kind", "message", "line", "column"]' "$KEYS_RUN"
}

@test "--json: input and argv that are not UTF-8 become input_base64 and argv_base64" {
	printf 'a\377b\n' >"$S/in"
	jrun --json argv-print x <"$S/in"
	[ "$status" -eq 0 ]
	pyrecs '
r = recs[0]
assert list(r)[:3] == ["seq", "input_base64", "argv_base64"], list(r)
assert b64(r["input_base64"]) == b"a\xffb"
assert [b64(a) for a in r["argv_base64"]] == [b"argv-print", b"x", b"a\xffb"]
assert b64(r["stdout_base64"]) == b"x\na\xffb\n"'
}

@test "--json -k writes records in input order when later tasks finish first" {
	cat >"$S/task" <<'EOF'
#!/bin/sh
echo "$1" >>"$S/started"
if [ "$1" = first ]; then exec fifo-wait "$S/gate" 0 first; fi
echo "$1"
echo "$1" >>"$S/done"
EOF
	chmod +x "$S/task"
	printf '{"w":"first"}\n{"w":"second"}\n{"w":"third"}\n' >"$S/in"
	bg_cpmap -J -k -j3 --json "$S/task" '{w}'
	wait_lines "$S/done" 2
	wait_lines "$S/started" 3
	[ ! -s "$OUT" ]
	release "$S/gate"
	finish
	[ "$status" -eq 0 ]
	assert_equal "$(records '[.seq, .input.w, .stdout]')" '[1,"first","first\n"]
[2,"second","second\n"]
[3,"third","third\n"]'
}

@test "--json without -k writes each record as its task ends" {
	cat >"$S/task" <<'EOF'
#!/bin/sh
if [ "$1" = first ]; then exec fifo-wait "$S/gate" 0 first; fi
echo "$1"
EOF
	chmod +x "$S/task"
	printf '{"w":"first"}\n{"w":"second"}\n' >"$S/in"
	bg_cpmap -J -j2 --json "$S/task" '{w}'
	wait_lines "$OUT" 1
	release "$S/gate"
	finish
	[ "$status" -eq 0 ]
	assert_equal "$(records '[.seq, .stdout]')" '[2,"second\n"]
[1,"first\n"]'
}

# ---- output bytes in records ------------------------------------------------

@test "--json: binary stdout round-trips exactly through stdout_base64" {
	jrun --json sh -c 'printf "\377\000A\000\n\377\200z"' ::: a
	[ "$status" -eq 0 ]
	pyrecs '
r = recs[0]
assert "stdout" not in r and r["stderr"] == ""
assert list(r)[11:14] == ["stdout_base64", "stderr", "error"], list(r)
assert b64(r["stdout_base64"]) == b"\xff\x00A\x00\n\xff\x80z", r["stdout_base64"]'
}

@test "--json: a 3 MB binary stdout (spilled to a file) round-trips exactly" {
	head -c 3000001 /dev/urandom >"$S/bin"
	jrun --json cat ::: "$S/bin"
	[ "$status" -eq 0 ]
	pyrecs '
assert b64(recs[0]["stdout_base64"]) == open(sys.argv[2], "rb").read()' "$S/bin"
}

@test "--json: NUL bytes in otherwise valid UTF-8 output stay text and exact" {
	jrun --json sh -c 'printf "a\000b\001\n\tc\177"' ::: a
	[ "$status" -eq 0 ]
	pyrecs 'assert recs[0]["stdout"] == "a\x00b\x01\n\tc\x7f", repr(recs[0]["stdout"])'
}

@test "--json: invalid UTF-8 only on stderr gives stderr_base64 and a text stdout" {
	jrun --json sh -c 'printf "ok\n"; printf "e\300\257\n" >&2' ::: a
	[ "$status" -eq 0 ]
	pyrecs '
r = recs[0]
assert r["stdout"] == "ok\n" and "stdout_base64" not in r
assert "stderr" not in r and b64(r["stderr_base64"]) == b"e\xc0\xaf\n"
assert list(r)[11:14] == ["stdout", "stderr_base64", "error"], list(r)'
	[ ! -s "$ERR" ]
}

@test "--json: multi-byte UTF-8 output stays text, exactly" {
	jrun --json sh -c 'printf "%s" "héllo ✓ 𝄞"' ::: a
	[ "$status" -eq 0 ]
	pyrecs 'assert recs[0]["stdout"] == "h\u00e9llo \u2713 \U0001d11e", repr(recs[0]["stdout"])'
}

@test "--json: 2 MB of multi-byte UTF-8 (split across reads and a spill file) stays text" {
	python3 -c '
import sys
sys.stdout.buffer.write(("x" + "é✓𝄞" * 150000).encode())' >"$S/utf8"
	jrun --json cat ::: "$S/utf8"
	[ "$status" -eq 0 ]
	pyrecs '
r = recs[0]
assert "stdout_base64" not in r, "valid UTF-8 went to base64"
assert r["stdout"].encode() == open(sys.argv[2], "rb").read()' "$S/utf8"
}

@test "--json: every output line is one JSON object even when tasks write binary with newlines" {
	jrun --json -j4 sh -c 'printf "\n\377\n\000{\"x\":\n"; printf "\n]\n" >&2' ::: $(seq 30)
	[ "$status" -eq 0 ]
	pyrecs '
assert sorted(r["seq"] for r in recs) == list(range(1, 31)), [r["seq"] for r in recs]
for r in recs:
    assert b64(r["stdout_base64"]) == b"\n\xff\n\x00{\"x\":\n"
    assert r["stderr"] == "\n]\n"'
}

# ---- --max-output ------------------------------------------------------------

@test "--max-output: a task over the limit keeps the prefix, gets error output-limit, the run goes on" {
	jrun --json -k --max-output 10 sh -c 'if [ "$0" = big ]; then seq 1 100; else printf 0123456789; fi' ::: big small
	[ "$status" -eq 1 ]
	assert_equal "$(records '[.input, .status, .exit, .stdout, .stderr, .error]')" \
		'["big","error",0,"1\n2\n3\n4\n5\n","",{"kind":"output-limit","message":"output over --max-output 10 bytes: stdout 292 bytes, stderr 0 bytes","size":292}]
["small","ok",0,"0123456789","",null]'
	assert_equal "$(cat "$ERR")" 'cpmap: task 1 (input big): output over --max-output 10 bytes: stdout 292 bytes, stderr 0 bytes'
}

@test "--max-output counts stdout and stderr separately and reports their sum" {
	jrun --json --max-output 4 sh -c 'printf 0123456789; printf abcdefgh >&2' ::: x
	[ "$status" -eq 1 ]
	assert_equal "$(records '[.stdout, .stderr, .error]')" \
		'["0123","abcd",{"kind":"output-limit","message":"output over --max-output 4 bytes: stdout 10 bytes, stderr 8 bytes","size":18}]'
}

@test "--max-output keeps binary output's prefix exactly, in memory and spilled" {
	while read -r bytes limit keep; do
		head -c "$bytes" /dev/urandom >"$S/bin"
		jrun --json --max-output "$limit" cat ::: "$S/bin"
		[ "$status" -eq 1 ]
		pyrecs '
r = recs[0]
data = open(sys.argv[2], "rb").read()
keep = int(sys.argv[3])
assert r["error"]["size"] == len(data), r["error"]
got = b64(r["stdout_base64"]) if "stdout_base64" in r else r["stdout"].encode()
assert got == data[:keep], len(got)' "$S/bin" "$keep"
	done <<'EOF'
5000 1k 1024
3000000 2M 2097152
EOF
}

@test "--max-output: exactly SIZE bytes is not over the limit" {
	jrun --json --max-output 4 sh -c 'printf 0123' ::: a
	[ "$status" -eq 0 ]
	assert_equal "$(records '[.status, .stdout, .error]')" '["ok","0123",null]'
}

@test "--max-output also limits plain grouped output and counts as failed" {
	jrun -k --max-output 10 sh -c 'if [ "$0" = big ]; then seq 1 100; else echo small; fi' ::: big small
	[ "$status" -eq 1 ]
	assert_equal "$(cat "$OUT")" '1
2
3
4
5
small'
	assert_equal "$(cat "$ERR")" 'cpmap: task 1 (input big): output over --max-output 10 bytes: stdout 292 bytes, stderr 0 bytes'
}

@test "--max-output rejects sizes it cannot read" {
	for size in 0 -1 1x k '' 10kk 1.5M; do
		run timeout 20 "$CPMAP" --max-output "$size" touch "$S/ran" ::: a
		[ "$status" -eq 255 ] || { echo "size '$size' gave $status"; false; }
		[[ $output == "cpmap: --max-output"*"(see cpmap --help)" ]]
	done
	[ ! -e "$S/ran" ]
}

# ---- --results ------------------------------------------------------------

# results_listing: every file and directory under $S/res, dotfiles included.
results_listing() {
	(cd "$S/res" && find . | LC_ALL=C sort)
}

@test "--results DIR keeps stdout, stderr and the record of each task, and --json prints the same records" {
	jrun --json -k --results "$S/res" sh -c 'printf "o$0"; printf "e$0\n" >&2; exit $1' ::: x y ::: 0 2
	[ "$status" -eq 2 ]
	assert_equal "$(results_listing)" '.
./1
./1/record.json
./1/stderr
./1/stdout
./2
./2/record.json
./2/stderr
./2/stdout
./3
./3/record.json
./3/stderr
./3/stdout
./4
./4/record.json
./4/stderr
./4/stdout'
	pyrecs '
import os
res = sys.argv[2]
want = [("x 0", 0, "ox", "ex\n"), ("x 2", 2, "ox", "ex\n"), ("y 0", 0, "oy", "ey\n"), ("y 2", 2, "oy", "ey\n")]
lines = open(sys.argv[1], "rb").read().split(b"\n")[:-1]
for i, (inp, code, out, err) in enumerate(want, 1):
    d = os.path.join(res, str(i))
    r = recs[i - 1]
    assert (r["input"], r["exit"], r["stdout"], r["stderr"]) == (inp, code, out, err), r
    assert open(os.path.join(d, "stdout"), "rb").read() == out.encode()
    assert open(os.path.join(d, "stderr"), "rb").read() == err.encode()
    assert open(os.path.join(d, "record.json"), "rb").read() == lines[i - 1] + b"\n"
' "$S/res"
}

@test "--results DIR works without --json and plain output is unchanged" {
	jrun -k --results "$S/res" sh -c 'printf "\377o$0\000"; printf "e$0" >&2' ::: a b
	[ "$status" -eq 0 ]
	printf '\377oa\000\377ob\000' >"$S/want"
	cmp "$OUT" "$S/want"
	printf 'eaeb' >"$S/want"
	cmp "$ERR" "$S/want"
	assert_equal "$(results_listing)" '.
./1
./1/record.json
./1/stderr
./1/stdout
./2
./2/record.json
./2/stderr
./2/stdout'
	printf '\377ob\000' >"$S/want"
	cmp "$S/res/2/stdout" "$S/want"
	printf 'eb' >"$S/want"
	cmp "$S/res/2/stderr" "$S/want"
	cp "$S/res/2/record.json" "$OUT"
	pyrecs '
r = recs[0]
assert (r["seq"], r["input"], r["status"]) == (2, "b", "ok"), r
assert b64(r["stdout_base64"]) == b"\xffob\x00" and r["stderr"] == "eb"'
}

@test "--results DIR holds the limited output of a task over --max-output" {
	jrun --max-output 3 --results "$S/res" printf '%s' ::: abcdef
	[ "$status" -eq 1 ]
	assert_equal "$(cat "$S/res/1/stdout")" 'abc'
	cp "$S/res/1/record.json" "$OUT"
	assert_equal "$(records '[.status, .stdout, .error.kind, .error.size]')" '["error","abc","output-limit",6]'
}

@test "--results DIR that cannot be made is an error before any task runs" {
	run timeout 20 "$CPMAP" --results /dev/null/res touch "$S/ran" ::: a
	[ "$status" -eq 255 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == "cpmap: --results"*"/dev/null/res"* ]]
	[ ! -e "$S/ran" ]
}

@test "--results DIR that cannot be written at run time: one message, exit 255, --json records all the same" {
	mkdir "$S/res"
	: >"$S/res/1" # DIR/1 cannot be a directory
	jrun --json -k --results "$S/res" echo ::: a b
	[ "$status" -eq 255 ]
	[ "$(wc -l <"$ERR")" -eq 1 ]
	grep -q "^cpmap: --results: $S/res/1/" "$ERR"
	assert_equal "$(records '[.seq, .stdout]')" '[1,"a\n"]
[2,"b\n"]'
	[ -s "$S/res/2/record.json" ]

	jrun -k --results "$S/res" echo ::: a b
	[ "$status" -eq 255 ]
	[ "$(wc -l <"$ERR")" -eq 1 ]
	assert_equal "$(cat "$OUT")" 'a
b'
}

# ---- memory and whole records --------------------------------------------------

@test "--json streams a record: 64 MB of NUL bytes (384 MB of record) in bounded memory, same in --results" {
	[ -x /usr/bin/time ] || skip "GNU time is not installed"
	# ASan's shadow memory and quarantine say nothing of cpmap's own use.
	! grep -q __asan_init "$CPMAP" || skip "a sanitizer build"
	/usr/bin/time -f %M -o "$S/rss" timeout 60 "$CPMAP" --json --results "$S/res" \
		sh -c 'head -c 64000000 /dev/zero; printf "\377" >&2' ::: x >"$OUT" 2>"$ERR"
	[ ! -s "$ERR" ]
	cmp "$OUT" "$S/res/1/record.json"
	python3 -c '
import sys
data = open(sys.argv[1], "rb").read()
head, tail = data.split(b"\"stdout\":\"", 1)
body, tail = tail.split(b"\"", 1)
assert head.startswith(b"{\"seq\":1,\"input\":\"x\","), head[:80]
assert body == b"\\u0000" * 64000000, len(body)
assert tail == b",\"stderr_base64\":\"/w==\",\"error\":null}\n", tail' "$OUT"
	# A whole record held in memory would take 384 MB; the bound is loose.
	[ "$(cat "$S/rss")" -lt 65536 ] || { echo "peak RSS $(cat "$S/rss") KB"; false; }
}

@test "--json: a record that fails midway on a regular file is cut off, the file ends with whole records" {
	# 100 KiB at most for stdout; EFBIG instead of SIGXFSZ.
	(
		trap '' XFSZ
		ulimit -f 100
		timeout 20 "$CPMAP" -k --json sh -c 'head -c "$0" /dev/zero' ::: 10 200000 20
	) >"$OUT" 2>"$ERR" && status=0 || status=$?
	[ "$status" -eq 255 ]
	grep -q "writing to standard output" "$ERR"
	pyrecs '
assert [(r["seq"], len(r["stdout"])) for r in recs] == [(1, 10)], recs'
}

# ---- usage errors -----------------------------------------------------------

@test "--json and -J refuse the options they do not combine with" {
	while IFS= read -r opts; do
		# shellcheck disable=SC2086
		run timeout 20 "$CPMAP" $opts touch "$S/ran" ::: a </dev/null
		[ "$status" -eq 255 ] || { echo "'$opts' gave $status"; false; }
		[ "${#lines[@]}" -eq 1 ] || { echo "'$opts': $output"; false; }
		[[ $output == "cpmap: "*" (see cpmap --help)" ]] || { echo "'$opts': $output"; false; }
	done <<'EOF'
--json -u
--json --ungroup
--json --line-buffer
--json --tag
--json --dry-run
-J --colsep ,
-J --header
-J --on-bad-input=bogus
-J -a /dev/null
EOF
	[ ! -e "$S/ran" ]
}
