/*
 * log.c: hubd's logging (see log.h).  One write(2) per line so that lines
 * from different threads never interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

HubdLogLevel hubd_log_min_level = LOG_INFO;

static const char *const hubd_log_level_names[] = {
	"DEBUG", "INFO", "WARNING", "ERROR"
};

void
hubd_log(HubdLogLevel level, const char *fmt,...)
{
	char		line[2048];
	size_t		n;
	time_t		now = time(NULL);
	struct tm	tm;
	va_list		ap;

	if (level < hubd_log_min_level)
		return;
	gmtime_r(&now, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ", &tm);
	n += snprintf(line + n, sizeof(line) - n, " hubd[%d] %s: ",
				  (int) getpid(), hubd_log_level_names[level]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	n = strlen(line);
	/* libpq messages end with a newline already */
	while (n > 0 && line[n - 1] == '\n')
		n--;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}
