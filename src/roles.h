/*
 * roles.h
 *		Who is calling; merchant access checks; pseudonyms.
 */
#ifndef PAYEXT_ROLES_H
#define PAYEXT_ROLES_H

#include "fmgr.h"

#include "ledger.h"

/* Who called a function that runs as its owner by RolesBecomeOwner(). */
typedef struct RolesSwitch
{
	Oid			invoker;		/* current user when it was called */
	Oid			saved_userid;
	int			saved_sec_context;
} RolesSwitch;

/*
 * Becomes the owner of the called function (what SECURITY DEFINER does),
 * remembering the invoker; RolesRestore() switches back.  An error restores
 * the user by itself (transaction abort does).
 */
/* The keyed-pseudonym key's length (payext.pseudonym_key.secret). */
#define ROLES_PSEUDONYM_KEY_BYTES 32

extern void RolesPseudonymKey(uint8 *key);
extern void RolesBecomeOwner(FunctionCallInfo fcinfo, RolesSwitch *sw);
extern void RolesRestore(const RolesSwitch *sw);

/* The kinds of account, as access to them is judged. */
typedef enum RolesAccountKind
{
	ROLES_ACCOUNT_WALLET,
	ROLES_ACCOUNT_MERCHANT,
	ROLES_ACCOUNT_SYSTEM
} RolesAccountKind;

/* The RolesAccountKind of a ledger's account kind. */
extern RolesAccountKind RolesAccountKindOf(LedgerAccountKind kind);

/*
 * Whether `role` holds the capability (payext.role_has_capability): a
 * superuser does, and a role with the privileges of a grantee of it.
 */
extern bool RolesHasCapability(Oid role, const char *capability);

/*
 * Whether `role` may act for the merchant account (payext.role_may_act_for):
 * an admin may, and a role with the privileges of a role mapped to it.
 */
extern bool RolesMayActFor(Oid role, int64 merchant);

/*
 * Raises 42501 unless `role` may use this account: a merchant account only
 * a superuser, an admin or a role mapped to it; a wallet a superuser, an
 * admin or an app; a system account (the platform's float) a superuser or an
 * admin.
 */
extern void RolesRequireAccountAccess(Oid role, int64 account_id,
									  RolesAccountKind kind);

/*
 * payext.require_merchant(): 42501 unless the calling role (the outer
 * user, which SECURITY DEFINER leaves alone) may act for the merchant
 * account.
 */
extern void RolesRequireMerchant(int64 merchant);

#endif							/* PAYEXT_ROLES_H */
