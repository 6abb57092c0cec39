/* racectl — the command-line client over raced's control socket. */
#include "raced_version.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("racectl %s\n", RACED_VERSION);
		return 0;
	}
	fprintf(stderr, "racectl: not yet wired\n");
	return 2;
}
