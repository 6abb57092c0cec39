/* corunner — keep one CPU busy for a given share of the time, as a third
 * process (PostgreSQL in an end-to-end import) would, so that run.sh can
 * show what such a process alone does to raced's fetch-only rate on this
 * machine (part 6).
 *
 *   corunner SHARE_PERCENT [PERIOD_MS]
 *
 * Each period (default 3 ms) it spins until it has used SHARE% of the
 * period in CPU time, then sleeps for the rest, until killed.  Counting CPU
 * time rather than wall time keeps its work fixed when it is preempted, as
 * a database's is; its period stretches instead (run.sh reports the share
 * it really got).  SHARE 0 sleeps only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int number(const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	double share, period_ms = 3;
	if (argc < 2 || argc > 3 || number(argv[1], 0, 100, &share) != 0 ||
	    (argc == 3 && number(argv[2], 0.1, 1000, &period_ms) != 0)) {
		fprintf(stderr, "usage: corunner SHARE_PERCENT(0-100) [PERIOD_MS(0.1-1000)]\n");
		return 2;
	}
	double on = period_ms / 1e3 * share / 100, off = period_ms / 1e3 - on;
	struct timespec nap = { (time_t)off, (long)((off - (double)(time_t)off) * 1e9) };
	volatile unsigned long spins = 0;
	for (;;) {
		double until = cpu_s() + on;
		while (cpu_s() < until)
			spins++;
		if (off > 0)
			nanosleep(&nap, NULL);
	}
}
