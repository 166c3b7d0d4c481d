#!/usr/bin/env python3
"""persist-worker.py - a worked example of a persistent worker for cpmap.

Use a persistent worker when starting the command costs more than the work
on one input: a Python interpreter, a model or a lookup table to load.  With
--persist, cpmap starts the command ONCE per slot (-j N: N copies, each with
its own memory) and then streams the inputs to it:

  * each input arrives on the worker's stdin as one line ending in "\\n"
    (with cpmap -J: the input's compact JSON text, a JSON string keeps its
    quotes);
  * the worker must answer EVERY input with EXACTLY ONE line on stdout,
    ending in "\\n", in the order the inputs came, and flush it at once
    (cpmap sends several inputs before it reads the first answer, and the
    answer is the task's output: one missing answer stalls the worker, an
    extra line is a protocol error and the worker is restarted);
  * anything written to stderr is passed through to cpmap's stderr, each
    line prefixed "[slot N] " - use it for logging, never stdout;
  * EOF on stdin means "no more work": answer what you have and exit.
    (--persist-max N gives a worker N inputs, then EOF, and starts a fresh
    one for the next input.)
  * CPMAP_SLOT (and {%} in the command) is the worker's slot, 1..-j: handy to
    pick a GPU or a port per worker.

If this worker crashes, cpmap starts a new one: the input it was working on
fails (or is retried with --retries N) and the inputs it had not answered yet
are sent again, so no input is lost or answered twice.

This example loads TABLE, a tab-separated file of KEY<TAB>VALUE lines (the
"model"), once, then looks each input up in it:

  plain lines:   the input line is a key; the answer is  KEY<TAB>VALUE
                 (VALUE is NA when the key is not in the table).
  --json (use with cpmap -J): each input line is a JSON value.  A string is
                 the key; an object's field NAME (--field NAME, default "key")
                 is the key.  The answer is one compact JSON object: the
                 record with "value" added ({"key": S, "value": V} for a
                 string; V is null when the key is not in the table); a
                 record it cannot use gets {"error": "..."} - still exactly
                 one line.

Run it with cpmap (from the top of cpmap's source tree):

  cut -f1 data.tsv | cpmap --persist -k contrib/persist-worker.py table.tsv
  cpmap -J --json --persist -k contrib/persist-worker.py --json table.tsv \\
      < records.jsonl

Without cpmap, it is an ordinary filter:

  printf 'apple\\nkiwi\\n' | contrib/persist-worker.py table.tsv
"""

import json
import sys

USAGE = "usage: persist-worker.py [--json] [--field NAME] [--verbose] TABLE\n"


def load_table(path):
    """KEY<TAB>VALUE lines -> dict; the value is everything after the first
    tab (further tabs included); a line without a tab has an empty value;
    empty lines are skipped; the last of duplicate keys wins."""
    table = {}
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", "surrogateescape").rstrip("\r\n")
            if line == "":
                continue
            key, _, value = line.partition("\t")
            table[key] = value
    return table


def answer_plain(table, line):
    return "%s\t%s" % (line, table.get(line, "NA"))


def dumps(value):
    """Compact JSON text; json.dumps escapes newlines inside strings, so
    the answer stays one line."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def answer_json(table, field, line):
    try:
        record = json.loads(line)
    except ValueError as e:
        return dumps({"error": "not JSON: %s" % e})
    if isinstance(record, str):
        record = {"key": record}
        key = record["key"]
    elif isinstance(record, dict):
        key = record.get(field)
        if not isinstance(key, str):
            return dumps({"error": "the record has no string field %r"
                          % field})
    else:
        return dumps({"error": "expected a string or an object"})
    record["value"] = table.get(key)
    return dumps(record)


def main(argv):
    use_json, field, verbose, args = False, "key", False, []
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--json":
            use_json = True
        elif a == "--field" and i + 1 < len(argv):
            field = argv[i + 1]
            i += 1
        elif a == "--verbose":
            verbose = True
        elif a.startswith("-") and a != "-":
            sys.stderr.write(USAGE)
            return 2
        else:
            args.append(a)
        i += 1
    if len(args) != 1:
        sys.stderr.write(USAGE)
        return 2

    table = load_table(args[0])  # the expensive part, done once
    if verbose:
        sys.stderr.write("loaded %d keys from %s\n" % (len(table), args[0]))
        sys.stderr.flush()

    # Bytes in, bytes out: an input that is not valid UTF-8 must still get
    # its one answer line, not a UnicodeDecodeError.
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        raw = stdin.readline()  # returns as soon as one line is there
        if not raw:
            break  # EOF: no more work
        line = raw.decode("utf-8", "surrogateescape").rstrip("\n")
        try:
            if use_json:
                out = answer_json(table, field, line)
            else:
                out = answer_plain(table, line)
        except Exception as e:  # never leave an input unanswered
            out = "error: %s" % e
        out = out.replace("\n", " ")  # one line, whatever happened
        stdout.write(out.encode("utf-8", "surrogateescape") + b"\n")
        stdout.flush()  # the answer must not wait in a buffer
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(1)
