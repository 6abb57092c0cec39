/* raced — the daemon: wires libraced's modules together and runs the loop. */
#include "raced_version.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("raced %s\n", RACED_VERSION);
		return 0;
	}
	fprintf(stderr, "raced: not yet wired\n");
	return 1;
}
