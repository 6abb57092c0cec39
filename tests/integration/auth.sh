#!/usr/bin/env bash
# Authentication (issue 18 item 2): the fixture requires each method in
# turn -- a bearer token, basic user:password, a header, a query parameter
# -- and a static header (Accept: application/vnd.x+json, 406 without it).
# Each method imports the data set exactly; a wrong secret fails the import
# with one error naming the provider and the settings, the first page
# asked once (not retried, no loop); a base_url with user:password works.
# No secret appears in any output: the daemon's log (--verbose), racectl
# stats/status/errors (human and --json), import_errors, raced_pages,
# import_runs, the metrics; each is checked to hold the masked form where
# one is due.
. "$TESTS_DIR/lib/harness.sh"

out=$T/out
mkdir -p "$out"
accept='Accept: application/vnd.x+json'
data=(--seed 5 --races 9 --entries-per-race 5 --athletes 15 --page-size 4)
secrets=()

pg_start

# Provider lines after base_url (write_config's [provider main]).
provider_lines() { # LINES...
	local l
	for l in "$@"; do
		sed -i "/^max_retries = 5/a $l" "$T/raced.conf"
	done
}

# One import under the daemon, then every output into $out/TAG-*
# (the metrics scraped over a Unix socket).
run_import() { # TAG
	grep -q '^metrics = ' "$T/raced.conf" || sed -i "/^\[daemon\]/a metrics = $T/metrics.sock" "$T/raced.conf"
	raced_start --verbose
	ctl start-import --wait >"$out/$1-start-import.txt" 2>&1 || true
	local c
	for c in stats status errors; do
		ctl "$c" >"$out/$1-$c.txt" 2>&1 || true
		ctl --json "$c" >"$out/$1-$c.json" 2>&1 || true
	done
	curl -s --max-time 5 --unix-socket "$T/metrics.sock" http://localhost/metrics >"$out/$1-metrics.txt" 2>&1 || true
	check "$1: the metrics were scraped" grep -q '^raced_provider' "$out/$1-metrics.txt"
	raced_stop || true
	cp "$T/raced.log" "$out/$1-raced.log"
	sql 'select e::text from import_errors e' >"$out/$1-import_errors.txt"
	sql 'select r::text from import_runs r' >"$out/$1-import_runs.txt"
	sql 'select p::text from raced_pages p' >"$out/$1-raced_pages.txt"
}

last_status() { sql 'select status from import_runs order by id desc limit 1'; }
last_id() { sql 'select max(id) from import_runs'; }

expect_exact() { # TAG
	fixture_get /_dataset >"$T/dataset.json"
	local d; d=$(cat "$T/dataset.json")
	check_eq "$1: the import succeeded" "$(last_status)" succeeded
	check_eq "$1: races exact" "$(sql 'select count(*) from races')" "$(json_get "$d" races)"
	check_eq "$1: entries exact" "$(sql 'select count(*) from entries')" "$(json_get "$d" entries)"
	check_eq "$1: athletes exact" "$(sql 'select count(*) from athletes')" "$(json_get "$d" athletes_referenced)"
	local st; st=$(fixture_get /_stats)
	check_eq "$1: no request refused" "$(json_get "$st" by_status 401)$(json_get "$st" by_status 406)" ""
}

# A wrong secret: raced --once fails, one error naming the provider and
# the method's settings, the root's first page asked once.
expect_refused() { # TAG SETTING-REGEX
	local rc=0
	fixture_get /_reset >/dev/null
	"$RACED" --config "$T/raced.conf" --once >"$out/$1-once.log" 2>&1 || rc=$?
	check_eq "$1 wrong: raced --once exits 1" "$rc" 1
	check_eq "$1 wrong: the import failed" "$(last_status)" failed
	local id; id=$(last_id)
	check_eq "$1 wrong: one import error" "$(sql "select count(*) from import_errors where import_id = $id")" 1
	local msg; msg=$(sql "select message from import_errors where import_id = $id")
	echo "     $msg"
	check "$1 wrong: the error names the provider and the settings" \
		grep -qE "HTTP 401 Unauthorized \(not retried\); check the credentials of \[provider main\] \($2" <<<"$msg"
	check_eq "$1 wrong: one request in all (the first page, once)" "$(json_get "$(fixture_get /_stats)" requests)" 1
}

reset_tables() { sql 'truncate races, entries, athletes, import_errors, raced_pages'; }

# --- bearer -----------------------------------------------------------------
secrets+=(bearerT0kenS3cret)
printf 'bearerT0kenS3cret\n' >"$T/bearer.token"
fixture_start "${data[@]}" --auth-bearer bearerT0kenS3cret --require-header "$accept"
write_config
provider_lines "token_file = $T/bearer.token" "header = $accept"
run_import bearer
expect_exact bearer
printf 'wrongBearerS3cret\n' >"$T/bearer.token"
secrets+=(wrongBearerS3cret)
expect_refused bearer "auth = bearer: the token of 'token_file'"
fixture_stop

# --- basic ------------------------------------------------------------------
reset_tables
secrets+=(basicPassS3cret)
printf 'basicPassS3cret\n' >"$T/basic.password"
fixture_start "${data[@]}" --auth-basic raceduser:basicPassS3cret --require-header "$accept"
write_config
provider_lines "auth = basic" "username = raceduser" "password_file = $T/basic.password" "header = $accept"
run_import basic
expect_exact basic
# The password as a systemd credential instead of password_file.
reset_tables
mkdir -p "$T/creds"
printf 'basicPassS3cret\n' >"$T/creds/main.password"
sed -i '/^password_file = /d' "$T/raced.conf"
rc=0
CREDENTIALS_DIRECTORY=$T/creds "$RACED" --config "$T/raced.conf" --once >"$out/basic-cred-once.log" 2>&1 || rc=$?
check_eq "basic from \$CREDENTIALS_DIRECTORY/main.password: raced --once exits 0" "$rc" 0
expect_exact "basic credential"
printf 'wrongBasicS3cret\n' >"$T/creds/main.password"
secrets+=(wrongBasicS3cret)
CREDENTIALS_DIRECTORY=$T/creds expect_refused basic "auth = basic: 'username' and the password"
fixture_stop

# --- header -----------------------------------------------------------------
reset_tables
secrets+=(headerKeyS3cret)
printf 'headerKeyS3cret\n' >"$T/header.token"
fixture_start "${data[@]}" --auth-header X-Api-Key:headerKeyS3cret --require-header "$accept"
write_config
provider_lines "auth = header" "auth_header = X-Api-Key" "token_file = $T/header.token" "header = $accept"
run_import header
expect_exact header
printf 'wrongHeaderS3cret\n' >"$T/header.token"
secrets+=(wrongHeaderS3cret)
expect_refused header "auth = header: 'auth_header' and the token"
fixture_stop

# --- query (the fixture echoes the parameter in its next links) ---------------
reset_tables
secrets+=(queryKeyS3cret)
printf 'queryKeyS3cret\n' >"$T/query.token"
fixture_start "${data[@]}" --auth-query api_key=queryKeyS3cret --require-header "$accept" \
	--broken /races/5/entries=404
write_config
provider_lines "auth = query" "auth_param = api_key" "token_file = $T/query.token" "header = $accept"
run_import query
check_eq "query: the import is partial (one 404)" "$(last_status)" partial
check_eq "query: the 404's URL is stored with the parameter masked (or without it)" \
	"$(sql "select count(*) from import_errors where url like '%/races/5/entries' or url like '%/races/5/entries?api_key=***'")" 1
check "query: a stored next link shows the parameter masked" grep -q 'api_key=\*\*\*' "$out/query-raced_pages.txt"
check_eq "query: every race stored" "$(sql 'select count(*) from races')" "$(json_get "$(fixture_get /_dataset)" races)"
st=$(fixture_get /_stats)
check_eq "query: no request refused" "$(json_get "$st" by_status 401)" ""
printf 'wrongQueryS3cret\n' >"$T/query.token"
secrets+=(wrongQueryS3cret)
expect_refused query "auth = query: 'auth_param' and the token"
fixture_stop

# --- the static header missing: 406, naming the setting -----------------------
reset_tables
fixture_start "${data[@]}" --require-header "$accept"
write_config
rc=0
"$RACED" --config "$T/raced.conf" --once >"$out/accept-once.log" 2>&1 || rc=$?
check_eq "without the static header: raced --once exits 1" "$rc" 1
check "the 406 names the setting 'header'" grep -q "HTTP 406 Not Acceptable (not retried); \[provider main\] may need another Accept (or other) header line: setting 'header'" "$out/accept-once.log"
fixture_stop

# --- user:password in base_url (basic auth by libcurl) ------------------------
reset_tables
secrets+=(urlPassS3cret)
fixture_start "${data[@]}" --auth-basic urluser:urlPassS3cret --broken /races/5/entries=404
write_config
sed -i "s|^base_url = .*|base_url = http://urluser:urlPassS3cret@${FIXTURE_URL#http://}|" "$T/raced.conf"
run_import url
check_eq "base_url user:password: the import is partial (one 404)" "$(last_status)" partial
check_eq "base_url user:password: every race stored" "$(sql 'select count(*) from races')" "$(json_get "$(fixture_get /_dataset)" races)"
check "base_url's password is masked in import_errors" grep -q 'urluser:\*\*\*@' "$out/url-import_errors.txt"
check "base_url's password is masked in the log" grep -q 'urluser:\*\*\*@' "$out/url-raced.log"
check_eq "no request refused" "$(json_get "$(fixture_get /_stats)" by_status 401)" ""
fixture_stop

# --- --check-config: a secret file empty or unreadable names file and setting -
: >"$T/empty.password"
write_config
provider_lines "auth = basic" "username = u" "password_file = $T/empty.password"
rc=0
msg=$("$RACED" --config "$T/raced.conf" --check-config 2>&1) || rc=$?
check_eq "--check-config refuses an empty password_file" "$rc" 78
check "... naming the line, the setting and the file" \
	grep -qE "raced.conf:[0-9]+: \[provider main\] password_file: '$T/empty.password' is empty" <<<"$msg"

# A stage URL with a password is refused: the root's is stored with each
# import (import_runs.root_url, read back to resume).
write_config
sed -i "s|^url = /races$|url = http://urluser:urlPassS3cret@${FIXTURE_URL#http://}/races|" "$T/raced.conf"
rc=0
"$RACED" --config "$T/raced.conf" --check-config >"$out/check-stage-url.txt" 2>&1 || rc=$?
check_eq "--check-config refuses a password in a stage URL" "$rc" 78
check "... saying where it belongs" grep -q "url: a stage URL may not hold user:password" "$out/check-stage-url.txt"

# Nothing secret anywhere.
for s in "${secrets[@]}"; do
	if grep -rl -- "$s" "$out" >"$T/found"; then
		fail "secret '$s' written to: $(tr '\n' ' ' <"$T/found")"
	fi
done
echo "ok   no secret in $(find "$out" -type f | wc -l) outputs ($(cat "$out"/* | wc -c) bytes)"
