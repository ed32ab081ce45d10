/*
 * server.c: hubd's HTTP server, the only file that calls libmicrohttpd.
 *
 * A pool of --threads worker threads, each with its own event loop (and,
 * through db.c, its own database connection).  Per request:
 *
 *   headers in  -> route (router.c), then the checks that need no body:
 *                  unknown route 404/405, bad encoding 400, missing key 401,
 *                  Content-Length above --max-body 413 (the body is never
 *                  read), body not JSON 415
 *   body chunks -> copied up to --max-body (beyond: dropped, then 413)
 *   complete    -> routes_dispatch (one database round trip) -> response;
 *                  or, for a long-poll, suspend (longpoll.c resumes it and
 *                  the handler runs again)
 *
 * The URL and query are kept percent-encoded by MHD (a no-op unescape
 * callback) so that router.c decodes them strictly and can refuse bad
 * escapes with 400 instead of guessing.
 *
 * hubd accepts connections itself (one accept thread) and hands them to
 * MHD with MHD_add_connection, which places each on a pool thread by its
 * socket number: connections spread evenly over the threads.  With MHD's
 * own listen socket, whichever thread woke first took the connection, and
 * a few busy keep-alive clients often all landed on one thread.
 */
#define _GNU_SOURCE				/* accept4 */
#include "server.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "longpoll.h"
#include "metrics.h"

/* Idle HTTP connections are closed after this many seconds. */
#define SERVER_CONNECTION_TIMEOUT 600
/* Memory per connection for the request line and headers (longer: 414/431). */
#define SERVER_CONNECTION_MEMORY (32 * 1024)

static struct MHD_Daemon *server_daemon;
static int	server_in_flight;
static int	server_listen_fd = -1;
static int	server_stop_pipe[2] = {-1, -1};
static pthread_t server_accept_thread;
static bool server_accepting;

double
hubd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

const char *
hub_request_header(HubRequest *req, const char *name)
{
	return MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, name);
}

int
hub_request_query(HubRequest *req, const char *name, char *out, size_t outsize)
{
	const char *v = MHD_lookup_connection_value(req->connection,
												MHD_GET_ARGUMENT_KIND, name);

	if (v == NULL)
		return 0;
	return router_decode(v, strlen(v), true, out, outsize) ? 1 : -1;
}

void
hub_request_suspend(HubRequest *req)
{
	MHD_suspend_connection(req->connection);
}

void
hub_request_resume(HubRequest *req)
{
	MHD_resume_connection(req->connection);
}

/* Keeps URL and query as received: router.c decodes them strictly. */
static size_t
server_unescape_none(void *cls, struct MHD_Connection *c, char *s)
{
	return strlen(s);
}

static void
server_response_init(HubResponse *resp)
{
	memset(resp, 0, sizeof(*resp));
	jsonbuf_init(&resp->body);
}

/* Queues resp (taking its body) and counts it in the metrics. */
static enum MHD_Result
server_send(HubRequest *req, HubResponse *resp)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char		retry[16];

	if (resp->body.failed)
	{
		jsonbuf_free(&resp->body);
		routes_error(resp, 500, "internal", "out of memory");
	}
	r = MHD_create_response_from_buffer(resp->body.len,
										resp->body.data ? resp->body.data : "",
										resp->body.data ? MHD_RESPMEM_MUST_FREE :
										MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
	{
		jsonbuf_free(&resp->body);
		return MHD_NO;
	}
	resp->body.data = NULL;		/* owned by the response now */
	if (resp->status != 304 || resp->body.len > 0)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
								resp->content_type ? resp->content_type :
								"application/json");
	if (resp->etag[0])
		MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, resp->etag);
	if (resp->allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, resp->allow);
	if (resp->retry_after > 0)
	{
		snprintf(retry, sizeof(retry), "%d", resp->retry_after);
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, retry);
	}
	ret = MHD_queue_response(req->connection, resp->status, r);
	MHD_destroy_response(r);
	req->answered = true;
	metrics_record_request(req->route.id, resp->status, hubd_now() - req->started);
	return ret;
}

static enum MHD_Result
server_send_error(HubRequest *req, int status, const char *code, const char *message)
{
	HubResponse resp;

	server_response_init(&resp);
	routes_error(&resp, status, code, message);
	if (status == 405)
		resp.allow = req->route.allow;
	return server_send(req, &resp);
}

static bool
server_is_json(const char *content_type)
{
	size_t		n = strcspn(content_type, ";");

	while (n > 0 && content_type[n - 1] == ' ')
		n--;
	return (n == 16 && strncasecmp(content_type, "application/json", 16) == 0) ||
		(n > 5 && strncasecmp(content_type + n - 5, "+json", 5) == 0);
}

/*
 * First call of a request (headers complete): answers at once whatever can
 * be decided without the body.  Returns MHD_YES with nothing queued to go on.
 */
static enum MHD_Result
server_check_headers(HubRequest *req)
{
	const char *length = hub_request_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *chunked = hub_request_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	const char *ctype = hub_request_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
	bool		has_body;

	switch (req->route_result)
	{
		case ROUTE_MATCHED:
			break;
		case ROUTE_METHOD_NOT_ALLOWED:
			return server_send_error(req, 405, "method_not_allowed",
									 "method not allowed on this path");
		case ROUTE_BAD_ENCODING:
			return server_send_error(req, 400, "bad_path",
									 "malformed percent-encoding or empty segment in the path");
		case ROUTE_SEGMENT_TOO_LONG:
			return server_send_error(req, 414, "uri_too_long",
									 "a path segment is too long");
		default:
			return server_send_error(req, 404, "not_found", "no such route");
	}
	if (!hubd_options.no_auth && hubd_options.default_key == NULL &&
		router_route_needs_key(req->route.id) &&
		hub_request_header(req, "X-API-Key") == NULL)
		return server_send_error(req, 401, "missing_api_key",
								 "this route needs an X-API-Key header");
	if (length != NULL && strtoull(length, NULL, 10) > hubd_options.max_body)
		return server_send_error(req, 413, "too_large", "request body too large");
	has_body = (length != NULL && strtoull(length, NULL, 10) > 0) || chunked != NULL;
	if (has_body && (ctype == NULL || !server_is_json(ctype)))
		return server_send_error(req, 415, "unsupported_media_type",
								 "request bodies must be Content-Type: application/json");
	return MHD_YES;
}

static enum MHD_Result
server_handle(void *cls, struct MHD_Connection *connection, const char *url,
			  const char *method, const char *version, const char *upload_data,
			  size_t *upload_data_size, void **con_cls)
{
	HubRequest *req = *con_cls;
	HubResponse resp;

	if (req == NULL)
	{
		req = calloc(1, sizeof(HubRequest));
		if (req == NULL)
			return MHD_NO;
		req->connection = connection;
		req->method = method;
		req->started = hubd_now();
		jsonbuf_init(&req->body);
		*con_cls = req;
		__atomic_add_fetch(&server_in_flight, 1, __ATOMIC_RELAXED);
		req->route_result = router_match(method, url, &req->route);
		return server_check_headers(req);
	}
	if (req->answered)
	{
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size > 0)
	{
		if (!req->body_too_large)
		{
			if (req->body.len + *upload_data_size > hubd_options.max_body)
			{
				req->body_too_large = true;
				jsonbuf_free(&req->body);
			}
			else
				jsonbuf_append(&req->body, upload_data, *upload_data_size);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->body_too_large)
		return server_send_error(req, 413, "too_large", "request body too large");
	if (req->body.failed)
		return server_send_error(req, 500, "internal", "out of memory");

	server_response_init(&resp);
	routes_dispatch(req, &resp);
	if (req->suspend)
	{
		req->suspend = false;
		jsonbuf_free(&resp.body);
		if (longpoll_park(req))
			return MHD_YES;
		/* cannot park: answer with the current state */
		req->wait_deadline = -1;
		server_response_init(&resp);
		routes_dispatch(req, &resp);
	}
	return server_send(req, &resp);
}

static void
server_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
				 enum MHD_RequestTerminationCode toe)
{
	HubRequest *req = *con_cls;

	if (req == NULL)
		return;
	longpoll_unpark(req);
	jsonbuf_free(&req->body);
	free(req);
	*con_cls = NULL;
	__atomic_sub_fetch(&server_in_flight, 1, __ATOMIC_RELAXED);
}

static void
server_log(void *cls, const char *fmt, va_list ap)
{
	char		line[512];

	vsnprintf(line, sizeof(line), fmt, ap);
	hubd_log(LOG_WARNING, "http: %s", line);
}

/* Pause after accept failed for lack of descriptors or memory. */
#define SERVER_ACCEPT_PAUSE_MS 100

/* The accept loop: until the stop pipe is written. */
static void *
server_accept_main(void *arg)
{
	for (;;)
	{
		struct pollfd fds[2] = {
			{.fd = server_listen_fd, .events = POLLIN},
			{.fd = server_stop_pipe[0], .events = POLLIN},
		};
		struct sockaddr_storage addr;
		socklen_t	addrlen = sizeof(addr);
		int			fd;

		if (poll(fds, 2, -1) < 0)
			continue;
		if (fds[1].revents)
			break;
		if (!(fds[0].revents & POLLIN))
			continue;
		fd = accept4(server_listen_fd, (struct sockaddr *) &addr, &addrlen,
					 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
		{
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
				errno == ENOMEM)
			{
				struct timespec pause = {0, SERVER_ACCEPT_PAUSE_MS * 1000 * 1000};

				hubd_log(LOG_WARNING, "cannot accept connections: %s", strerror(errno));
				nanosleep(&pause, NULL);
			}
			continue;
		}
		/* MHD closes the socket itself when it cannot take it */
		if (MHD_add_connection(server_daemon, fd, (struct sockaddr *) &addr,
							   addrlen) != MHD_YES)
			hubd_log(LOG_WARNING, "connection refused: %s", strerror(errno));
	}
	return NULL;
}

/* Creates the listening socket on ai; -1 when it cannot. */
static int
server_listen(const struct addrinfo *ai)
{
	int			fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int			on = 1;

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
		bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
		listen(fd, SOMAXCONN) != 0)
	{
		close(fd);
		return -1;
	}
	return fd;
}

bool
server_start(void)
{
	struct addrinfo hints,
			   *ai;
	char		port[16];
	unsigned int flags;
	int			rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", hubd_options.listen_port);
	rc = getaddrinfo(hubd_options.listen_host, port, &hints, &ai);
	if (rc != 0)
	{
		hubd_log(LOG_ERROR, "cannot resolve listen address %s: %s",
				 hubd_options.listen_host, gai_strerror(rc));
		return false;
	}
	server_listen_fd = server_listen(ai);
	freeaddrinfo(ai);
	if (server_listen_fd < 0)
	{
		hubd_log(LOG_ERROR, "cannot listen on %s:%d: %s",
				 hubd_options.listen_host, hubd_options.listen_port, strerror(errno));
		return false;
	}

	flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_NO_LISTEN_SOCKET |
		MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	server_daemon = MHD_start_daemon(flags, 0, NULL, NULL,
									 server_handle, NULL,
									 MHD_OPTION_EXTERNAL_LOGGER, server_log, NULL,
									 MHD_OPTION_THREAD_POOL_SIZE,
									 (unsigned int) hubd_options.threads,
									 MHD_OPTION_CONNECTION_TIMEOUT,
									 (unsigned int) SERVER_CONNECTION_TIMEOUT,
									 MHD_OPTION_CONNECTION_MEMORY_LIMIT,
									 (size_t) SERVER_CONNECTION_MEMORY,
									 MHD_OPTION_UNESCAPE_CALLBACK,
									 server_unescape_none, NULL,
									 MHD_OPTION_NOTIFY_COMPLETED,
									 server_completed, NULL,
									 MHD_OPTION_END);
	if (server_daemon == NULL)
	{
		hubd_log(LOG_ERROR, "cannot start the HTTP server threads");
		return false;
	}
	if (pipe(server_stop_pipe) != 0 ||
		pthread_create(&server_accept_thread, NULL, server_accept_main, NULL) != 0)
	{
		hubd_log(LOG_ERROR, "cannot start the accept thread");
		return false;
	}
	server_accepting = true;
	return true;
}

/* Stops accepting: new connections are refused by the kernel. */
static void
server_stop_accepting(void)
{
	if (server_accepting)
	{
		if (write(server_stop_pipe[1], "q", 1) < 0)
			hubd_log(LOG_WARNING, "could not stop the accept thread");
		pthread_join(server_accept_thread, NULL);
		server_accepting = false;
	}
	if (server_listen_fd >= 0)
	{
		close(server_listen_fd);
		server_listen_fd = -1;
	}
}

void
server_stop(void)
{
	double		deadline;

	if (server_daemon == NULL)
		return;
	server_stop_accepting();
	/* parked long-polls are woken and answered with the current state */
	longpoll_stop();
	deadline = hubd_now() + 5;
	while (__atomic_load_n(&server_in_flight, __ATOMIC_RELAXED) > 0 &&
		   hubd_now() < deadline)
	{
		struct timespec pause = {0, 10 * 1000 * 1000};

		nanosleep(&pause, NULL);
	}
	MHD_stop_daemon(server_daemon);
	server_daemon = NULL;
}
