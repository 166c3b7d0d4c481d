/*
 * halt.c - --halt: when to stop a run early, as GNU parallel defines it
 * (pure: no I/O).
 *
 *   never | 0                     run every task (the default)
 *   soon|now,fail|success|done=N  stop after N tasks failed / succeeded /
 *                                 finished
 *   soon|now,...=P%               ... after P% of the tasks (of all of them
 *                                 once the input is fully read, else of
 *                                 those finished so far)
 *   1, 2, -1, -2                  soon,fail=1  now,fail=1  soon,success=1
 *                                 now,success=1 (GNU parallel's old forms)
 *
 * "soon" starts no new task and lets the running ones finish; "now" kills
 * them.
 */
#include <stdlib.h>
#include <string.h>

#include "cpmap.h"

int
halt_parse(const char *text, struct halt_policy *h, char **cause)
{
	static const struct {
		const char *text;
		const char *same;
	} legacy[] = {
	    {"0", "never"},	     {"1", "soon,fail=1"},
	    {"2", "now,fail=1"},     {"-1", "soon,success=1"},
	    {"-2", "now,success=1"},
	};
	const char *comma, *eq, *count;
	char *end;
	double value;

	memset(h, 0, sizeof *h);
	for (size_t i = 0; i < sizeof legacy / sizeof legacy[0]; i++)
		if (strcmp(text, legacy[i].text) == 0)
			text = legacy[i].same;
	if (strcmp(text, "never") == 0)
		return 0;
	if ((comma = strchr(text, ',')) == NULL ||
	    (eq = strchr(comma, '=')) == NULL)
		goto bad;
	if ((size_t)(comma - text) == 4 && strncmp(text, "soon", 4) == 0)
		h->when = HALT_SOON;
	else if ((size_t)(comma - text) == 3 && strncmp(text, "now", 3) == 0)
		h->when = HALT_NOW;
	else
		goto bad;
	if (strncmp(comma + 1, "fail=", 5) == 0)
		h->why = HALT_FAIL;
	else if (strncmp(comma + 1, "success=", 8) == 0)
		h->why = HALT_SUCCESS;
	else if (strncmp(comma + 1, "done=", 5) == 0)
		h->why = HALT_DONE;
	else
		goto bad;
	count = eq + 1;
	if (*count < '0' || *count > '9')
		goto bad;
	value = strtod(count, &end);
	if (*end == '%' && end[1] == '\0' && value > 0 && value <= 100) {
		h->percent = true;
		h->threshold = value;
		return 0;
	}
	if (*end == '\0' && value >= 1 && value <= 1e15 &&
	    value == (double)(uint64_t)value) {
		h->threshold = value;
		return 0;
	}
bad:
	*cause = xasprintf("--halt: '%s' is not never, or soon|now,"
			   "fail|success|done=N or =P%%",
			   text);
	return -1;
}

bool
halt_reached(const struct halt_policy *h, uint64_t failed, uint64_t succeeded,
	     uint64_t total)
{
	uint64_t count;

	switch (h->why) {
	case HALT_FAIL:
		count = failed;
		break;
	case HALT_SUCCESS:
		count = succeeded;
		break;
	case HALT_DONE:
		count = failed + succeeded;
		break;
	default:
		return false;
	}
	if (h->when == HALT_NEVER || count == 0)
		return false;
	if (!h->percent)
		return (double)count >= h->threshold;
	if (total == 0)
		total = failed + succeeded;
	return (double)count * 100.0 >= h->threshold * (double)total;
}

/*
 * The exit status for failures, as GNU parallel gives it: their number
 * (101 past 100), or with a --halt ...=P% policy their percentage of the
 * tasks done, rounded up.
 */
int
halt_failure_status(const struct halt_policy *h, uint64_t failed,
		    uint64_t succeeded)
{
	uint64_t done = failed + succeeded;

	if (h->percent && done > 0)
		return (int)((failed * 100 + done - 1) / done);
	return failed > 100 ? 101 : (int)failed;
}

/*
 * As GNU parallel: a policy whose threshold is one task (fail=1, done=1,
 * or P% of a known total that makes exactly one) passes the task's own
 * status on; with P% of a known total, the status is the failures' share
 * of all the tasks, rounded up.
 */
int
halt_exit_status(const struct halt_policy *h, uint64_t failed,
		 uint64_t succeeded, uint64_t total, const struct result *r)
{
	double count = h->threshold;

	if (h->why == HALT_SUCCESS)
		return 0;
	if (h->percent)
		count = total > 0 ? h->threshold * (double)total / 100 : 0;
	if (count == 1) {
		if (r->status == STATUS_OK)
			return 0;
		if (r->exit_code > 0)
			return r->exit_code;
		if (r->signal > 0)
			return 128 + r->signal;
		return r->error == ERROR_SPAWN ? 127 : 1;
	}
	if (h->percent && total > 0)
		return (int)((failed * 100 + total - 1) / total);
	return halt_failure_status(h, failed, succeeded);
}
