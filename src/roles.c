/*
 * roles.c
 *		Who is calling, and analysts' pseudonyms.
 *
 * Inside a SECURITY DEFINER function the current user is the extension's
 * owner; the role the caller acts as (after SET ROLE) is the outer user id,
 * which SECURITY DEFINER leaves alone.
 */
#include "postgres.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

#include "errors.h"
#include "roles.h"
#include "spi_util.h"

#define PSEUDONYM_BYTES 16

static PayextPlan may_act_for_plan = {
	"SELECT payext.role_may_act_for($1, $2)",
	2, {OIDOID, INT8OID}
};

static PayextPlan app_or_admin_plan = {
	"SELECT payext.role_has_capability($1, 'app') OR payext.role_has_capability($1, 'admin')",
	1, {OIDOID}
};

static PayextPlan admin_plan = {
	"SELECT payext.role_has_capability($1, 'admin')",
	1, {OIDOID}
};

static PayextPlan pseudonym_key_plan = {
	"SELECT secret FROM payext.pseudonym_key WHERE id = 1",
	0, {0}
};

void
RolesBecomeOwner(FunctionCallInfo fcinfo, RolesSwitch *sw)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "payext: cache lookup failed for function %u", fcinfo->flinfo->fn_oid);
	owner = ((Form_pg_proc) GETSTRUCT(tuple))->proowner;
	ReleaseSysCache(tuple);
	GetUserIdAndSecContext(&sw->saved_userid, &sw->saved_sec_context);
	sw->invoker = sw->saved_userid;
	SetUserIdAndSecContext(owner, sw->saved_sec_context | SECURITY_LOCAL_USERID_CHANGE);
}

void
RolesRestore(const RolesSwitch *sw)
{
	SetUserIdAndSecContext(sw->saved_userid, sw->saved_sec_context);
}

RolesAccountKind
RolesAccountKindOf(LedgerAccountKind kind)
{
	switch (kind)
	{
		case LEDGER_MERCHANT:
			return ROLES_ACCOUNT_MERCHANT;
		case LEDGER_WALLET:
			return ROLES_ACCOUNT_WALLET;
		case LEDGER_SYSTEM:
		case LEDGER_CLEARING:
			break;
	}
	return ROLES_ACCOUNT_SYSTEM;
}

void
RolesRequireAccountAccess(Oid role, int64 account_id, RolesAccountKind kind)
{
	static const char *const hints[] = {
		[ROLES_ACCOUNT_WALLET] = "Wallets are for the app and for admins.",
		[ROLES_ACCOUNT_MERCHANT] = "A merchant account is for the roles mapped to it and for admins.",
		[ROLES_ACCOUNT_SYSTEM] = "The system accounts (the platform's float) are for admins.",
	};
	Datum		values[2];

	values[0] = ObjectIdGetDatum(role);
	values[1] = Int64GetDatum(account_id);
	if (kind == ROLES_ACCOUNT_MERCHANT)
		PayextExecute(&may_act_for_plan, values, NULL, true, 1, SPI_OK_SELECT);
	else if (kind == ROLES_ACCOUNT_WALLET)
		PayextExecute(&app_or_admin_plan, values, NULL, true, 1, SPI_OK_SELECT);
	else
		PayextExecute(&admin_plan, values, NULL, true, 1, SPI_OK_SELECT);
	if (!DatumGetBool(PayextResultDatum(0, 1)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for account " INT64_FORMAT, account_id),
				 errhint("%s", hints[kind])));
}

/*
 * payext.require_merchant() for C callers: 42501 unless the calling role
 * (the outer user, which SECURITY DEFINER leaves alone) may act for the
 * merchant account.  Requires SPI.
 */
void
RolesRequireMerchant(int64 merchant)
{
	Datum		values[2];

	values[0] = ObjectIdGetDatum(GetOuterUserId());
	values[1] = Int64GetDatum(merchant);
	PayextExecute(&may_act_for_plan, values, NULL, true, 1, SPI_OK_SELECT);
	if (!DatumGetBool(PayextResultDatum(0, 1)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for merchant account " INT64_FORMAT, merchant),
				 errhint("A merchant role acts only for the accounts payext.map_merchant_role() gave it.")));
}

/* calling_role() RETURNS oid */
PG_FUNCTION_INFO_V1(payext_calling_role);
Datum
payext_calling_role(PG_FUNCTION_ARGS)
{
	PG_RETURN_OID(GetOuterUserId());
}

/*
 * The keyed-pseudonym key (payext.pseudonym_key), into key; the caller
 * wipes it after use.  Needs SPI connected.  Pseudonyms and event channels
 * (src/events.c) use it, each over messages of its own.
 */
void
RolesPseudonymKey(uint8 *key)
{
	bytea	   *secret;

	if (PayextExecute(&pseudonym_key_plan, NULL, NULL, true, 1, SPI_OK_SELECT) == 0)
		elog(ERROR, "payext: the pseudonym key is missing");
	secret = DatumGetByteaP(PayextResultDatum(0, 1));
	if (VARSIZE(secret) - VARHDRSZ != ROLES_PSEUDONYM_KEY_BYTES)
		elog(ERROR, "payext: the pseudonym key has the wrong length");
	memcpy(key, VARDATA(secret), ROLES_PSEUDONYM_KEY_BYTES);
	explicit_bzero(VARDATA(secret), ROLES_PSEUDONYM_KEY_BYTES);
}

/* pseudonym(consumer text) RETURNS text: hex of HMAC-SHA256, 16 bytes */
PG_FUNCTION_INFO_V1(payext_pseudonym);
Datum
payext_pseudonym(PG_FUNCTION_ARGS)
{
	text	   *consumer = PG_GETARG_TEXT_PP(0);
	uint8		key[ROLES_PSEUDONYM_KEY_BYTES];
	uint8		digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	char		hex[PSEUDONYM_BYTES * 2 + 1];

	PayextSpiConnect();
	RolesPseudonymKey(key);
	PayextSpiFinish();

	HMAC(EVP_sha256(), key, sizeof(key), (const unsigned char *) VARDATA_ANY(consumer),
		 VARSIZE_ANY_EXHDR(consumer), digest, &digest_len);
	explicit_bzero(key, sizeof(key));
	for (int i = 0; i < PSEUDONYM_BYTES; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	PG_RETURN_TEXT_P(cstring_to_text(hex));
}
