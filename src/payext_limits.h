/*
 * payext_limits.h
 *		Every bound payext enforces, as MIN/MAX/DEFAULT triads where a
 *		setting is involved.  A limit that is not here does not exist.
 */
#ifndef PAYEXT_PAYEXT_LIMITS_H
#define PAYEXT_PAYEXT_LIMITS_H

/*
 * Shard number (payext.shard_id).  One decimal digit: the payment code keeps
 * one digit for it, and ids carry it in their high bits.
 */
#define PAYEXT_MIN_SHARD_ID			0
#define PAYEXT_MAX_SHARD_ID			9
#define PAYEXT_DEFAULT_SHARD_ID		0

/* Ids are (shard << PAYEXT_ID_SHARD_SHIFT) | serial. */
#define PAYEXT_ID_SHARD_SHIFT		56
#define PAYEXT_MAX_ID_SERIAL		((INT64CONST(1) << PAYEXT_ID_SHARD_SHIFT) - 1)

/* Owners (social-app ids) and public-service ids, in bytes. */
#define PAYEXT_MAX_IDENTIFIER_LEN	128
/* Display names, in bytes. */
#define PAYEXT_MAX_DISPLAY_NAME_LEN 256
/* External references, order and refund references, in bytes. */
#define PAYEXT_MAX_REFERENCE_LEN	128

/* Length of the journal row checksum kept in transfer.checksum, in bytes. */
#define PAYEXT_CHECKSUM_LEN			16

#endif							/* PAYEXT_PAYEXT_LIMITS_H */
