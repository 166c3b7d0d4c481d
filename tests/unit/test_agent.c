/*
 * test_agent.c - the sh agent that cpmap embeds (agent_script.c) is
 * src/agent.sh as build-aux/embed-agent writes it: comment lines dropped,
 * every other line kept byte for byte.  A change to one without the other
 * fails here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpmap.h"
#include "tap.h"

int
main(void)
{
	const char *dir = getenv("TESTS_SRC");
	char *path = xasprintf("%s/../src/agent.sh", dir ? dir : "tests");
	FILE *f = fopen(path, "r");
	struct buf want = {0};
	char line[4096];

	if (f == NULL) {
		tap_ok(0, "cannot read %s", path);
		free(path);
		return tap_done();
	}
	while (fgets(line, sizeof line, f) != NULL) {
		const char *p = line + strspn(line, " \t");

		if (*p != '#')
			buf_append_str(&want, line);
	}
	fclose(f);
	tap_is_mem(agent_script, strlen(agent_script), want.data, want.len,
		   "agent_script.c is agent.sh without its comments (run "
		   "build-aux/embed-agent)");
	snprintf(line, sizeof line, "cpmap-agent %d", CPMAP_PROTOCOL_VERSION);
	tap_ok(strstr(agent_script, line) != NULL,
	       "the agent says the protocol version cpmap speaks (%d)",
	       CPMAP_PROTOCOL_VERSION);
	buf_free(&want);
	free(path);
	return tap_done();
}
