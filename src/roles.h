/*
 * roles.h
 *		Who is calling; merchant access checks; pseudonyms.
 */
#ifndef PAYEXT_ROLES_H
#define PAYEXT_ROLES_H

#include "postgres.h"

/*
 * Raises 42501 unless the caller may act for this merchant account (a
 * superuser, an admin, or a role mapped to it).  Requires SPI.
 */
extern void RolesRequireMerchantAccess(int64 merchant_id);

#endif							/* PAYEXT_ROLES_H */
