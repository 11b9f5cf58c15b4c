/*
 * payext: events.  A merchant's charges, refunds and reversals are
 * announced by NOTIFY, which PostgreSQL delivers after the transaction
 * commits and never for one that rolled back, on a channel of the merchant
 * account's own.  LISTEN needs no privilege, so the channel's name is the
 * secret: "payext_events_" and the first 16 bytes of HMAC-SHA256 under the
 * extension's keyed-pseudonym key (owner only, never dumped), over a
 * message no consumer's id can be, so that no pseudonym is ever a channel.
 * Only merchants whose channel was asked for (event_channel(), which
 * subscribes the account) are announced: NOTIFY makes committing
 * transactions take turns (PostgreSQL's queue lock), a price only the
 * merchants who listen should pay.
 */
#include "postgres.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/timestamp.h"

#include "events.h"
#include "roles.h"
#include "spi_util.h"

#define EVENTS_CHANNEL_PREFIX "payext_events_"
#define EVENTS_CHANNEL_BYTES 16

static PayextPlan events_subscribed_plan = {
	"SELECT 1 FROM payext.event_subscription WHERE merchant = $1",
	1, {INT8OID}
};

/*
 * The merchant account's channel, into channel (EVENTS_CHANNEL_LEN + 1
 * bytes).  Needs SPI connected.
 */
void
EventsChannelName(int64 merchant, char *channel)
{
	uint8		key[ROLES_PSEUDONYM_KEY_BYTES];
	uint8		digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	char	   *message;
	int			at;

	RolesPseudonymKey(key);

	/*
	 * The message starts with a control character, which no consumer's id may
	 * hold (PY004): no pseudonym (the same key over a consumer's id) is ever
	 * computed over it.
	 */
	message = psprintf("\001payext event channel\001" INT64_FORMAT, merchant);
	HMAC(EVP_sha256(), key, sizeof(key), (const unsigned char *) message, strlen(message),
		 digest, &digest_len);
	explicit_bzero(key, sizeof(key));
	if (digest_len < EVENTS_CHANNEL_BYTES)
		elog(ERROR, "payext: HMAC-SHA256 gave %u bytes", digest_len);

	at = snprintf(channel, EVENTS_CHANNEL_LEN + 1, "%s", EVENTS_CHANNEL_PREFIX);
	for (int i = 0; i < EVENTS_CHANNEL_BYTES; i++)
		at += snprintf(channel + at, EVENTS_CHANNEL_LEN + 1 - at, "%02x", digest[i]);
	Assert(at == EVENTS_CHANNEL_LEN);
}

/* Whether the merchant account's channel was asked for.  Needs SPI. */
bool
EventsSubscribed(int64 merchant)
{
	Datum		values[1];

	values[0] = Int64GetDatum(merchant);
	return PayextExecute(&events_subscribed_plan, values, NULL, true, 1, SPI_OK_SELECT) > 0;
}

/*
 * Queues the event, as JSON, on the merchant's channel: sent when the
 * transaction commits (a subtransaction's, if it aborts, never).
 * transfer_id 0 and order_ref NULL are JSON nulls.  Needs SPI.
 */
void
EventsNotify(int64 merchant, const char *kind, int64 transfer_id,
			 const char *order_ref, int64 amount, const char *currency,
			 TimestampTz at)
{
	char		channel[EVENTS_CHANNEL_LEN + 1];
	StringInfoData payload;

	EventsChannelName(merchant, channel);
	initStringInfo(&payload);
	appendStringInfoString(&payload, "{\"kind\": ");
	escape_json(&payload, kind);
	appendStringInfo(&payload, ", \"merchant\": " INT64_FORMAT ", \"transfer_id\": ", merchant);
	if (transfer_id != 0)
		appendStringInfo(&payload, INT64_FORMAT, transfer_id);
	else
		appendStringInfoString(&payload, "null");
	appendStringInfoString(&payload, ", \"order_ref\": ");
	if (order_ref != NULL)
		escape_json(&payload, order_ref);
	else
		appendStringInfoString(&payload, "null");
	appendStringInfo(&payload, ", \"amount\": " INT64_FORMAT ", \"currency\": ", amount);
	escape_json(&payload, currency);
	appendStringInfoString(&payload, ", \"created_at\": \"");
	appendStringInfoString(&payload,
						   JsonEncodeDateTime(NULL, TimestampTzGetDatum(at), TIMESTAMPTZOID, NULL));
	appendStringInfoString(&payload, "\"}");
	Async_Notify(channel, payload.data);
	pfree(payload.data);
}

/*
 * event_channel_name(merchant bigint) RETURNS text: behind event_channel(),
 * which checks the caller and subscribes the account.
 */
PG_FUNCTION_INFO_V1(payext_event_channel_name);
Datum
payext_event_channel_name(PG_FUNCTION_ARGS)
{
	char		channel[EVENTS_CHANNEL_LEN + 1];

	PayextSpiConnect();
	EventsChannelName(PG_GETARG_INT64(0), channel);
	PayextSpiFinish();
	PG_RETURN_TEXT_P(cstring_to_text(channel));
}
