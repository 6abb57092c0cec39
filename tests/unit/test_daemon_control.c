/* The daemon binds a handler to every command of the table: a command
 * added to lib/control/ctlcommands.c without one fails here, not on a client's
 * request.  Requesters are named from a table filled at start. */
#include "check.h"
#include "daemon_control.h"

#include <pwd.h>
#include <unistd.h>

static void test_every_command_has_a_handler(void)
{
	for (size_t i = 0; i < control_n_commands; i++)
		CHECK(daemon_control_handlers[i] != NULL);
}

static void test_help_is_answered_from_the_table(void)
{
	CHECK(daemon_control_handlers[CONTROL_CMD_HELP] == ctlserver_help);
}

/* The requester's name comes from the table filled at start, never from
 * NSS on the loop: root and raced's own user are named, anyone else is
 * "uid N" even when the system knows a name for it. */
static void test_requesters_are_named_from_the_table_filled_at_start(void)
{
	struct daemon_peer_names pn;
	char who[64];
	daemon_peer_names_fill(&pn, "no-such-group-here");
	daemon_peer_name(&pn, 0, who, sizeof who);
	CHECK_STR(who, "root");
	struct passwd *me = getpwuid(geteuid());
	daemon_peer_name(&pn, geteuid(), who, sizeof who);
	CHECK_STR(who, me ? me->pw_name : "uid ?");
	uid_t other = geteuid() == 65534 ? 65533 : 65534; /* nobody, usually */
	daemon_peer_name(&pn, other, who, sizeof who);
	char want[32];
	snprintf(want, sizeof want, "uid %u", (unsigned)other);
	CHECK_STR(who, want);
	daemon_peer_name(&pn, 4000000000u, who, sizeof who);
	CHECK_STR(who, "uid 4000000000");
}

/* admin_group's listed members are named too (root's group lists none
 * usually; the table stays within its bound whatever the group). */
static void test_admin_group_members_are_added_within_the_bound(void)
{
	struct daemon_peer_names pn;
	daemon_peer_names_fill(&pn, "root");
	CHECK(pn.n >= 1);
	CHECK(pn.n <= DAEMON_PEER_NAMES_MAX);
	CHECK_STR(pn.e[0].name, "root");
	CHECK_EQ(pn.e[0].uid, 0);
}

int main(void)
{
	RUN(test_every_command_has_a_handler);
	RUN(test_help_is_answered_from_the_table);
	RUN(test_requesters_are_named_from_the_table_filled_at_start);
	RUN(test_admin_group_members_are_added_within_the_bound);
	return CHECK_DONE();
}
