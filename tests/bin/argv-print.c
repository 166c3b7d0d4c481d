/*
 * argv-print - print each argument on a line of its own, escaped so that an
 * argument holding a newline, a backslash or a control byte is still one
 * line: "\n", "\\", "\xHH".  Tests use it to see exactly what argv a task got.
 */
#include <stdio.h>

int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		for (const unsigned char *p = (const unsigned char *)argv[i];
		     *p != '\0'; p++) {
			if (*p == '\n')
				fputs("\\n", stdout);
			else if (*p == '\\')
				fputs("\\\\", stdout);
			else if (*p < 0x20 || *p == 0x7f)
				printf("\\x%02x", *p);
			else
				putchar(*p);
		}
		putchar('\n');
	}
	return fflush(stdout) == 0 ? 0 : 1;
}
