/* The daemon binds a handler to every command of the table: a command
 * added to lib/control/ctlcommands.c without one fails here, not on a client's
 * request. */
#include "check.h"
#include "daemon_control.h"

static void test_every_command_has_a_handler(void)
{
	for (size_t i = 0; i < control_n_commands; i++)
		CHECK(daemon_control_handlers[i] != NULL);
}

static void test_help_is_answered_from_the_table(void)
{
	CHECK(daemon_control_handlers[CONTROL_CMD_HELP] == ctlserver_help);
}

int main(void)
{
	RUN(test_every_command_has_a_handler);
	RUN(test_help_is_answered_from_the_table);
	return CHECK_DONE();
}
