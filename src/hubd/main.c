/*
 * main.c: hubd's command line, start-up and shutdown.
 *
 *   hubd --db CONNINFO [--listen ADDR:PORT] [--threads N] [--no-auth]
 *        [--max-body BYTES] [--max-wait SECONDS] [--poll-interval MS]
 *        [--max-waiters N] [--cache-ttl MS] [--verbose]
 *
 * Every thread is started with SIGTERM, SIGINT and SIGHUP blocked; the main
 * thread waits for them with sigwait and then shuts down in order: stop
 * accepting, answer parked long-polls, finish requests in flight, close.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "hubd.h"
#include "log.h"
#include "longpoll.h"
#include "server.h"

HubdOptions hubd_options = {
	.conninfo = NULL,
	.listen_host = "127.0.0.1",
	.listen_port = 7000,
	.threads = 4,
	.no_auth = false,
	.max_body = 1024 * 1024,
	.max_wait = 300,
	.poll_interval_ms = 1000,
	.max_waiters = 10000,
	.cache_ttl_ms = 1000,
};

static void
hubd_usage(FILE *out)
{
	fprintf(out,
			"Usage: hubd --db CONNINFO [options]\n"
			"HTTP frontend of central_hub (REST API over the hub.* SQL API).\n\n"
			"  --db CONNINFO         libpq connection string or URI (required)\n"
			"  --listen ADDR:PORT    where to listen (default 127.0.0.1:7000)\n"
			"  --threads N           worker threads = database connections (default 4)\n"
			"  --max-body BYTES      larger request bodies get 413 (default 1048576)\n"
			"  --max-wait SECONDS    longest long-poll wait (default 300)\n"
			"  --poll-interval MS    long-poll re-check without NOTIFY (default 1000)\n"
			"  --max-waiters N       parked long-polls at most (default 10000)\n"
			"  --cache-ttl MS        oldest cached GET answer, used only while the relay's\n"
			"                        NOTIFYs keep it exact (default 1000; 0 = no cache)\n"
			"  --default-key-file F  requests without X-API-Key use the key in F\n"
			"                        (for clients that cannot send one; give it a small role)\n"
			"  --no-auth             NO API KEYS: local development only\n"
			"  --verbose             debug log\n"
			"  --help, --version\n");
}

/* Parses "host:port", "[v6]:port" or ":port"; false when malformed. */
static bool
hubd_parse_listen(const char *arg)
{
	const char *colon = strrchr(arg, ':');
	const char *host = arg;
	size_t		hostlen;
	char	   *end;
	long		port;

	if (colon == NULL)
		return false;
	hostlen = (size_t) (colon - arg);
	if (hostlen >= 2 && arg[0] == '[' && arg[hostlen - 1] == ']')
	{
		host++;
		hostlen -= 2;
	}
	if (hostlen >= sizeof(hubd_options.listen_host))
		return false;
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535)
		return false;
	if (hostlen == 0)
		strcpy(hubd_options.listen_host, "0.0.0.0");
	else
	{
		memcpy(hubd_options.listen_host, host, hostlen);
		hubd_options.listen_host[hostlen] = '\0';
	}
	hubd_options.listen_port = (int) port;
	return true;
}

/*
 * Reads the default key (first line of path, blanks trimmed): requests
 * without X-API-Key then run as that key, with its role and name.
 */
static bool
hubd_read_key_file(const char *path)
{
	FILE	   *f = fopen(path, "r");
	char		line[256];
	size_t		n;

	if (f == NULL || fgets(line, sizeof(line), f) == NULL)
	{
		fprintf(stderr, "hubd: cannot read a key from %s\n", path);
		if (f)
			fclose(f);
		return false;
	}
	fclose(f);
	n = strcspn(line, " \t\r\n");
	line[n] = '\0';
	if (n == 0)
	{
		fprintf(stderr, "hubd: %s holds no key\n", path);
		return false;
	}
	hubd_options.default_key = strdup(line);
	return hubd_options.default_key != NULL;
}

static long
hubd_parse_number(const char *name, const char *arg, long min, long max)
{
	char	   *end;
	long		v = strtol(arg, &end, 10);

	if (*arg == '\0' || *end != '\0' || v < min || v > max)
	{
		fprintf(stderr, "hubd: %s must be an integer from %ld to %ld\n", name, min, max);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"db", required_argument, NULL, 'd'},
		{"listen", required_argument, NULL, 'l'},
		{"threads", required_argument, NULL, 't'},
		{"max-body", required_argument, NULL, 'b'},
		{"max-wait", required_argument, NULL, 'w'},
		{"poll-interval", required_argument, NULL, 'p'},
		{"max-waiters", required_argument, NULL, 'm'},
		{"cache-ttl", required_argument, NULL, 'c'},
		{"no-auth", no_argument, NULL, 'n'},
		{"default-key-file", required_argument, NULL, 'k'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}
	};
	sigset_t	signals;
	int			sig;
	int			c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				hubd_options.conninfo = optarg;
				break;
			case 'l':
				if (!hubd_parse_listen(optarg))
				{
					fprintf(stderr, "hubd: --listen must be ADDR:PORT, e.g. 127.0.0.1:7000\n");
					return 2;
				}
				break;
			case 't':
				hubd_options.threads = (int) hubd_parse_number("--threads", optarg, 1, 1024);
				break;
			case 'b':
				hubd_options.max_body = (size_t) hubd_parse_number("--max-body", optarg,
																   1024, 1L << 30);
				break;
			case 'w':
				hubd_options.max_wait = (int) hubd_parse_number("--max-wait", optarg, 0, 3600);
				break;
			case 'p':
				hubd_options.poll_interval_ms = (int) hubd_parse_number("--poll-interval",
																		optarg, 10, 60000);
				break;
			case 'm':
				hubd_options.max_waiters = (int) hubd_parse_number("--max-waiters",
																   optarg, 0, 1000000);
				break;
			case 'c':
				hubd_options.cache_ttl_ms = (int) hubd_parse_number("--cache-ttl",
																	optarg, 0, 3600000);
				break;
			case 'n':
				hubd_options.no_auth = true;
				break;
			case 'k':
				if (!hubd_read_key_file(optarg))
					return 2;
				break;
			case 'v':
				hubd_log_min_level = LOG_DEBUG;
				break;
			case 'h':
				hubd_usage(stdout);
				return 0;
			case 'V':
				printf("hubd %s\n", HUBD_VERSION);
				return 0;
			default:
				hubd_usage(stderr);
				return 2;
		}
	}
	if (optind < argc || hubd_options.conninfo == NULL)
	{
		hubd_usage(stderr);
		return 2;
	}

	/* threads inherit this mask: only the main thread takes the signals */
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (hubd_options.no_auth)
		hubd_log(LOG_WARNING,
				 "*** --no-auth: EVERY REQUEST IS ACCEPTED WITHOUT AN API KEY and runs"
				 " with hubd's own database privileges. Local development only! ***");

	if (hubd_options.default_key != NULL && !hubd_options.no_auth)
		hubd_log(LOG_WARNING,
				 "requests without X-API-Key run as the key of --default-key-file"
				 " (with its role; disable it with hub.disable_api_key)");

	db_setup(hubd_options.conninfo);
	if (!longpoll_start(hubd_options.conninfo))
	{
		hubd_log(LOG_ERROR, "cannot start the long-poll listener");
		return 1;
	}
	if (!server_start())
		return 1;
	hubd_log(LOG_INFO, "hubd %s listening on %s:%d with %d threads%s",
			 HUBD_VERSION, hubd_options.listen_host, hubd_options.listen_port,
			 hubd_options.threads, hubd_options.no_auth ? " (NO AUTH)" : "");

	for (;;)
	{
		if (sigwait(&signals, &sig) != 0)
			continue;
		if (sig == SIGHUP)
		{
			hubd_log(LOG_INFO, "SIGHUP ignored: hubd has no reloadable settings");
			continue;
		}
		break;
	}
	hubd_log(LOG_INFO, "received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	server_stop();
	hubd_log(LOG_INFO, "stopped");
	return 0;
}
