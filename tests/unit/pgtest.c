/* pgtest — see pgtest.h. */
#include "pgtest.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *conninfo;

char *sql1(const char *q)
{
	PGconn *c = PQconnectdb(conninfo);
	char *out = NULL;
	if (PQstatus(c) == CONNECTION_OK) {
		PGresult *r = PQexec(c, q);
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
			out = strdup(PQgetvalue(r, 0, 0));
		else if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
			fprintf(stderr, "sql1(%s): %s", q, PQresultErrorMessage(r));
		PQclear(r);
	} else {
		fprintf(stderr, "sql1: %s", PQerrorMessage(c));
	}
	PQfinish(c);
	return out;
}

long long sql_int(const char *q)
{
	char *v = sql1(q);
	long long n = v ? atoll(v) : -1;
	free(v);
	return n;
}

void sql_exec(const char *q)
{
	free(sql1(q));
}
