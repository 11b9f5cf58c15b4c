/*
 * roles.c
 *		Who is calling, what it may do, and analysts' pseudonyms.
 *
 * Inside a SECURITY DEFINER function the current user is the extension's
 * owner; the role the caller acts as (after SET ROLE) is the outer user id,
 * which SECURITY DEFINER leaves alone.
 */
#include "postgres.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "direct.h"
#include "errors.h"
#include "roles.h"
#include "spi_util.h"

#define PSEUDONYM_BYTES 16

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

/*----------
 * Who may do what, in C (payext.role_has_capability and
 * payext.role_may_act_for were PL/pgSQL, and before that SQL): every
 * charge of a till and every read of an account asks, and as PL/pgSQL a
 * till's CALL merchant_charge ran four nested functions and three
 * queries for it.  Membership counts as pg_has_role(..., 'USAGE') counts
 * it: has_privs_of_role(), so a NOINHERIT member (a pooled login) acts
 * for a till only after SET ROLE.  The tables are read in the snapshot a
 * STABLE function's query would use, the calling statement's.
 *----------
 */

/* payext.<name>, open for reading; its columns grantee and `column`. */
static Relation
RolesOpen(const char *name, const char *column, AttrNumber *grantee_att,
		  AttrNumber *column_att)
{
	Oid			relid = PayextRelid(name);
	Relation	rel;

	if (!OidIsValid(relid))
		elog(ERROR, "payext: table payext.%s is missing", name);
	rel = table_open(relid, AccessShareLock);
	/* InvalidAttrNumber for a column missing or dropped */
	*grantee_att = get_attnum(relid, "grantee");
	*column_att = get_attnum(relid, column);
	if (*grantee_att == InvalidAttrNumber || *column_att == InvalidAttrNumber)
		elog(ERROR, "payext: table payext.%s lacks its columns", name);
	return rel;
}

/*
 * Whether `role` has the privileges of a grantee of a row that `scan`
 * returns and `match` (if given) accepts; ends the scan.
 */
static bool
RolesAnyGrantee(SysScanDesc scan, TupleDesc desc, AttrNumber grantee_att,
				AttrNumber column_att, const char *match, Oid role)
{
	size_t		match_len = match != NULL ? strlen(match) : 0;
	bool		found = false;
	HeapTuple	tuple;

	while (!found && HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		value;

		if (match != NULL)
		{
			text	   *t;

			value = heap_getattr(tuple, column_att, desc, &isnull);
			if (isnull)
				continue;
			/* the database's collation is deterministic: = is bytewise */
			t = DatumGetTextPP(value);
			if (VARSIZE_ANY_EXHDR(t) != match_len ||
				memcmp(VARDATA_ANY(t), match, match_len) != 0)
				continue;
		}
		value = heap_getattr(tuple, grantee_att, desc, &isnull);
		if (!isnull && has_privs_of_role(role, DatumGetObjectId(value)))
			found = true;
	}
	systable_endscan(scan);
	return found;
}

/* The snapshot a STABLE function's query reads in, registered. */
static Snapshot
RolesSnapshot(void)
{
	return RegisterSnapshot(ActiveSnapshotSet() ? GetActiveSnapshot() :
							GetTransactionSnapshot());
}

bool
RolesHasCapability(Oid role, const char *capability)
{
	AttrNumber	grantee_att;
	AttrNumber	capability_att;
	Relation	rel;
	Snapshot	snapshot;
	bool		found;

	if (superuser_arg(role))
		return true;
	/* A handful of rows, one per grant: read them all. */
	rel = RolesOpen("capability_grant", "capability", &grantee_att, &capability_att);
	snapshot = RolesSnapshot();
	found = RolesAnyGrantee(systable_beginscan(rel, InvalidOid, false, snapshot, 0, NULL),
							RelationGetDescr(rel), grantee_att, capability_att,
							capability, role);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return found;
}

bool
RolesMayActFor(Oid role, int64 merchant)
{
	AttrNumber	grantee_att;
	AttrNumber	merchant_att;
	Relation	rel;
	Snapshot	snapshot;
	ScanKeyData key;
	Oid			index;
	bool		found;

	if (RolesHasCapability(role, "admin"))
		return true;
	/* The merchant's mappings, by merchant_role_merchant_idx. */
	rel = RolesOpen("merchant_role", "merchant", &grantee_att, &merchant_att);
	/* used while a valid btree of the table leading with merchant */
	index = PayextDirectIndexOf(rel, "merchant_role_merchant_idx", "merchant");
	ScanKeyInit(&key, merchant_att, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(merchant));
	snapshot = RolesSnapshot();
	found = RolesAnyGrantee(systable_beginscan(rel, index, OidIsValid(index), snapshot, 1, &key),
							RelationGetDescr(rel), grantee_att, merchant_att, NULL, role);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return found;
}

void
RolesRequireAccountAccess(Oid role, int64 account_id, RolesAccountKind kind)
{
	static const char *const hints[] = {
		[ROLES_ACCOUNT_WALLET] = "Wallets are for the app and for admins.",
		[ROLES_ACCOUNT_MERCHANT] = "A merchant account is for the roles mapped to it and for admins.",
		[ROLES_ACCOUNT_SYSTEM] = "The system accounts (the platform's float) are for admins.",
	};
	bool		allowed;

	if (kind == ROLES_ACCOUNT_MERCHANT)
		allowed = RolesMayActFor(role, account_id);
	else if (kind == ROLES_ACCOUNT_WALLET)
		allowed = RolesHasCapability(role, "app") || RolesHasCapability(role, "admin");
	else
		allowed = RolesHasCapability(role, "admin");
	if (!allowed)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for account " INT64_FORMAT, account_id),
				 errhint("%s", hints[kind])));
}

void
RolesRequireMerchant(int64 merchant)
{
	if (!RolesMayActFor(GetOuterUserId(), merchant))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for merchant account " INT64_FORMAT, merchant),
				 errhint("A merchant role acts only for the accounts payext.map_merchant_role() gave it.")));
}

/* role_has_capability(role oid, capability text) RETURNS boolean */
PG_FUNCTION_INFO_V1(payext_role_has_capability);
Datum
payext_role_has_capability(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	if (superuser_arg(PG_GETARG_OID(0)))
		PG_RETURN_BOOL(true);
	if (PG_ARGISNULL(1))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(RolesHasCapability(PG_GETARG_OID(0),
									  text_to_cstring(PG_GETARG_TEXT_PP(1))));
}

/* role_may_act_for(role oid, merchant bigint) RETURNS boolean */
PG_FUNCTION_INFO_V1(payext_role_may_act_for);
Datum
payext_role_may_act_for(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	if (PG_ARGISNULL(1))
		PG_RETURN_BOOL(RolesHasCapability(PG_GETARG_OID(0), "admin"));
	PG_RETURN_BOOL(RolesMayActFor(PG_GETARG_OID(0), PG_GETARG_INT64(1)));
}

/* caller_has_capability(capability text) RETURNS boolean */
PG_FUNCTION_INFO_V1(payext_caller_has_capability);
Datum
payext_caller_has_capability(PG_FUNCTION_ARGS)
{
	if (superuser_arg(GetOuterUserId()))
		PG_RETURN_BOOL(true);
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(RolesHasCapability(GetOuterUserId(),
									  text_to_cstring(PG_GETARG_TEXT_PP(0))));
}

/* may_act_for(merchant bigint) RETURNS boolean */
PG_FUNCTION_INFO_V1(payext_may_act_for);
Datum
payext_may_act_for(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(RolesHasCapability(GetOuterUserId(), "admin"));
	PG_RETURN_BOOL(RolesMayActFor(GetOuterUserId(), PG_GETARG_INT64(0)));
}

/* require_merchant(merchant bigint) RETURNS void: PY001, 42501 */
PG_FUNCTION_INFO_V1(payext_require_merchant);
Datum
payext_require_merchant(PG_FUNCTION_ARGS)
{
	PayextRequireArg(fcinfo, 0, "merchant");
	RolesRequireMerchant(PG_GETARG_INT64(0));
	PG_RETURN_VOID();
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
