-- typed_micro.sql — PostgreSQL's own cost per row of typed columns
-- (docs/performance.md, "Typed columns"): 50,000 entry-like rows upserted
-- in batches of 500 (the statement raced sends) into a fresh table, per
-- variant: plain, filled (text arrays cast by the upsert) with and
-- without an index on athlete_id, generated (GENERATED ALWAYS AS ...
-- STORED, same index); 15 repetitions interleaved; minimum and median
-- µs per row.  Run in a throwaway cluster:
--   psql -X -d races -f tests/bench/typed_micro.sql
\set QUIET on
SET synchronous_commit = off;
DROP TABLE IF EXISTS src;
CREATE TABLE src AS SELECT 'e' || (g / 50) || '-' || (g % 50) AS k, 'r' || (g / 50) AS p,
  jsonb_build_object('id', 'e' || (g / 50) || '-' || (g % 50), 'race_id', (g / 50)::text,
    'athlete_id', 'a' || (g * 7919 % 40000), 'bib', 100 + g % 50, 'category', 'M40') AS j
  FROM generate_series(1, 50000) g;
CREATE OR REPLACE FUNCTION mk(variant text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DROP TABLE IF EXISTS t;
  IF variant = 'generated' THEN
    CREATE TABLE t (key text PRIMARY KEY, parent_key text, payload jsonb NOT NULL, first_import bigint,
      last_import bigint, updated_at timestamptz NOT NULL DEFAULT now(), removed_import bigint,
      bib integer GENERATED ALWAYS AS ((payload->>'bib')::integer) STORED,
      race_id integer GENERATED ALWAYS AS ((payload->>'race_id')::integer) STORED,
      athlete_id text GENERATED ALWAYS AS (payload->>'athlete_id') STORED);
  ELSE
    CREATE TABLE t (key text PRIMARY KEY, parent_key text, payload jsonb NOT NULL, first_import bigint,
      last_import bigint, updated_at timestamptz NOT NULL DEFAULT now(), removed_import bigint);
    IF variant <> 'plain' THEN
      ALTER TABLE t ADD COLUMN bib integer, ADD COLUMN race_id integer, ADD COLUMN athlete_id text;
    END IF;
  END IF;
  CREATE INDEX ON t (parent_key);
  IF variant <> 'plain' AND variant <> 'filled_noidx' THEN CREATE INDEX ON t (athlete_id); END IF;
END $$;
-- one batch of 500 as raced sends it: arrays, then the upsert
CREATE OR REPLACE FUNCTION run(variant text) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE ks text[]; ps text[]; js jsonb[]; b text[]; r text[]; a text[]; t0 timestamptz; t1 timestamptz;
  total double precision := 0; o int;
BEGIN
  PERFORM mk(variant);
  FOR o IN 0..99 LOOP
    SELECT array_agg(k ORDER BY k), array_agg(p ORDER BY k), array_agg(j ORDER BY k),
           array_agg(j->>'bib' ORDER BY k), array_agg(j->>'race_id' ORDER BY k), array_agg(j->>'athlete_id' ORDER BY k)
      INTO ks, ps, js, b, r, a FROM (SELECT * FROM src OFFSET o * 500 LIMIT 500) x;
    t0 := clock_timestamp();
    IF variant IN ('filled', 'filled_noidx') THEN
      INSERT INTO t AS t (key, parent_key, payload, first_import, last_import, updated_at, bib, race_id, athlete_id)
        SELECT u.k, u.p, u.j, 1, 1, now(), u.c0::integer, u.c1::integer, u.c2::text
        FROM unnest(ks, ps, js, b, r, a) AS u(k, p, j, c0, c1, c2)
        ON CONFLICT (key) DO UPDATE SET payload = excluded.payload, bib = excluded.bib, race_id = excluded.race_id,
          athlete_id = excluded.athlete_id WHERE t.payload IS DISTINCT FROM excluded.payload;
    ELSE
      INSERT INTO t AS t (key, parent_key, payload, first_import, last_import, updated_at)
        SELECT u.k, u.p, u.j, 1, 1, now() FROM unnest(ks, ps, js) AS u(k, p, j)
        ON CONFLICT (key) DO UPDATE SET payload = excluded.payload WHERE t.payload IS DISTINCT FROM excluded.payload;
    END IF;
    t1 := clock_timestamp();
    total := total + extract(epoch FROM t1 - t0);
  END LOOP;
  RETURN total;
END $$;
CREATE TEMP TABLE res (variant text, rep int, secs double precision);
DO $$ DECLARE rep int; v text; BEGIN
  FOR rep IN 1..15 LOOP
    FOREACH v IN ARRAY ARRAY['plain', 'filled', 'generated', 'filled_noidx'] LOOP
      INSERT INTO res VALUES (v, rep, run(v));
    END LOOP;
  END LOOP; END $$;
\unset QUIET
SELECT variant, round(min(secs)::numeric * 1e6 / 50000, 2) AS min_us_per_row,
  round((percentile_cont(0.5) WITHIN GROUP (ORDER BY secs))::numeric * 1e6 / 50000, 2) AS median_us_per_row,
  round((min(secs) / (SELECT min(secs) FROM res WHERE variant = 'plain'))::numeric, 3) AS min_x_plain
FROM res GROUP BY variant ORDER BY 2;
