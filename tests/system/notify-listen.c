/* notify-listen — stand in for systemd's notification socket in tests.
 *
 *   notify-listen SOCKET_PATH COMMAND [ARG...]
 *
 * Binds an AF_UNIX datagram socket at SOCKET_PATH, runs COMMAND with
 * NOTIFY_SOCKET pointing at it, and writes to stdout, one line each,
 * flushed at once:
 *   pid N              the command's pid (first line; signal it with kill)
 *   <datagram>         every notification, newlines shown as "\n"
 *   exit N | signal N  how the command ended (last line)
 * and exits 0.  A test script reads the lines as they come (a bash coproc
 * with `read -t`), so it waits on events with a deadline, never on sleeps.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void drain(int fd)
{
	char buf[4096];
	ssize_t n;
	while ((n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT)) > 0) {
		buf[n] = '\0';
		for (char *p = buf; *p; p++) {
			if (*p == '\n')
				fputs("\\n", stdout);
			else
				putchar(*p);
		}
		putchar('\n');
		fflush(stdout);
	}
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: notify-listen SOCKET_PATH COMMAND [ARG...]\n");
		return 2;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(argv[1]) >= sizeof sa.sun_path) {
		fprintf(stderr, "notify-listen: socket path too long: %s\n", argv[1]);
		return 2;
	}
	memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unlink(argv[1]);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		fprintf(stderr, "notify-listen: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	setenv("NOTIFY_SOCKET", argv[1], 1);
	pid_t pid = fork();
	if (pid < 0) {
		perror("notify-listen: fork");
		return 1;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		fprintf(stderr, "notify-listen: %s: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	printf("pid %d\n", (int)pid);
	fflush(stdout);
	int pfd = pidfd_open(pid, 0);
	if (pfd < 0) {
		perror("notify-listen: pidfd_open");
		return 1;
	}
	for (;;) {
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = pfd, .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("notify-listen: poll");
			return 1;
		}
		if (p[0].revents)
			drain(fd);
		if (p[1].revents)
			break;
	}
	int status;
	waitpid(pid, &status, 0);
	drain(fd);
	if (WIFSIGNALED(status))
		printf("signal %d\n", WTERMSIG(status));
	else
		printf("exit %d\n", WEXITSTATUS(status));
	fflush(stdout);
	close(fd);
	unlink(argv[1]);
	return 0;
}
