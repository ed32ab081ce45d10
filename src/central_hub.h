/*-------------------------------------------------------------------------
 * central_hub.h
 *	  Settings shared by the background workers.
 *-------------------------------------------------------------------------
 */
#ifndef CENTRAL_HUB_H
#define CENTRAL_HUB_H

/* central_hub.database: the database the workers serve. */
extern char *hub_worker_database;

#endif
