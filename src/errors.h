/*
 * errors.h
 *		The SQLSTATE catalogue of payext.
 *
 * Every error a caller can cause is reported in the private class "PY", one
 * code per cause, so that a client can react to the code rather than parse
 * the message.  Ranges by concern:
 *
 *	PY0xx	arguments		PY1xx	ledger
 *	PY2xx	payment codes	PY3xx	association
 *	PY4xx	parking			PY5xx	partitions
 *	PY9xx	broken invariant (never the caller's fault)
 *
 * PostgreSQL's own codes stay where clients already react to them: 40001 and
 * 40P01 (retry), 42501 (privilege), 57014 (cancel).
 *
 * The README lists every code; keep the two in step.
 */
#ifndef PAYEXT_ERRORS_H
#define PAYEXT_ERRORS_H

#include "utils/elog.h"

#define PAYEXT_SQLSTATE(c3, c4, c5) MAKE_SQLSTATE('P', 'Y', c3, c4, c5)

/* PY0xx: arguments */
#define PAYEXT_ERRCODE_NULL_ARGUMENT		PAYEXT_SQLSTATE('0', '0', '1')
#define PAYEXT_ERRCODE_INVALID_AMOUNT		PAYEXT_SQLSTATE('0', '0', '2')
#define PAYEXT_ERRCODE_UNKNOWN_CURRENCY		PAYEXT_SQLSTATE('0', '0', '3')
#define PAYEXT_ERRCODE_INVALID_IDENTIFIER	PAYEXT_SQLSTATE('0', '0', '4')
/* PY005 is unused.  PY006 is raised by grant_capability() (PL/pgSQL). */
#define PAYEXT_ERRCODE_UNKNOWN_CAPABILITY	PAYEXT_SQLSTATE('0', '0', '6')
/* Throttling of payment codes is on, but payext was not preloaded. */
#define PAYEXT_ERRCODE_NOT_PRELOADED		PAYEXT_SQLSTATE('0', '0', '7')
/* The database's payext SQL is not the library's version: update pending. */
#define PAYEXT_ERRCODE_VERSION_MISMATCH		PAYEXT_SQLSTATE('0', '0', '8')
/* charge_many(): arrays that are not one list of items */
#define PAYEXT_ERRCODE_BAD_BATCH			PAYEXT_SQLSTATE('0', '0', '9')
#define PAYEXT_ERRCODE_BATCH_TOO_LARGE		PAYEXT_SQLSTATE('0', '1', '0')

/* PY1xx: ledger */
#define PAYEXT_ERRCODE_ACCOUNT_NOT_FOUND	PAYEXT_SQLSTATE('1', '0', '1')
#define PAYEXT_ERRCODE_ACCOUNT_FROZEN		PAYEXT_SQLSTATE('1', '0', '2')
#define PAYEXT_ERRCODE_ACCOUNT_CLOSED		PAYEXT_SQLSTATE('1', '0', '3')
#define PAYEXT_ERRCODE_INSUFFICIENT_FUNDS	PAYEXT_SQLSTATE('1', '0', '4')
#define PAYEXT_ERRCODE_CURRENCY_MISMATCH	PAYEXT_SQLSTATE('1', '0', '5')
#define PAYEXT_ERRCODE_BALANCE_OVERFLOW		PAYEXT_SQLSTATE('1', '0', '6')
#define PAYEXT_ERRCODE_IDEMPOTENCY_CONFLICT PAYEXT_SQLSTATE('1', '0', '7')
#define PAYEXT_ERRCODE_ACCOUNT_NOT_EMPTY	PAYEXT_SQLSTATE('1', '0', '8')
#define PAYEXT_ERRCODE_JOURNAL_APPEND_ONLY	PAYEXT_SQLSTATE('1', '0', '9')
#define PAYEXT_ERRCODE_SAME_ACCOUNT			PAYEXT_SQLSTATE('1', '1', '0')
#define PAYEXT_ERRCODE_WRONG_ACCOUNT_KIND	PAYEXT_SQLSTATE('1', '1', '1')
/* PY112 is raised by the trigger account_status_guard (PL/pgSQL). */
#define PAYEXT_ERRCODE_STATUS_OUTSIDE		PAYEXT_SQLSTATE('1', '1', '2')

/* PY2xx: payment codes, charges and refunds */
#define PAYEXT_ERRCODE_CODE_MALFORMED		PAYEXT_SQLSTATE('2', '0', '1')
#define PAYEXT_ERRCODE_CODE_WRONG_SHARD		PAYEXT_SQLSTATE('2', '0', '2')
#define PAYEXT_ERRCODE_CODE_FORGED			PAYEXT_SQLSTATE('2', '0', '3')
#define PAYEXT_ERRCODE_CODE_EXPIRED			PAYEXT_SQLSTATE('2', '0', '4')
#define PAYEXT_ERRCODE_CODE_CANCELLED		PAYEXT_SQLSTATE('2', '0', '5')
#define PAYEXT_ERRCODE_CODE_USED			PAYEXT_SQLSTATE('2', '0', '6')
#define PAYEXT_ERRCODE_CODE_OVER_CAP		PAYEXT_SQLSTATE('2', '0', '7')
#define PAYEXT_ERRCODE_ORDER_CONFLICT		PAYEXT_SQLSTATE('2', '0', '8')
#define PAYEXT_ERRCODE_UNKNOWN_ORDER		PAYEXT_SQLSTATE('2', '0', '9')
#define PAYEXT_ERRCODE_REFUND_EXCEEDS		PAYEXT_SQLSTATE('2', '1', '0')
#define PAYEXT_ERRCODE_REFUND_CONFLICT		PAYEXT_SQLSTATE('2', '1', '1')
#define PAYEXT_ERRCODE_CODE_BAD_TTL			PAYEXT_SQLSTATE('2', '1', '2')
#define PAYEXT_ERRCODE_CHARGING_BLOCKED		PAYEXT_SQLSTATE('2', '1', '3')
#define PAYEXT_ERRCODE_CODES_EXHAUSTED		PAYEXT_SQLSTATE('2', '1', '4')
#define PAYEXT_ERRCODE_ORDER_REVERSED		PAYEXT_SQLSTATE('2', '1', '5')

/* PY3xx: interactions and association */
#define PAYEXT_ERRCODE_BAD_RULE				PAYEXT_SQLSTATE('3', '0', '1')
#define PAYEXT_ERRCODE_BAD_INTERACTION		PAYEXT_SQLSTATE('3', '0', '2')
#define PAYEXT_ERRCODE_OPTED_OUT			PAYEXT_SQLSTATE('3', '0', '3')
#define PAYEXT_ERRCODE_TOO_MANY_PAYMENTS	PAYEXT_SQLSTATE('3', '0', '4')
#define PAYEXT_ERRCODE_UNKNOWN_MERCHANT		PAYEXT_SQLSTATE('3', '0', '5')

/* PY4xx: parking */
#define PAYEXT_ERRCODE_BAD_PLATE			PAYEXT_SQLSTATE('4', '0', '1')
#define PAYEXT_ERRCODE_PLATE_TAKEN			PAYEXT_SQLSTATE('4', '0', '2')
#define PAYEXT_ERRCODE_TOO_MANY_VEHICLES	PAYEXT_SQLSTATE('4', '0', '3')
#define PAYEXT_ERRCODE_NOT_BOUND			PAYEXT_SQLSTATE('4', '0', '4')
#define PAYEXT_ERRCODE_BAD_LOT				PAYEXT_SQLSTATE('4', '0', '5')
#define PAYEXT_ERRCODE_UNKNOWN_TIME_ZONE	PAYEXT_SQLSTATE('4', '0', '6')
#define PAYEXT_ERRCODE_UNKNOWN_LOT			PAYEXT_SQLSTATE('4', '0', '7')
#define PAYEXT_ERRCODE_UNKNOWN_STAY			PAYEXT_SQLSTATE('4', '0', '8')
#define PAYEXT_ERRCODE_STALE_AMOUNT			PAYEXT_SQLSTATE('4', '0', '9')
#define PAYEXT_ERRCODE_NOTHING_DUE			PAYEXT_SQLSTATE('4', '1', '0')
#define PAYEXT_ERRCODE_NOT_OWNERS_VEHICLE	PAYEXT_SQLSTATE('4', '1', '1')
#define PAYEXT_ERRCODE_BAD_TIME				PAYEXT_SQLSTATE('4', '1', '2')
#define PAYEXT_ERRCODE_FEE_OVERFLOW			PAYEXT_SQLSTATE('4', '1', '3')
/* A warning, not an error: the exit is kept. */
#define PAYEXT_ERRCODE_EXIT_WITHOUT_ENTRY	PAYEXT_SQLSTATE('4', '1', '4')

/*
 * A stay that cannot be priced (its fee beyond 64 bits, or longer than
 * payext.max_stay): a warning at exit, where the exit is kept as an anomaly;
 * an error from pay_parking.
 */
#define PAYEXT_ERRCODE_EXIT_UNPRICED		PAYEXT_SQLSTATE('4', '1', '5')
/*
 * Raised in SQL (src/sql/parking.sql): PY416, a pass whose valid_from is
 * not before its valid_until; PY417, a pass_ref used for another pass.
 */
/* A validation's kind or value out of bounds, or the operator's own */
#define PAYEXT_ERRCODE_BAD_VALIDATION		PAYEXT_SQLSTATE('4', '1', '8')
/* A validation_ref used for another validation */
#define PAYEXT_ERRCODE_VALIDATION_CONFLICT	PAYEXT_SQLSTATE('4', '1', '9')
/* The merchant validated the stay already (once per merchant and stay) */
#define PAYEXT_ERRCODE_VALIDATED_BEFORE		PAYEXT_SQLSTATE('4', '2', '0')

/* PY5xx: partitions */
/* A partition number outside 0-99, a count outside 1-100, an id of none */
#define PAYEXT_ERRCODE_BAD_PARTITION		PAYEXT_SQLSTATE('5', '0', '1')
/* set_partition() on a database whose number is fixed */
#define PAYEXT_ERRCODE_PARTITION_FIXED		PAYEXT_SQLSTATE('5', '0', '2')
/*
 * Raised by the router (payext_router--*.sql, in SQL): PY503, a partition
 * whose number is not its place in configure_partitions()'s list; PY504, a
 * partition that cannot be reached or went away during the call (PL/Proxy's
 * XX000): the outcome is unknown, retry with the same reference.  Raised by
 * the saga functions (src/sql/saga.sql): PY506, the last step of a saga
 * that did not start on this partition; PY507, finishing a returned saga
 * or returning a delivered one.  (PY505, a transfer or parking payment
 * across partitions before sagas, was never released.)
 */

/* PY6xx: holds (src/holds.c) */
/* No such hold of this merchant (another merchant's hold is none of its) */
#define PAYEXT_ERRCODE_UNKNOWN_HOLD			PAYEXT_SQLSTATE('6', '0', '1')
/* The hold expired: it holds nothing and can no longer be captured */
#define PAYEXT_ERRCODE_HOLD_EXPIRED			PAYEXT_SQLSTATE('6', '0', '2')
/* The hold was voided */
#define PAYEXT_ERRCODE_HOLD_VOIDED			PAYEXT_SQLSTATE('6', '0', '3')
/* The hold was captured in full, or finally */
#define PAYEXT_ERRCODE_HOLD_CAPTURED		PAYEXT_SQLSTATE('6', '0', '4')
/* A capture above what the hold still reserves */
#define PAYEXT_ERRCODE_CAPTURE_EXCEEDS		PAYEXT_SQLSTATE('6', '0', '5')
/* expires_in outside 1 second .. 30 days */
#define PAYEXT_ERRCODE_HOLD_BAD_EXPIRY		PAYEXT_SQLSTATE('6', '0', '6')
/* capture_ref already used for another capture */
#define PAYEXT_ERRCODE_CAPTURE_CONFLICT		PAYEXT_SQLSTATE('6', '0', '7')
/* An order that is a hold: charge() and reverse_charge() do not take it */
#define PAYEXT_ERRCODE_ORDER_IS_HOLD		PAYEXT_SQLSTATE('6', '0', '8')
/* A parking stay's entry hold, captured or voided by hand */
#define PAYEXT_ERRCODE_HOLD_FOR_STAY		PAYEXT_SQLSTATE('6', '0', '9')

/* PY9xx: a broken invariant; reaching one is a bug in payext */
#define PAYEXT_ERRCODE_INVARIANT_BROKEN		PAYEXT_SQLSTATE('9', '0', '1')

#endif							/* PAYEXT_ERRORS_H */
