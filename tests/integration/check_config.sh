#!/usr/bin/env bash
# raced --check-config: a valid configuration exits 0; each kind of error
# exits 78 (EX_CONFIG) with one line naming the file, the line, the section,
# the key and the fix.  raced itself refuses to start on the same files.
. "$TESTS_DIR/lib/harness.sh"

F=$T/raced.conf
P='[provider main]
base_url = https://api.example.com/v1'
S='[stage races]
provider = main
url = /races
key = /id'

refused() { # DESC EXPECTED-MESSAGE CONFIG-TEXT
	printf '%s\n' "$3" >"$F"
	local rc=0 out
	out=$("$RACED" --check-config --config "$F" 2>&1) || rc=$?
	check_eq "$1: exit code" "$rc" 78
	check_eq "$1: message" "$out" "raced: $2"
}

printf '%s\n' "$P" "$S" >"$F"
check "a valid configuration passes" "$RACED" --check-config --config "$F"
check "the shipped etc/raced.conf passes" "$RACED" --check-config --config "$TESTS_DIR/../etc/raced.conf"

refused "misspelt key" "$F:7: [stage races] unknown key 'concurency' (did you mean 'concurrency'?)" "$P
$S
concurency = 8"
refused "key in the wrong section" "$F:7: [stage races] unknown key 'rate_limit' (it belongs in a [provider NAME] section)" "$P
$S
rate_limit = 5"
refused "misspelt section" "$F:2: unknown section [stages races] (did you mean [stage races]?)" "[daemon]
[stages races]"
refused "duplicate key" "$F:4: [daemon] duplicate key 'max_clients' (first set on line 2)" "[daemon]
max_clients = 3

max_clients = 4"
refused "out of range" "$F:2: [daemon] max_clients: 0 is out of range (1 to 65536)" "[daemon]
max_clients = 0"
refused "no database connection" "$F:3: [database] connections: 0 is out of range (1 to 16)" "[database]
batch_size = 100
connections = 0"
refused "more database connections than the bound" "$F:2: [database] connections: 17 is out of range (1 to 16)" "[database]
connections = 17"
refused "bad duration" "$F:2: [daemon] stop_timeout: '30x' is not a duration (expected a whole number with ms, s, m, h or d, e.g. 250ms, 30s, 2m, 1h; a bare number is seconds)" "[daemon]
stop_timeout = 30x"
refused "relative base_url" "$F:2: [provider main] base_url: 'api.example.com/v1' is not an absolute http:// or https:// URL (it has no scheme)" "[provider main]
base_url = api.example.com/v1"
refused "min_demand not below max_demand" "$F:8: [stage races] min_demand (100) must be less than max_demand (100)" "$P
$S
max_demand = 100
min_demand = 100"
refused "unknown provider" "$F:4: [stage races] provider 'mian' is not defined (did you mean 'main'?)" "$P
[stage races]
provider = mian
url = /races
key = /id"
refused "unknown parent" "$F:8: [stage entries] parent 'race' is not a stage (did you mean 'races'?)" "$P
$S
[stage entries]
parent = race
provider = main
url = /races/{id}/entries
key = /id"
refused "a cycle of parents" "$F:8: [stage b] parents form a cycle: b -> c -> b (one stage must have no parent)" "$P
$S
[stage b]
parent = c
provider = main
url = /b/{id}
key = /id
[stage c]
parent = b
provider = main
url = /c/{id}
key = /id"
refused "a template field in the root" "$F:6: [stage races] url: '/races/{id}' uses a field of the parent item, but this is the root stage: it has no parent (the root's url may name only {last_success} and {cursor})" "$P
[stage races]
provider = main
key = /id
url = /races/{id}"
refused "a conninfo libpq cannot parse" "$F:2: [database] conninfo: not a valid libpq connection string: invalid connection option \"bogus_option\"" "[database]
conninfo = dbname=races bogus_option=1
$P
$S"
# Import state across runs (issues 15 and 20): every new key, with its fix.
printf '%s\n' "[daemon]" "resume = no" "[database]" "synchronous_commit = off" "max_outage = 0" "$P" \
	"[stage races]" "provider = main" "key = /id" "url = /races?since={last_success}" "lag = 10m" \
	"initial = 2024-01-01T00:00:00Z" "refresh = 1h" >"$F"
check "the state keys pass" "$RACED" --check-config --config "$F"
refused "refresh not a duration" "$F:7: [stage races] refresh: 'often' is not a duration (expected a whole number with ms, s, m, h or d, e.g. 250ms, 30s, 2m, 1h; a bare number is seconds)" "$P
$S
refresh = often"
refused "cursor in a child stage" "$F:12: [stage entries] cursor: only the root stage (the one without a parent) may set it; this stage's parent is 'races': move cursor to the root stage or remove it" "$P
$S
[stage entries]
parent = races
provider = main
url = /races/{id}/entries
key = /id
cursor = /updated_at"
refused "{last_success} without initial" "$F:6: [stage races] url: '{last_success}' needs 'initial', the value the first import uses (e.g. initial = 2024-01-01T00:00:00Z)" "$P
[stage races]
provider = main
key = /id
url = /races?since={last_success}"
refused "{cursor} without cursor" "$F:6: [stage races] url: '{cursor}' needs 'cursor = /pointer', the field of the root's items whose largest stored value it stands for (e.g. cursor = /updated_at)" "$P
[stage races]
provider = main
key = /id
url = /races?after={cursor}
initial = 0"
refused "cursor not a pointer" "$F:7: [stage races] cursor: 'updated_at' is not a JSON pointer (expected a pointer starting with '/', e.g. /updated_at)" "$P
[stage races]
provider = main
key = /id
url = /races?after={cursor}
cursor = updated_at
initial = 0"
refused "initial neither time nor number" "$F:7: [stage races] initial: 'yesterday' is neither an ISO 8601 timestamp nor a number (expected e.g. 2024-01-01T00:00:00Z, 2024-01-01 or 0)" "$P
[stage races]
provider = main
key = /id
url = /races?since={last_success}
initial = yesterday"
refused "{last_success} in a child stage" "$F:11: [stage entries] url: '{last_success}' may only be used in the root stage's url (it is the import's state, not a field of the parent item); to use a parent field of that name write {/last_success}" "$P
$S
[stage entries]
parent = races
provider = main
key = /id
url = /e?since={last_success}"
refused "synchronous_commit not a setting" "$F:2: [database] synchronous_commit: 'fast' is not valid (expected on, off, local, remote_write or remote_apply)" "[database]
synchronous_commit = fast
$P
$S"
refused "resume neither no nor auto" "$F:2: [daemon] resume: 'yes' is not valid (expected no or auto)" "[daemon]
resume = yes
$P
$S"
# The paging styles' keys: each only with its style, the required ones
# present (issue 18).
refused "a paging key of another style" "$F:8: [stage races] total_pages: only next = page_number takes it, and this stage has next = offset: remove total_pages or set next = page_number" "$P
$S
next = offset
total_pages = /pages"
refused "a paging style without its required key" "$F:7: [stage races] next = offset needs 'limit' (e.g. limit = 100, the page size to ask for)" "$P
$S
next = offset"
printf '%s\n' "$P" "$S" 'next = cursor' 'cursor_pointer = /meta/next' 'has_more = /meta/more' >"$F"
check "a cursor style with its keys passes" "$RACED" --check-config --config "$F"
refused "no stages" "$F: no [stage NAME] section: a pipeline needs at least one stage" "$P"
rc=0
out=$("$RACED" --check-config --config "$T/missing.conf" 2>&1) || rc=$?
check_eq "a missing file: exit code" "$rc" 78
check_eq "a missing file: message" "$out" "raced: $T/missing.conf: cannot open: No such file or directory"

# The daemon refuses to start on an invalid file, with the same message.
printf '%s\n' "$P" "$S" "concurency = 8" >"$F"
rc=0
"$RACED" --config "$F" 2>"$T/raced.log" || rc=$?
check_eq "raced refuses to start: exit code" "$rc" 78
check "raced refuses to start: message" grep -q "concurency" "$T/raced.log"
