/*
 * throttle.h
 *		Failed payment-code guesses per merchant account, in shared memory
 *		so that the charge's rollback cannot erase them (payext must be in
 *		shared_preload_libraries).
 */
#ifndef PAYEXT_THROTTLE_H
#define PAYEXT_THROTTLE_H

#include "datatype/timestamp.h"

/* Settings and shared memory hooks; called from _PG_init(). */
extern void ThrottleInit(void);

/*
 * Raises PY213 when the merchant may not charge codes now, PY007 when
 * throttling is on but payext was not preloaded.  Called before a code is
 * looked at.
 */
extern void ThrottleCheck(int64 merchant);

/*
 * Counts a code that passed its check digit but was never issued against
 * the merchant, logs it at payext.code_failure_log_level, and blocks the
 * merchant past payext.code_failure_limit within the window.
 */
extern void ThrottleRecordFailure(int64 merchant, const char *code);

/*
 * Whether the merchant may charge no code now (what ThrottleCheck() would
 * raise PY213 for), without raising.
 */
extern bool ThrottleIsBlocked(int64 merchant);

#endif							/* PAYEXT_THROTTLE_H */
