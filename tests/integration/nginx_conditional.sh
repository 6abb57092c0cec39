#!/usr/bin/env bash
# nginx as a provider: the fixture's data set exported as static files
# (fixture-provider --export) and served by nginx (tests/lib/nginx.sh)
# answers conditional requests with 304, for If-None-Match (strong and
# weak) and If-Modified-Since; next links lead from file to file; after a
# change re-exported, an unchanged file keeps its validators and a changed
# one does not.  Skipped (77) only where nginx is not installed.
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/lib/nginx.sh"
nginx_require
nginx_stop_at_exit

ARGS=(--seed 7 --races 23 --entries-per-race 12 --athletes 40 --page-size 5)
W=$T/www
"$FIXTURE" "${ARGS[@]}" --export "$W" >"$T/urls.txt"
check_eq "--export names the stage URLs" "$(awk '{print $2}' "$T/urls.txt" | tr '\n' ' ')" \
	"/races.json /races/{id}/entries.json /athletes/{athlete_id}.json "
nginx_start "$W"
if [ "$(id -u)" = 0 ]; then
	check_eq "nginx runs as nobody" "$(ps -o user= -p "$NGINX_PID")" nobody
fi

head_of() { curl -s -D - -o /dev/null --max-time 10 "${@:2}" "$NGINX_URL$1" | tr -d '\r'; }
header() { head_of "${@:2}" | sed -n "s/^$1: //Ip"; } # NAME PATH [CURL ARGS]
status() { curl -s -o /dev/null --max-time 10 -w '%{http_code}' "${@:2}" "$NGINX_URL$1"; }

check_eq "a file is served as JSON" "$(header Content-Type /races.json)" application/json
check_eq "its body is the file" "$(curl -s "$NGINX_URL/races.json")" "$(cat "$W/races.json")"
etag=$(header ETag /races.json)
lm=$(header Last-Modified /races.json)
check "with an ETag" grep -Eq '^"[0-9a-f]+-[0-9a-f]+"$' <<<"$etag"
check "and a Last-Modified" test -n "$lm"
check_eq "If-None-Match: 304" "$(status /races.json -H "If-None-Match: $etag")" 304
check_eq "the weak form of it: 304" "$(status /races.json -H "If-None-Match: W/$etag")" 304
check_eq "in a list: 304" "$(status /races.json -H "If-None-Match: \"x\", $etag")" 304
check_eq "another ETag: 200" "$(status /races.json -H 'If-None-Match: "x"')" 200
check_eq "If-Modified-Since, the Last-Modified sent: 304" "$(status /races.json -H "If-Modified-Since: $lm")" 304
check_eq "both matching: 304" "$(status /races.json -H "If-None-Match: $etag" -H "If-Modified-Since: $lm")" 304
check_eq "the ETag not matching: 200 (If-None-Match wins)" \
	"$(status /races.json -H 'If-None-Match: "x"' -H "If-Modified-Since: $lm")" 200
check_eq "a 304 carries the ETag" "$(header ETag /races.json -H "If-None-Match: $etag")" "$etag"
check_eq "and no body" "$(curl -s -H "If-None-Match: $etag" "$NGINX_URL/races.json" | wc -c)" 0
next=$(jq -r .next "$W/races.json")
check_eq "the next link, relative, names the next file" "$(status "/$next")" 200
check_eq "an athlete's file" "$(curl -s "$NGINX_URL/athletes/a1.json" | jq -r .id)" a1
r=$(cd "$W/races" && ls -d */entries-p2.json | head -n 1 | cut -d/ -f1) # a race of several pages
check_eq "entries' next links name the file beside them" "$(jq -r .next "$W/races/$r/entries.json")" entries-p2.json
check_eq "which nginx serves" "$(status "/races/$r/entries-p2.json")" 200

# A change re-exported: the changed files only are rewritten.
e9=$(header ETag /races/9/entries.json)
sleep 1.1 # nginx's ETag holds the mtime in seconds: a rewrite must show
"$FIXTURE" "${ARGS[@]}" --mutate 'remove_entries=9&at=2026-06-01T12:00:00Z' --export "$W" >/dev/null
check_eq "an unchanged file keeps its ETag: 304" "$(status /races.json -H "If-None-Match: $etag")" 304
check_eq "and its Last-Modified: 304" "$(status /races.json -H "If-Modified-Since: $lm")" 304
check_eq "a changed file's old ETag: 200" "$(status /races/9/entries.json -H "If-None-Match: $e9")" 200
check_eq "with the new content" "$(curl -s "$NGINX_URL/races/9/entries.json")" '{"data":[],"next":null}'
nginx_stop
check "nginx stopped" test -z "$NGINX_PID"
echo "all nginx checks passed"
