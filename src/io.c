/*
 * io.c - writing a whole buffer to a descriptor.
 *
 * cpmap's stdout may be a pipe, a file or a terminal, and somebody else may
 * have made it non-blocking; a write is retried until every byte is out, so
 * a task's output is never cut short.
 */
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "cpmap.h"

int
io_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				struct pollfd pfd = {.fd = fd,
						     .events = POLLOUT};

				(void)poll(&pfd, 1, -1);
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
