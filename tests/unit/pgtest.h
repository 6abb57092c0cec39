/* pgtest — blocking queries for the unit tests that need PostgreSQL, each
 * on a connection of its own to `conninfo` (the test sets it, from
 * PG_CONNINFO, and may point it elsewhere for a while).
 *
 * Ownership: sql1's answer is the caller's to free; conninfo is borrowed. */
#ifndef RACED_PGTEST_H
#define RACED_PGTEST_H

extern const char *conninfo;

/* The first field of the first row, malloc'd, or NULL (errors to stderr). */
char *sql1(const char *q);
/* That field as a number, or -1. */
long long sql_int(const char *q);
/* A statement whose answer does not matter. */
void sql_exec(const char *q);

#endif
