/*
 * log.h: hubd's log lines on stderr ("2026-01-01T00:00:00Z hubd LEVEL: text").
 */
#ifndef HUBD_LOG_H
#define HUBD_LOG_H

typedef enum HubdLogLevel
{
	LOG_DEBUG,
	LOG_INFO,
	LOG_WARNING,
	LOG_ERROR
} HubdLogLevel;

extern HubdLogLevel hubd_log_min_level;

extern void hubd_log(HubdLogLevel level, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

#endif							/* HUBD_LOG_H */
