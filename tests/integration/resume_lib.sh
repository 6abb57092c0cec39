# resume_lib.sh — shared by the resume tests (issue 20; source it after
# harness.sh).
#
#   resume_config [EXTRA]  $T/raced.conf with small demands, buffers and
#                          concurrency (below), so the R7 bound on what a
#                          kill can leave in flight is small next to the
#                          import; EXTRA is appended
#   r7_bound               that bound, in URLs (the formula is below)
#   check_tables_exact     the three tables equal the data served
#   requests_json FILE     /_requests (per-URL counts since the last
#                          /_reset) to FILE
#   committed_urls ID FILE the paths of the pages import ID recorded
#                          (raced_pages.seen_import = ID), sorted, to FILE
#   requested_paths JSON FILE   the URL paths a /_requests answer names

# Per stage: max_demand (MD), buffer_size (BS), concurrency (C).
RES_MD=10
RES_BS=10
RES_C_ENTRIES=2
RES_C_ATHLETES=2

resume_config() {
	cat >"$T/raced.conf" <<CONF
[daemon]
control_socket = $T/raced.sock
admin_group = root
resume = ${RACED_RESUME:-no}

[database]
conninfo = $PG_CONNINFO
batch_size = 20
synchronous_commit = on

[provider main]
base_url = $FIXTURE_URL
max_connections = 8
timeout = 5s
max_retries = 5

[stage races]
provider = main
url = /races
items = /data
next = /next
key = /id
max_demand = $RES_MD
buffer_size = $RES_BS

[stage entries]
parent = races
provider = main
url = /races/{id}/entries
items = /data
next = /next
key = /id
max_demand = $RES_MD
buffer_size = $RES_BS
concurrency = $RES_C_ENTRIES

[stage athletes]
parent = entries
provider = main
url = /athletes/{athlete_id}
items =
key = /id
dedupe = yes
max_demand = $RES_MD
buffer_size = $RES_BS
concurrency = $RES_C_ATHLETES
CONF
	if [ $# -gt 0 ]; then printf '%s\n' "$@" >>"$T/raced.conf"; fi
}

# The R7 bound in URLs.  A URL requested before the kill and again by the
# resume is one whose page record had not committed: a page's record goes
# to the store after its items, so either its request was in flight (at
# most `concurrency` per stage; the root fetches one page at a time) or at
# least one of its items was alive in the daemon and not yet committed --
# in a stage's outstanding demand (max_demand) or its output buffer
# (buffer_size); the store's pending batch is inside the demand it
# granted (R6).  One alive item holds back at most one page, so:
#   bound = sum over stages of (max_demand + buffer_size + concurrency)
r7_bound() {
	echo $(( (RES_MD + RES_BS + 1) + (RES_MD + RES_BS + RES_C_ENTRIES) + (RES_MD + RES_BS + RES_C_ATHLETES) ))
}

check_tables_exact() {
	local ds kind diff
	ds=$(fixture_get /_dataset)
	check_eq "races stored" "$(sql 'select count(*) from races')" "$(json_get "$ds" races)"
	check_eq "entries stored" "$(sql 'select count(*) from entries')" "$(json_get "$ds" entries)"
	check_eq "athletes stored" "$(sql 'select count(*) from athletes')" "$(json_get "$ds" athletes_referenced)"
	for kind in races entries athletes; do
		fixture_get "/_dump/$kind" >"$T/$kind.json"
		diff=$(sql "with served as (select value as doc from jsonb_array_elements(pg_read_file('$T/$kind.json')::jsonb))
		           select count(*) from served s full join $kind t on t.key = s.doc->>'id'
		           where t.payload is distinct from s.doc")
		check_eq "$kind payloads equal the served items" "$diff" 0
	done
}

requests_json() { fixture_get /_requests >"$1"; }

# raced_pages.url is the URL as requested: the base URL then the path.
committed_urls() {
	sql "select url from raced_pages where seen_import = $1" |
		sed "s|^$FIXTURE_URL||" | sort -u >"$2"
}

requested_paths() {
	"$PG_BIN/psql" -qAtX -d postgres -v ON_ERROR_STOP=1 -v doc="$(cat "$1")" \
		<<<"select jsonb_object_keys((:'doc'::jsonb)->'urls')" | sed "s|^$FIXTURE_URL||" | sort -u >"$2"
}

# Requests so far / URLs an import needs, in percent.
progress_pct() {
	local need got
	need=$(json_get "$(fixture_get /_dataset)" requests_needed)
	got=$(json_get "$(fixture_get /_stats)" requests)
	echo $((got * 100 / need))
}
progress_at_least() { [ "$(progress_pct)" -ge "$1" ]; }
