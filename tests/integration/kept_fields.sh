#!/usr/bin/env bash
# Children of a 304 without a read-back (docs/architecture.md): a page's
# record keeps the values its items' children take (raced_pages.fields),
# so an unchanged import with validators feeds the entries and athletes
# stages from the pages' state and reads no row back.  A DELETE behind
# raced's back (counted by the trigger on the stage table, also for a
# role with no privilege on raced's own tables) makes the next import
# read back that stage's rows, find the page whose rows are gone and
# fetch it again; the one after trusts the kept values again.
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/integration/incremental_lib.sh"

pg_start
fixture_start --seed 7 --races 20 --entries-per-race 40 --athletes 600 --page-size 15 --validators both
write_config
athletes_requested() { reqs_count "k like '/athletes/%'"; }
# Page rows of stage $1 with items and no kept values.
without_values() {
	sql "select count(*) from raced_pages where stage = '$1' and cardinality(keys) > 0 and fields is null"
}

check "first import succeeds" raced_once
reqs_save
athletes=$(athletes_requested)
check "the athletes were requested" test "$athletes" -gt 100
check_eq "every entries page with items keeps its children's values" "$(without_values entries)" 0
check_eq "and every races page" "$(without_values races)" 0
check_eq "a leaf stage keeps none" \
	"$(sql "select count(*) from raced_pages where stage = 'athletes' and fields is not null")" 0

fixture_get /_reset >/dev/null
w0=$(writes)
check "second import (unchanged) succeeds" raced_once
N=$(last_run)
reqs_save
check_eq "every request answered 304" "$(reqs_count 'n <> nm')" 0
check_eq "every athlete requested again: fed every entry" "$(athletes_requested)" "$athletes"
check_eq "zero stage-row writes" "$(writes)" "$w0"
entries=$(sql "select count(*) from entries")
check_eq "entries fed to the athletes from the kept values" "$(run_count "$N" entries from_fields)" "$entries"
check_eq "races fed to the entries from the kept values" "$(run_count "$N" races from_fields)" 20
check_eq "no entry read back" "$(run_count "$N" entries read_back)" 0
check_eq "no race read back" "$(run_count "$N" races read_back)" 0
check_tables_served "unchanged"

# A role that may delete entries but not touch raced's tables: the
# trigger counts its DELETE all the same (SECURITY DEFINER).
sql "create role kf_user login; grant select, delete on entries to kf_user" >/dev/null
row=$(sql "select url || ' ' || array_length(keys, 1) from raced_pages
	where stage = 'entries' and page_no = 1 and seen_import >= 0 order by url limit 1")
url=${row% *}
lost=${row#* }
path=${url#"$FIXTURE_URL"}
keys=$(sql "select string_agg(quote_literal(k), ',') from raced_pages, unnest(keys) k
	where stage = 'entries' and url = '$url'")
check_eq "kf_user deletes the $lost rows of $path" \
	"$(PGUSER=kf_user "$PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 \
	-c "with d as (delete from entries where key in ($keys) returning 1) select count(*) from d")" "$lost"
check_eq "the delete was counted" "$(sql "select deletes from raced_stage_deletes where stage = 'entries'")" 1

fixture_get /_reset >/dev/null
check "third import (rows of one page gone) succeeds" raced_once
N=$(last_run)
reqs_save
check_eq "that page requested twice (304, then without validators)" \
	"$(reqs_count "k = '$path' and n = 2 and nm = 1")" 1
check "the entries were read back, not taken from the kept values" \
	test "$(run_count "$N" entries read_back)" -gt 0 -a "$(run_count "$N" entries from_fields)" -eq 0
check_eq "the races, untouched, still from their kept values" "$(run_count "$N" races from_fields)" 20
check_eq "every athlete requested again" "$(athletes_requested)" "$athletes"
check_tables_served "after the refetch"

fixture_get /_reset >/dev/null
check "fourth import succeeds" raced_once
N=$(last_run)
check_eq "the entries' kept values trusted again" "$(run_count "$N" entries from_fields)" "$entries"
check_eq "no entry read back" "$(run_count "$N" entries read_back)" 0

# The run before did not succeed (here: said partial): nothing is trusted.
sql "update import_runs set status = 'partial' where id = $N" >/dev/null
fixture_get /_reset >/dev/null
check "fifth import (after a partial one) succeeds" raced_once
N=$(last_run)
check "after a partial import the entries are read back" \
	test "$(run_count "$N" entries read_back)" -eq "$entries" -a "$(run_count "$N" entries from_fields)" -eq 0
check_eq "and the races" "$(run_count "$N" races from_fields)" 0
check "sixth import succeeds" raced_once
N=$(last_run)
check_eq "trusted again after a succeeded one" "$(run_count "$N" entries from_fields)" "$entries"

# The table made again (another oid; its rows copied, its trigger gone
# until the set-up puts it back): not trusted, though no delete was counted.
sql "begin; create table entries_copy (like entries including all);
     insert into entries_copy select * from entries; drop table entries cascade;
     alter table entries_copy rename to entries; commit" >/dev/null
check "seventh import (entries made again) succeeds" raced_once
N=$(last_run)
check "entries made again are read back" \
	test "$(run_count "$N" entries read_back)" -eq "$entries" -a "$(run_count "$N" entries from_fields)" -eq 0
check_eq "the races still from their kept values" "$(run_count "$N" races from_fields)" 20
check_eq "the set-up put the trigger back" \
	"$(sql "select count(*) from pg_trigger where tgrelid = 'entries'::regclass and tgname = 'raced_deleted'")" 1
check_tables_served "after the table was made again"

# A row deleted, then a run that does not trust the kept values (the
# delete) but gets every page with a body (new ETags, the same items):
# it does not take the items as unchanged from the pages' hashes, so the
# row is written back.  Else the run after, trusting the kept values
# again, would feed its children from them and never read it back (the
# 304s of every import before kept values read it back and fetched the
# page again).
key=$(sql "select k from raced_pages, unnest(keys) k where stage = 'entries'
	and seen_import >= 0 order by url, k limit 1")
check_eq "entry $key deleted" \
	"$(sql "with d as (delete from entries where key = '$key' returning 1) select count(*) from d")" 1
fixture_get "/_mutate?etag_salt=1" >/dev/null
fixture_get /_reset >/dev/null
check "eighth import (every page a body, the same items) succeeds" raced_once
reqs_save
check_eq "no request answered 304" "$(reqs_count 'nm > 0')" 0
check_eq "the entry deleted is written back" "$(sql "select count(*) from entries where key = '$key'")" 1
fixture_get /_reset >/dev/null
check "ninth import succeeds" raced_once
N=$(last_run)
check_eq "the entries' kept values trusted again" "$(run_count "$N" entries from_fields)" "$entries"
check_eq "entry $key is there" "$(sql "select count(*) from entries where key = '$key'")" 1
check_tables_served "after a delete and a run of bodies"

# Pages whose rows keep no values (as after the upgrade to migration 8,
# or a change of a child's URL) and answered 304: read back once, their
# rows given the values the children took, so the next import takes them.
sql "update raced_pages set fields = null where stage in ('races', 'entries')" >/dev/null
fixture_get /_reset >/dev/null
check "an import of pages keeping no values succeeds" raced_once
N=$(last_run)
reqs_save
check_eq "every request answered 304" "$(reqs_count 'n <> nm')" 0
check_eq "no entry taken from kept values" "$(run_count "$N" entries from_fields)" 0
check_eq "every entry read back" "$(run_count "$N" entries read_back)" "$entries"
check_eq "every entries page with items keeps its children's values again" "$(without_values entries)" 0
check_eq "and every races page" "$(without_values races)" 0
fixture_get /_reset >/dev/null
check "the import after succeeds" raced_once
N=$(last_run)
check_eq "it takes the entries from the values kept" "$(run_count "$N" entries from_fields)" "$entries"
check_eq "and the races" "$(run_count "$N" races from_fields)" 20
check_eq "no entry read back" "$(run_count "$N" entries read_back)" 0
check_tables_served "after the values were kept again"
w1=$(page_writes)
fixture_get /_reset >/dev/null
check "an unchanged import after succeeds" raced_once
check_eq "it writes no page row" "$(page_writes)" "$w1"

# Only the first pages keep no values: their rows are read back ahead,
# not those of the later pages, whose 304s take their kept values (rows
# read ahead for them would be held unused until their input's end).
entries_read() {
	wait_for "raced's database sessions to end" 20 no_other_backends
	sql "select idx_tup_fetch + seq_tup_read from pg_stat_user_tables where relname = 'entries'"
}
first_keys=$(sql "select sum(cardinality(keys)) from raced_pages where stage = 'entries' and page_no = 0")
sql "update raced_pages set fields = null where stage = 'entries' and page_no = 0" >/dev/null
r0=$(entries_read)
fixture_get /_reset >/dev/null
check "an import of first pages keeping no values succeeds" raced_once
N=$(last_run)
check "rows held ahead: at most the first pages' ($first_keys)" \
	test "$(run_count "$N" entries read_back_held_peak)" -le "$first_keys"
read=$(( $(entries_read) - r0 ))
check "entries rows read ($read): the first pages', not the later ones' (of $entries)" \
	test "$read" -lt "$(( first_keys + (entries - first_keys) / 2 ))"
check_eq "the first pages' entries read back" "$(run_count "$N" entries read_back)" "$first_keys"
check_eq "the later pages' from their kept values" \
	"$(run_count "$N" entries from_fields)" "$((entries - first_keys))"

# TRUNCATE is counted too.
sql "truncate athletes" >/dev/null
check_eq "a truncate is counted" "$(sql "select deletes from raced_stage_deletes where stage = 'athletes'")" 1
