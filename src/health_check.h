/*-------------------------------------------------------------------------
 * health_check.h
 *	  What one health answer means, and how answers move an instance's
 *	  status (the thresholds).
 *-------------------------------------------------------------------------
 */
#ifndef CENTRAL_HUB_HEALTH_CHECK_H
#define CENTRAL_HUB_HEALTH_CHECK_H

typedef enum HealthVerdict
{
	HEALTH_PASS,
	HEALTH_DEGRADED,
	HEALTH_FAIL
} HealthVerdict;

extern HealthVerdict health_classify_response(long http_status, const char *body,
											  size_t body_len, char **reason);
extern const char *health_next_status(const char *status, HealthVerdict verdict,
									  int *failures, int *successes,
									  int unhealthy_threshold, int healthy_threshold);

#endif
