/*-------------------------------------------------------------------------
 * hub_sub.c
 *	  hub-sub: a tiny NATS client to watch what the central_hub relay sends
 *	  (Debian ships no NATS command-line client).
 *
 *	  hub-sub [-s URL] [-n COUNT] [-i SECONDS] [-b] [-t] SUBJECT
 *		prints every message on SUBJECT (wildcards allowed) as one line,
 *		"SUBJECT BODY" (-b: BODY only; -t: prefixed with the receive time in
 *		microseconds since the epoch); stops after COUNT messages or after
 *		SECONDS without one.  Says "hub-sub: listening" on stderr once the
 *		subscription is active.
 *	  hub-sub [-s URL] --add-stream NAME SUBJECT...
 *		creates a JetStream stream (file storage) capturing the subjects.
 *	  hub-sub [-s URL] --dump-stream NAME
 *		prints every message stored in the stream: "MSG-ID SUBJECT BODY".
 *
 *	  URL defaults to $NATS_URL, then nats://127.0.0.1:4222.
 *-------------------------------------------------------------------------
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <nats/nats.h>

static void
usage(void)
{
	fprintf(stderr,
			"usage: hub-sub [-s URL] [-n COUNT] [-i SECONDS] [-b] [-t] SUBJECT\n"
			"       hub-sub [-s URL] --add-stream NAME SUBJECT...\n"
			"       hub-sub [-s URL] --dump-stream NAME\n");
	exit(2);
}

static void
fail(const char *what, natsStatus s)
{
	fprintf(stderr, "hub-sub: %s: %s\n", what, natsStatus_GetText(s));
	nats_PrintLastErrorStack(stderr);
	exit(1);
}

/* Prints one message as a line. */
static void
print_msg(natsMsg *msg, bool body_only, bool timestamps, const char *prefix)
{
	if (timestamps)
	{
		struct timeval tv;

		gettimeofday(&tv, NULL);
		printf("%" PRId64 " ", (int64_t) tv.tv_sec * 1000000 + tv.tv_usec);
	}
	if (prefix != NULL)
		printf("%s ", prefix);
	if (!body_only)
		printf("%s ", natsMsg_GetSubject(msg));
	fwrite(natsMsg_GetData(msg), 1, natsMsg_GetDataLength(msg), stdout);
	putchar('\n');
}

/* Subscribes and prints until COUNT messages or SECONDS of silence. */
static int
subscribe(natsConnection *nc, const char *subject, long count, long idle,
		  bool body_only, bool timestamps)
{
	natsSubscription *sub = NULL;
	natsStatus	s;
	long		seen = 0;

	s = natsConnection_SubscribeSync(&sub, nc, subject);
	if (s == NATS_OK)
		s = natsSubscription_SetPendingLimits(sub, -1, -1);
	if (s == NATS_OK)
		s = natsConnection_FlushTimeout(nc, 5000);
	if (s != NATS_OK)
		fail("subscribe", s);
	fprintf(stderr, "hub-sub: listening on %s\n", subject);

	while (count <= 0 || seen < count)
	{
		natsMsg    *msg = NULL;

		s = natsSubscription_NextMsg(&msg, sub, idle > 0 ? idle * 1000 : 3600 * 1000);
		if (s == NATS_TIMEOUT)
		{
			if (idle > 0)
				break;
			continue;
		}
		if (s != NATS_OK)
			fail("receive", s);
		print_msg(msg, body_only, timestamps, NULL);
		natsMsg_Destroy(msg);
		seen++;
	}
	natsSubscription_Destroy(sub);
	return 0;
}

/* Creates a file-backed stream capturing the subjects. */
static int
add_stream(natsConnection *nc, const char *name, const char **subjects, int nsubjects)
{
	jsCtx	   *js = NULL;
	jsStreamConfig cfg;
	jsStreamInfo *si = NULL;
	jsErrCode	jerr = 0;
	natsStatus	s;

	s = natsConnection_JetStream(&js, nc, NULL);
	if (s != NATS_OK)
		fail("JetStream", s);
	jsStreamConfig_Init(&cfg);
	cfg.Name = name;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = nsubjects;
	cfg.Storage = js_FileStorage;
	s = js_AddStream(&si, js, &cfg, NULL, &jerr);
	if (s != NATS_OK)
	{
		fprintf(stderr, "hub-sub: JetStream error code %d\n", (int) jerr);
		fail("add stream", s);
	}
	jsStreamInfo_Destroy(si);
	jsCtx_Destroy(js);
	return 0;
}

/* Prints every message stored in the stream, oldest first. */
static int
dump_stream(natsConnection *nc, const char *name)
{
	jsCtx	   *js = NULL;
	jsStreamInfo *si = NULL;
	jsErrCode	jerr = 0;
	natsStatus	s;
	uint64_t	seq;

	s = natsConnection_JetStream(&js, nc, NULL);
	if (s == NATS_OK)
		s = js_GetStreamInfo(&si, js, name, NULL, &jerr);
	if (s != NATS_OK)
		fail("stream info", s);
	for (seq = si->State.FirstSeq; si->State.Msgs > 0 && seq <= si->State.LastSeq; seq++)
	{
		natsMsg    *msg = NULL;
		const char *id = NULL;

		s = js_GetMsg(&msg, js, name, seq, NULL, &jerr);
		if (s == NATS_NOT_FOUND)
			continue;			/* deleted */
		if (s != NATS_OK)
			fail("get message", s);
		if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK)
			id = "-";
		print_msg(msg, false, false, id);
		natsMsg_Destroy(msg);
	}
	jsStreamInfo_Destroy(si);
	jsCtx_Destroy(js);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *url = getenv("NATS_URL");
	long		count = 0;
	long		idle = 0;
	bool		body_only = false;
	bool		timestamps = false;
	natsOptions *opts = NULL;
	natsConnection *nc = NULL;
	natsStatus	s;
	int			i = 1;
	int			rc;

	if (url == NULL || url[0] == '\0')
		url = "nats://127.0.0.1:4222";
	for (; i < argc && argv[i][0] == '-' && argv[i][1] != '-'; i++)
	{
		if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			url = argv[++i];
		else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			count = atol(argv[++i]);
		else if (strcmp(argv[i], "-i") == 0 && i + 1 < argc)
			idle = atol(argv[++i]);
		else if (strcmp(argv[i], "-b") == 0)
			body_only = true;
		else if (strcmp(argv[i], "-t") == 0)
			timestamps = true;
		else
			usage();
	}
	if (i >= argc)
		usage();

	setvbuf(stdout, NULL, _IOLBF, 0);

	s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetURL(opts, url);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(opts, 50);
	if (s == NATS_OK)
		s = natsOptions_SetName(opts, "hub-sub");
	if (s == NATS_OK)
		s = natsConnection_Connect(&nc, opts);
	if (s != NATS_OK)
		fail(url, s);

	if (strcmp(argv[i], "--add-stream") == 0)
	{
		if (argc - i < 3)
			usage();
		rc = add_stream(nc, argv[i + 1], (const char **) &argv[i + 2], argc - i - 2);
	}
	else if (strcmp(argv[i], "--dump-stream") == 0)
	{
		if (argc - i != 2)
			usage();
		rc = dump_stream(nc, argv[i + 1]);
	}
	else
	{
		if (argc - i != 1)
			usage();
		rc = subscribe(nc, argv[i], count, idle, body_only, timestamps);
	}

	natsConnection_Destroy(nc);
	natsOptions_Destroy(opts);
	return rc;
}
