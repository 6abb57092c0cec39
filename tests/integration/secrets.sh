#!/usr/bin/env bash
# Secrets: planted in every form raced meets them — password= and
# sslpassword= in a keyword=value conninfo and in a URI conninfo, user:password
# in base_url, user:password in a next link a provider's body gives — none
# appears in any output: raced's log (--verbose), every racectl command's
# human and --json output (also while the database is down), the reload
# reply, import_runs and import_errors, raced --check-config.  Each channel
# is also checked to carry the masked form, so the test cannot pass by
# looking where nothing was written.  (STATUS= is masked in notify_status,
# held by test_notify.)
. "$TESTS_DIR/lib/harness.sh"

secrets=(pgPassS3cret sslKeyS3cret baseS3cret n3xt-l1nk-s3cret uriPassS3cret uriSslS3cret
	ftpS3cret badUriS3cret pgPassS3cret2 baseS3cret2)
out=$T/out
mkdir -p "$out"

pg_start
# trust authentication: libpq sends neither secret, the connection works.
fixture_start --seed 3 --races 8 --entries-per-race 3 --athletes 10 --page-size 4 \
	--broken /races/3/entries=userinfo --broken /races/5/entries=404
with_secrets() { # base_url password, conninfo password
	sed -i "s|^base_url = .*|base_url = http://baseuser:$1@${FIXTURE_URL#http://}|;
	        s|^conninfo = .*|conninfo = $PG_CONNINFO password=$2 sslpassword=sslKeyS3cret|" "$T/raced.conf"
}
write_config
with_secrets baseS3cret pgPassS3cret
raced_start --verbose

# Every command, human and --json.
run_all() { # tag
	local c
	for c in health stats status "status 1" version help "help reload" "status 99"; do
		# shellcheck disable=SC2086
		ctl $c >"$out/$1-${c// /_}.txt" 2>&1 || true
		# shellcheck disable=SC2086
		ctl --json $c >"$out/$1-${c// /_}.json" 2>&1 || true
	done
}
ctl start-import --wait >"$out/start-import.txt" 2>&1 || true
check_eq "the import ran and is partial (a 404, a next link to a 404)" \
	"$(sql 'select status from import_runs where id = 1')" partial
check_eq "the next link with a password was followed and failed" \
	"$(sql "select count(*) from import_errors where url like 'http://nextuser:***@%/races/3/entries/gone'")" 1
check_eq "base_url's password is masked in import_errors" \
	"$(sql "select count(*) from import_errors where url like 'http://baseuser:***@%/races/5/entries'")" 1
run_all up
check "stats shows the conninfo with its secrets masked" grep -q "password=\\*\\*\\* dbname=races host=[^ ]* port=5432 fallback_application_name=raced sslpassword=\\*\\*\\*," "$out/up-stats.json"

# The database goes away: the messages that quote the conninfo and libpq.
pg_cluster_stop
db_is() { local h; h=$(ctl health 2>&1) || true; [[ $h == *"$1"* ]]; }
wait_for "health to see the database down" 30 db_is 'database backoff'
run_all down
pg_cluster_start
wait_for "health to see the database again" 60 db_is 'db connected'

# A reload that changes the secrets (and only them) and one visible part.
with_secrets baseS3cret2 pgPassS3cret2
sed -i "s|^timeout = .*|timeout = 6s|" "$T/raced.conf"
ctl reload >"$out/reload.txt" 2>&1 || true
with_secrets baseS3cret pgPassS3cret
sed -i "s|^base_url = .*|base_url = $FIXTURE_URL|" "$T/raced.conf"
ctl --json reload >"$out/reload.json" 2>&1 || true
raced_stop
cp "$T/raced.log" "$out/raced-keyword.log"
check "the reload's summary says a secret changed" grep -q 'conninfo changed (a secret changed)' "$out/raced-keyword.log"
check "the reload's summary shows base_url masked" grep -q "base_url 'http://baseuser:\*\*\*@" "$out/raced-keyword.log"

# A URI conninfo, query secret and all.
sed -i "s|^conninfo = .*|conninfo = postgresql://raced:uriPassS3cret@/races?host=$PG_DIR/sock\&sslpassword=uriSslS3cret|" \
	"$T/raced.conf"
raced_start --verbose
ctl start-import --wait >"$out/uri-start-import.txt" 2>&1 || true
run_all uri
raced_stop
cp "$T/raced.log" "$out/raced-uri.log"
check "the URI conninfo is shown masked" grep -q 'user=raced password=\*\*\* dbname=races host=[^ ]* fallback_application_name=raced sslpassword=\*\*\*' \
	"$out/uri-stats.json"

# --check-config on values it refuses, quoting them.
for bad in "conninfo = postgresql://u:badUriS3cret@[::1/races?sslpassword=badUriS3cret" \
	"base_url = ftp://ftpuser:ftpS3cret@127.0.0.1/"; do
	cp "$T/raced.conf" "$T/bad.conf"
	sed -i "s|^${bad%% =*} = .*|$bad|" "$T/bad.conf"
	"$RACED" --config "$T/bad.conf" --check-config >"$out/check-${bad%% =*}.txt" 2>&1 || true
	"$RACED" --config "$T/bad.conf" --once >"$out/once-${bad%% =*}.txt" 2>&1 || true
done
check "--check-config quotes the refused URL masked" grep -q "ftpuser:\*\*\*@" "$out/check-base_url.txt"
"$RACED" --config "$T/raced.conf" --check-config >"$out/check-ok.txt" 2>&1

sql 'select r::text from import_runs r' >"$out/import_runs.txt"
sql 'select e::text from import_errors e' >"$out/import_errors.txt"
check "the log shows the next link masked" grep -q 'nextuser:\*\*\*@' "$out/raced-keyword.log"
check "the log shows base_url masked" grep -q 'baseuser:\*\*\*@' "$out/raced-keyword.log"

for s in "${secrets[@]}"; do
	if grep -rl -- "$s" "$out" >"$T/found"; then
		fail "secret '$s' written to: $(tr '\n' ' ' <"$T/found")"
	fi
done
echo "ok   no planted secret in $(find "$out" -type f | wc -l) outputs ($(cat "$out"/* | wc -c) bytes)"
