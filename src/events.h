/*
 * payext: a merchant's payment events, by NOTIFY after commit
 * (src/events.c).
 */
#ifndef PAYEXT_EVENTS_H
#define PAYEXT_EVENTS_H

#include "datatype/timestamp.h"

/* "payext_events_" and 32 hex digits: under NAMEDATALEN. */
#define EVENTS_CHANNEL_LEN 46

extern void EventsChannelName(int64 merchant, char *channel);
extern bool EventsSubscribed(int64 merchant);
extern void EventsNotify(int64 merchant, const char *kind, int64 transfer_id,
						 const char *order_ref, int64 amount, const char *currency,
						 TimestampTz at);

#endif							/* PAYEXT_EVENTS_H */
