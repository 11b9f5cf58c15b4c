/*
 * parking.c
 *		Vehicles, lots, stays from camera events, what is due, and payment.
 *
 * The arithmetic is tariff.c's and the plate rules plate.c's; this file
 * reads and writes the rows.  Lock order: a stay's row, then the accounts
 * (inside LedgerTransfer), as charges lock a code's row first; binds lock
 * the owner's vehicle_owner row.
 */
#include "postgres.h"

#include <unistd.h>

#include "access/xact.h"
#include "common/int.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "pgtime.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "association.h"
#include "codes.h"
#include "direct.h"
#include "errors.h"
#include "holds.h"
#include "ledger.h"
#include "money.h"
#include "parking.h"
#include "payext_limits.h"
#include "plate.h"
#include "roles.h"
#include "spi_util.h"
#include "tariff.h"

static int	payext_max_vehicles = PAYEXT_DEFAULT_MAX_VEHICLES;
static int	payext_max_stay_min = PAYEXT_DEFAULT_MAX_STAY_MIN;
static int	payext_max_clock_skew_s = PAYEXT_DEFAULT_MAX_CLOCK_SKEW_S;
static int	payext_max_auto_pay = PAYEXT_DEFAULT_MAX_AUTO_PAY;

/* A lot as the pricing needs it. */
typedef struct ParkingLot
{
	int64		id;
	int64		operator_id;
	char		currency[4];
	pg_tz	   *tz;
	Tariff		tariff;
	int32		exit_grace_minutes;
	int64		entry_hold;		/* 0: none */
} ParkingLot;

/* parking_stay.state, as far as the C code tells states apart */
typedef enum ParkingStayState
{
	STAY_OPEN,
	STAY_EXITED,
	STAY_EXIT_UNPRICED,
	STAY_OTHER					/* a state no path here acts on */
} ParkingStayState;

/* A stay's row. */
typedef struct ParkingStay
{
	int64		id;
	int64		lot;
	char		plate[PLATE_MAX_BYTES];
	TimestampTz entered_at;		/* DT_NOBEGIN: none */
	TimestampTz exited_at;		/* DT_NOBEGIN: none */
	int64		fee;			/* -1: none */
	int64		paid;
	TimestampTz paid_at;		/* DT_NOBEGIN: none */
	ParkingStayState state;
	char		owner_at_entry[PAYEXT_MAX_IDENTIFIER_LEN + 1];	/* "": none */
	/* the row version this transaction locked and wrote; invalid: none */
	ItemPointerData tid;
} ParkingStay;

static PayextPlan load_lot_plan = {
	"SELECT id, operator, currency, time_zone, free_minutes, unit_minutes,"
	"       day_price, coalesce(night_price, -1), day_start, night_start,"
	"       coalesce(cap_24h, -1), coalesce(cap_stay, -1), exit_grace_minutes,"
	"       coalesce(entry_hold, 0)"
	"  FROM payext.parking_lot WHERE id = $1",
	1, {INT8OID}
};

static PayextPlan insert_lot_plan = {
	"INSERT INTO payext.parking_lot"
	" (id, operator, name, currency, time_zone, free_minutes, unit_minutes,"
	"  day_price, night_price, day_start, night_start, cap_24h, cap_stay,"
	"  exit_grace_minutes, created_at, entry_hold)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
	16, {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID, INT4OID, INT8OID,
	INT8OID, TIMEOID, TIMEOID, INT8OID, INT8OID, INT4OID, TIMESTAMPTZOID, INT8OID}
};

static PayextPlan insert_vehicle_plan = {
	"INSERT INTO payext.vehicle (plate, owner, auto_pay, bound_at)"
	" VALUES ($1, $2, $3, $4) ON CONFLICT (plate) DO NOTHING",
	4, {TEXTOID, TEXTOID, BOOLOID, TIMESTAMPTZOID}
};

static PayextPlan lock_vehicle_plan = {
	"SELECT owner FROM payext.vehicle WHERE plate = $1 FOR UPDATE",
	1, {TEXTOID}
};

static PayextPlan set_auto_pay_plan = {
	"UPDATE payext.vehicle SET auto_pay = $2 WHERE plate = $1",
	2, {TEXTOID, BOOLOID}
};

static PayextPlan count_vehicle_plan = {
	"INSERT INTO payext.vehicle_owner AS o (owner, vehicles) VALUES ($1, $2)"
	" ON CONFLICT (owner) DO UPDATE SET vehicles = o.vehicles + excluded.vehicles"
	" RETURNING vehicles",
	2, {TEXTOID, INT4OID}
};

static PayextPlan uncount_vehicle_plan = {
	"UPDATE payext.vehicle_owner SET vehicles = vehicles - 1 WHERE owner = $1",
	1, {TEXTOID}
};

static PayextPlan delete_vehicle_plan = {
	"DELETE FROM payext.vehicle WHERE plate = $1 AND owner = $2",
	2, {TEXTOID, TEXTOID}
};

/* A stay's columns as a lock reads them, and the version locked. */
#define STAY_COLUMNS \
	"id, lot, plate, coalesce(entered_at, '-infinity'), coalesce(exited_at, '-infinity')," \
	" coalesce(fee, -1), paid, coalesce(paid_at, '-infinity'), state, owner_at_entry, ctid"

static PayextPlan lock_open_stay_plan = {
	"SELECT " STAY_COLUMNS " FROM payext.parking_stay"
	" WHERE lot = $1 AND plate = $2 AND state = 'open' FOR UPDATE",
	2, {INT8OID, TEXTOID}
};

/* A stay that began within the repeat window of $3: the same entry again. */
static PayextPlan find_entered_stay_plan = {
	"SELECT id FROM payext.parking_stay"
	" WHERE lot = $1 AND plate = $2 AND state IN ('exited', 'exit_missed', 'exit_unpriced')"
	"   AND entered_at BETWEEN $3 - make_interval(secs => $4) AND $3 + make_interval(secs => $4)"
	" ORDER BY entered_at DESC LIMIT 1",
	4, {INT8OID, TEXTOID, TIMESTAMPTZOID, FLOAT8OID}
};

static PayextPlan lock_plate_events_plan = {
	"INSERT INTO payext.parking_plate_events AS e (lot, plate, events) VALUES ($1, $2, 1)"
	" ON CONFLICT (lot, plate) DO UPDATE SET events = e.events + 1",
	2, {INT8OID, TEXTOID}
};

static PayextPlan exit_missed_plan = {
	"UPDATE payext.parking_stay SET state = 'exit_missed' WHERE id = $1",
	1, {INT8OID}
};

static PayextPlan lock_exit_without_entry_plan = {
	"SELECT " STAY_COLUMNS " FROM payext.parking_stay"
	" WHERE lot = $1 AND plate = $2 AND state = 'exit_without_entry'"
	"   AND exited_at >= $3 AND exited_at <= $4"
	" ORDER BY exited_at LIMIT 1 FOR UPDATE",
	4, {INT8OID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}
};

static PayextPlan find_repeated_exit_plan = {
	"SELECT fee FROM payext.parking_stay"
	" WHERE lot = $1 AND plate = $2 AND state IN ('exited', 'exit_without_entry', 'exit_unpriced')"
	"   AND exited_at BETWEEN $3 - make_interval(secs => $4) AND $3 + make_interval(secs => $4)"
	" ORDER BY exited_at DESC LIMIT 1",
	4, {INT8OID, TEXTOID, TIMESTAMPTZOID, FLOAT8OID}
};

static PayextPlan insert_stay_plan = {
	"INSERT INTO payext.parking_stay"
	" (id, lot, plate, entered_at, exited_at, state, recorded_at, owner_at_entry)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7,"
	"         (SELECT owner FROM payext.vehicle WHERE plate = $3))",
	7, {INT8OID, INT8OID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, TIMESTAMPTZOID}
};

/* The columns ParkingCloseStay sets, in its order, then the stay. */
static PayextPlan close_stay_plan = {
	"UPDATE payext.parking_stay SET entered_at = $1, exited_at = $2, fee = $3, state = $4"
	" WHERE id = $5",
	5, {TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, TEXTOID, INT8OID}
};

static PayextPlan close_unpriced_plan = {
	"UPDATE payext.parking_stay SET entered_at = $2, exited_at = $3, fee = NULL, state = 'exit_unpriced'"
	" WHERE id = $1",
	3, {INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID}
};

static PayextPlan lock_stay_plan = {
	"SELECT " STAY_COLUMNS " FROM payext.parking_stay WHERE id = $1 FOR UPDATE",
	1, {INT8OID}
};

static PayextPlan auto_pay_wallet_plan = {
	"SELECT w.id FROM payext.vehicle v JOIN payext.account w"
	"    ON w.kind = 'wallet' AND w.owner = v.owner AND w.currency = $2"
	" WHERE v.plate = $1 AND v.auto_pay AND ($3 = '' OR v.owner = $3)",
	3, {TEXTOID, TEXTOID, TEXTOID}
};

static PayextPlan vehicle_owner_plan = {
	"SELECT owner FROM payext.vehicle WHERE plate = $1",
	1, {TEXTOID}
};

static PayextPlan wallet_owner_plan = {
	"SELECT owner FROM payext.account WHERE id = $1",
	1, {INT8OID}
};

/* The payment row's values in its columns' order, as insert_payment_plan. */
static PayextPlan record_payment_plan = {
	"WITH s AS (UPDATE payext.parking_stay SET paid = paid + $4, paid_at = $6"
	"            WHERE id = $2 RETURNING id)"
	" INSERT INTO payext.parking_payment (transfer_id, stay, wallet, amount, how, paid_at)"
	" SELECT $1, s.id, $3, $4, $5, $6 FROM s",
	6, {INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID, TIMESTAMPTZOID}
};

/*
 * A shop's part of a stay: paid, but not paid_at, which starts the grace
 * to leave after the stay's own payment (the owner pays the rest then).
 */
static PayextPlan record_validation_payment_plan = {
	"WITH s AS (UPDATE payext.parking_stay SET paid = paid + $3"
	"            WHERE id = $2 RETURNING id)"
	" INSERT INTO payext.parking_payment (transfer_id, stay, wallet, amount, how, paid_at)"
	" SELECT $1, s.id, $4, $3, 'validation', $5 FROM s",
	5, {INT8OID, INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID}
};

/* record_payment_plan's insert alone (its columns in direct.c's order) */
static PayextPlan insert_payment_plan = {
	"INSERT INTO payext.parking_payment (transfer_id, stay, wallet, amount, how, paid_at)"
	" VALUES ($1, $2, $3, $4, $5, $6)",
	6, {INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID, TIMESTAMPTZOID}
};

static PayextPlan find_payment_replay_plan = {
	"SELECT transfer_id FROM payext.parking_payment"
	" WHERE stay = $1 AND wallet = $2 AND amount = $3 ORDER BY paid_at DESC LIMIT 1",
	3, {INT8OID, INT8OID, INT8OID}
};

/* The plate's passes at the lot that overlap [$3, $4), at most TARIFF_MAX_PASSES. */
static PayextPlan passes_plan = {
	"SELECT valid_from, valid_until FROM payext.parking_pass"
	" WHERE lot = $1 AND plate = $2 AND valid_until > $3 AND valid_from < $4"
	" ORDER BY valid_from LIMIT " CppAsString2(TARIFF_MAX_PASSES),
	4, {INT8OID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}
};

/* A stay's entry hold, if it still holds: locked (the stay's lock came first). */
static PayextPlan lock_stay_hold_plan = {
	"SELECT id, wallet, amount - captured, expires_at <= now()"
	"  FROM payext.hold_entry WHERE stay = $1 AND state = 'open'"
	"   FOR NO KEY UPDATE",
	1, {INT8OID}
};

/* Takes $2 of it ($2 = 0: releases it) and closes it. */
static PayextPlan close_stay_hold_plan = {
	"UPDATE payext.hold_entry SET captured = captured + $2,"
	"       state = CASE WHEN $2 > 0 THEN 'captured' ELSE 'voided' END, closed_at = now()"
	" WHERE id = $1",
	2, {INT8OID, INT8OID}
};

static PayextPlan undo_stay_hold_plan = {
	"UPDATE payext.hold_entry SET captured = captured - $2, state = 'voided' WHERE id = $1",
	2, {INT8OID, INT8OID}
};

static PayextPlan record_hold_capture_plan = {
	"INSERT INTO payext.hold_capture (transfer_id, hold, amount, created_at)"
	" VALUES ($1, $2, $3, now())",
	3, {INT8OID, INT8OID, INT8OID}
};

/* A stay's validations not yet applied, in the order they were made. */
static PayextPlan pending_validations_plan = {
	"SELECT id, merchant, kind, value FROM payext.parking_validation"
	" WHERE stay = $1 AND state = 'pending' ORDER BY id",
	1, {INT8OID}
};

static PayextPlan settle_validation_plan = {
	"UPDATE payext.parking_validation"
	"   SET state = $2, discount = $3, transfer_id = $4, applied_at = now()"
	" WHERE id = $1",
	4, {INT8OID, TEXTOID, INT8OID, INT8OID}
};

static PayextPlan find_validation_plan = {
	"SELECT id, stay, kind, value FROM payext.parking_validation"
	" WHERE merchant = $1 AND validation_ref = $2",
	2, {INT8OID, TEXTOID}
};

static PayextPlan validated_before_plan = {
	"SELECT id FROM payext.parking_validation WHERE stay = $1 AND merchant = $2",
	2, {INT8OID, INT8OID}
};

static PayextPlan require_merchant_plan = {
	"SELECT payext.require_merchant($1)",
	1, {INT8OID}
};

/* The accounts a stay's payment may take from: its pending shops, its hold's wallet. */
static PayextPlan stay_payers_plan = {
	"SELECT merchant FROM payext.parking_validation WHERE stay = $1 AND state = 'pending'"
	" UNION ALL"
	" SELECT wallet FROM payext.hold_entry WHERE stay = $1 AND state = 'open'",
	1, {INT8OID}
};

static PayextPlan insert_validation_ref_plan = {
	"INSERT INTO payext.parking_validation"
	" (id, stay, merchant, kind, value, validation_ref, created_at)"
	" VALUES ($1, $2, $3, $4, $5, $6, now())"
	" ON CONFLICT ON CONSTRAINT parking_validation_ref_key DO NOTHING",
	6, {INT8OID, INT8OID, INT8OID, TEXTOID, INT8OID, TEXTOID}
};

static PayextPlan service_info_plan = {
	"SELECT s.id, s.lot, s.plate, coalesce(s.entered_at, '-infinity'),"
	"       coalesce(s.exited_at, '-infinity'), coalesce(s.fee, -1), s.paid,"
	"       coalesce(s.paid_at, '-infinity'), s.state, s.owner_at_entry, l.name, l.currency"
	"  FROM payext.vehicle v"
	"  JOIN payext.parking_stay s ON s.plate = v.plate"
	"  JOIN payext.parking_lot l ON l.id = s.lot"
	" WHERE v.owner = $1"
	"   AND (s.owner_at_entry IS NULL OR s.owner_at_entry = v.owner)"
	"   AND (s.state IN ('open', 'exit_unpriced') OR (s.state = 'exited' AND s.fee > s.paid))"
	" ORDER BY s.entered_at, s.id",
	1, {TEXTOID}
};

void
ParkingInit(void)
{
	DefineCustomIntVariable("payext.max_vehicles",
							"How many vehicles one user may bind.",
							NULL,
							&payext_max_vehicles,
							PAYEXT_DEFAULT_MAX_VEHICLES,
							PAYEXT_MIN_MAX_VEHICLES,
							PAYEXT_MAX_MAX_VEHICLES,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	/*
	 * Superuser settings: a camera's role must not widen its own bounds, nor
	 * an app's the auto-payment it consents to.
	 */
	DefineCustomIntVariable("payext.max_stay",
							"How old a camera event may be; also the longest stay priced at exit.",
							"Older events are refused; a longer stay's exit is kept as an anomaly, unpriced. "
							"A lot whose tariff could charge more than 64 bits over it is refused.",
							&payext_max_stay_min,
							PAYEXT_DEFAULT_MAX_STAY_MIN,
							PAYEXT_MIN_MAX_STAY_MIN,
							PAYEXT_MAX_MAX_STAY_MIN,
							PGC_SUSET,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);
	DefineCustomIntVariable("payext.max_clock_skew",
							"How far ahead of the server's clock a camera event may be.",
							NULL,
							&payext_max_clock_skew_s,
							PAYEXT_DEFAULT_MAX_CLOCK_SKEW_S,
							PAYEXT_MIN_MAX_CLOCK_SKEW_S,
							PAYEXT_MAX_MAX_CLOCK_SKEW_S,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("payext.max_auto_pay",
							"The most an exit pays by itself from a wallet with auto-pay, in minor units.",
							"A dearer stay stays due for its owner to pay; 0 turns automatic payment off.",
							&payext_max_auto_pay,
							PAYEXT_DEFAULT_MAX_AUTO_PAY,
							PAYEXT_MIN_MAX_AUTO_PAY,
							PAYEXT_MAX_MAX_AUTO_PAY,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
}

/* ---------------------------------------------------------------------
 * Plates, zones, lots
 * ---------------------------------------------------------------------
 */

static char *
ParkingArgPlate(FunctionCallInfo fcinfo, int argno)
{
	text	   *arg;
	char		normal[PLATE_MAX_BYTES];
	PlateResult result;
	static const char *const reasons[] = {
		[PLATE_BAD_UTF8] = "It is not valid UTF-8.",
		[PLATE_BAD_CHARACTER] = "Plates hold letters A-Z, digits, CJK ideographs and Hangul; spaces, dashes and middle dots are ignored.",
		[PLATE_TOO_SHORT] = "A plate has at least 2 characters.",
		[PLATE_TOO_LONG] = "A plate has at most 12 characters.",
	};

	PayextRequireArg(fcinfo, argno, "plate");
	arg = PG_GETARG_TEXT_PP(argno);
	if (VARSIZE_ANY_EXHDR(arg) > PAYEXT_MAX_IDENTIFIER_LEN)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_BAD_PLATE),
				 errmsg("plate is not a licence plate"),
				 errdetail("It is %d bytes long.", (int) VARSIZE_ANY_EXHDR(arg))));
	/* Unicode NFC first, where the database can hold Unicode. */
	if (GetDatabaseEncoding() == PG_UTF8)
		arg = DatumGetTextPP(DirectFunctionCall2(unicode_normalize_func,
												 PointerGetDatum(arg),
												 CStringGetTextDatum("NFC")));
	result = PlateNormalize(VARDATA_ANY(arg), VARSIZE_ANY_EXHDR(arg), normal);
	if (result != PLATE_OK)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_BAD_PLATE),
				 errmsg("plate is not a licence plate"),
				 errdetail("%s", reasons[result])));
	return pstrdup(normal);
}

/* Seconds between the Unix epoch and PostgreSQL's (2000-01-01). */
#define PG_EPOCH_SHIFT_S ((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

/*
 * A lot's zone as the tariff sees it, with a memo of one span [lo, hi) of
 * constant UTC offset: pricing a million stays at one lot asks the zone
 * for offsets that mostly fall in a span it has already seen.
 */
typedef struct ParkingZone
{
	pg_tz	   *tz;
	bool		known;
	int64		lo;				/* the offset is `offset` on [lo, hi) */
	int64		hi;				/* the next change after lo; INT64_MAX: none */
	int32		offset;
} ParkingZone;

static bool ParkingZoneAsk(pg_tz *tz, int64_t utc_us, int32_t *offset_s,
						   int64_t *next_change_us);

/* TariffOffsetFn over a ParkingZone. */
static bool
ParkingZoneOffset(void *ctx, int64_t utc_us, int32_t *offset_s, int64_t *next_change_us)
{
	ParkingZone *zone = ctx;

	if (zone->known && utc_us >= zone->lo && utc_us < zone->hi)
	{
		*offset_s = zone->offset;
		*next_change_us = zone->hi;
		return true;
	}
	if (!ParkingZoneAsk(zone->tz, utc_us, offset_s, next_change_us))
		return false;

	/*
	 * The offset holds on [utc_us, next change).  A span that ends at the
	 * same change with the same offset joins the one we have.
	 */
	if (zone->known && *next_change_us == zone->hi && *offset_s == zone->offset &&
		utc_us < zone->lo)
		zone->lo = utc_us;
	else
	{
		zone->known = true;
		zone->lo = utc_us;
		zone->hi = *next_change_us;
		zone->offset = *offset_s;
	}
	return true;
}

/* The offset at utc_us and the next change, from the zone's rules. */
static bool
ParkingZoneAsk(pg_tz *tz, int64_t utc_us, int32_t *offset_s, int64_t *next_change_us)
{
	/* Seconds, rounded down, on the Unix clock. */
	pg_time_t	t = (pg_time_t) ((utc_us - ((utc_us % USECS_PER_SEC + USECS_PER_SEC) % USECS_PER_SEC)) / USECS_PER_SEC) + PG_EPOCH_SHIFT_S;
	long		before_gmtoff;
	long		after_gmtoff;
	int			before_isdst;
	int			after_isdst;
	pg_time_t	boundary;
	int			found = pg_next_dst_boundary(&t, &before_gmtoff, &before_isdst,
											 &boundary, &after_gmtoff, &after_isdst, tz);

	if (found < 0)
		return false;
	*offset_s = (int32_t) before_gmtoff;
	if (found == 0 || boundary - PG_EPOCH_SHIFT_S > INT64_MAX / USECS_PER_SEC)
		*next_change_us = INT64_MAX;
	else
		*next_change_us = (int64_t) (boundary - PG_EPOCH_SHIFT_S) * USECS_PER_SEC;
	return true;
}

/*
 * Opens a zone file of the server's time zone database (the directory that
 * pg_tzset reads: the system's tzdata on Debian), matching the name's case
 * as pg_tzset does and giving its canonical spelling; -1 when there is no
 * such file.  The server's own function, exported by the postgres binary
 * but declared in src/timezone/pgtz.h, a header PostgreSQL does not install
 * (pg_TZDIR, which would give the directory, is static).
 */
extern int	pg_open_tzfile(const char *name, char *canonname);

/* True when the zone name is a file of the time zone database (TZif). */
static bool
ParkingZoneIsFile(const char *name)
{
	char		canon[TZ_STRLEN_MAX + 1];
	char		magic[4];
	int			fd;
	bool		tzif;

	/* Zone names are letters, digits, '_', '-', '+' and '/'; no "..". */
	if (strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-/") != strlen(name) ||
		strstr(name, "..") != NULL || name[0] == '/')
		return false;
	fd = pg_open_tzfile(name, canon);
	if (fd < 0)
		return false;
	tzif = read(fd, magic, sizeof(magic)) == sizeof(magic) && memcmp(magic, "TZif", 4) == 0;
	close(fd);
	return tzif;
}

/*
 * An ISO 8601 offset, +hh:mm, +hhmm or +hh (or with -): true, with the
 * offset in minutes east of UTC, when the name has that shape.
 */
static bool
ParkingParseIsoOffset(const char *name, int *minutes, bool *in_use)
{
	size_t		len = strlen(name);
	int			hours;
	int			mins = 0;

	if ((name[0] != '+' && name[0] != '-') || (len != 3 && len != 5 && len != 6))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!(isdigit((unsigned char) name[i]) || (len == 6 && i == 3 && name[i] == ':')))
			return false;
	hours = (name[1] - '0') * 10 + (name[2] - '0');
	if (len > 3)
		mins = (name[len - 2] - '0') * 10 + (name[len - 1] - '0');
	*minutes = (name[0] == '-' ? -1 : 1) * (hours * 60 + mins);
	/* The offsets of the world's zones: -12:00 to +14:00. */
	*in_use = mins < 60 && *minutes >= -12 * 60 && *minutes <= 14 * 60;
	return true;
}

/*
 * A zone that prices as an ISO 8601 offset says (east of UTC): the Etc zone
 * of whole hours, whose POSIX-style name has the opposite sign ('+08:00' is
 * Etc/GMT-8), or a fixed POSIX rule written with the sign PostgreSQL reads
 * ('-05:30' is '<-0530>+05:30').
 */
static char *
ParkingZoneForOffset(int minutes)
{
	int			east = Abs(minutes);
	char		sign = minutes < 0 ? '-' : '+';
	char		posix_sign = minutes < 0 ? '+' : '-';

	if (minutes == 0)
		return pstrdup("Etc/UTC");
	if (east % 60 == 0)
	{
		char	   *etc = psprintf("Etc/GMT%c%d", posix_sign, east / 60);

		if (ParkingZoneIsFile(etc))
			return etc;
	}
	return psprintf("<%c%02d%02d>%c%02d:%02d", sign, east / 60, east % 60,
					posix_sign, east / 60, east % 60);
}

/*
 * The lot's time zone as it is kept: an IANA name (the zone database's
 * spelling), or a zone that prices as an ISO 8601 offset says.  PostgreSQL
 * would also take a POSIX rule ('UTC+8', '+08:00'), whose offsets count
 * west of UTC: refused, as are the server's own 'localtime' and
 * 'posixrules' (PY406).
 */
static char *
ParkingArgTimeZone(FunctionCallInfo fcinfo, int argno)
{
	char	   *name = PayextArgIdentifier(fcinfo, argno, "time_zone", 64);
	char	   *kept;
	pg_tz	   *tz;
	int			minutes;
	bool		in_use;

	if (ParkingParseIsoOffset(name, &minutes, &in_use))
	{
		if (!in_use)
			ereport(ERROR,
					(errcode(PAYEXT_ERRCODE_UNKNOWN_TIME_ZONE),
					 errmsg("time zone \"%s\" is not a UTC offset in use", name),
					 errhint("ISO 8601 offsets in use run from -12:00 to +14:00, east of UTC.")));
		kept = ParkingZoneForOffset(minutes);
	}
	else
		kept = name;
	tz = pg_tzset(kept);
	if (tz == NULL)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_UNKNOWN_TIME_ZONE),
				 errmsg("time zone \"%s\" is not known", name),
				 errhint("Use a name from pg_timezone_names, such as 'Asia/Shanghai', or an ISO 8601 offset such as '+08:00'.")));
	if (kept != name)
		return kept;			/* one of ours, read as it is meant */
	kept = pstrdup(pg_get_timezone_name(tz));
	if (pg_strcasecmp(kept, "localtime") == 0 || pg_strcasecmp(kept, "posixrules") == 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_UNKNOWN_TIME_ZONE),
				 errmsg("time zone \"%s\" is not an IANA time zone", name),
				 errdetail("It is the server's own setting, which may change."),
				 errhint("Use an IANA name such as 'Asia/Shanghai', or an ISO 8601 offset such as '+08:00' (east of UTC).")));
	if (!ParkingZoneIsFile(kept) || !pg_tz_acceptable(tz))
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_UNKNOWN_TIME_ZONE),
				 errmsg("time zone \"%s\" is not an IANA time zone", name),
				 errdetail("PostgreSQL would read it as a POSIX rule, whose offsets count west of UTC, the opposite of ISO 8601."),
				 errhint("Use an IANA name such as 'Asia/Shanghai', or an ISO 8601 offset such as '+08:00' (east of UTC).")));
	return kept;
}

static void
ParkingRaiseUnknownLot(int64 lot_id)
{
	ereport(ERROR,
			(errcode(PAYEXT_ERRCODE_UNKNOWN_LOT),
			 errmsg("parking lot " INT64_FORMAT " does not exist", lot_id)));
}

/*
 * Reads a lot's row.  read_only: under the caller's snapshot, as
 * parking_fee() does (it is PARALLEL SAFE, and a parallel worker may
 * neither start a command nor should it see another snapshot than its
 * leader); the camera and payment paths take a fresh one.
 */
static void
ParkingLoadLot(int64 lot_id, ParkingLot *lot, bool read_only)
{
	/* load_lot_plan's columns after id, NULLs as its coalesce() has them */
	static const char *const cols[] = {
		"operator", "currency", "time_zone", "free_minutes", "unit_minutes",
		"day_price", "night_price", "day_start", "night_start", "cap_24h",
		"cap_stay", "exit_grace_minutes", "entry_hold"
	};
	static const int64 if_null[] = {0, 0, 0, 0, 0, 0, -1, 0, 0, -1, -1, 0, 0};
	Datum		values[lengthof(cols)];
	bool		nulls[lengthof(cols)];
	char	   *tz_name;
	PayextDirectScan *scan = NULL;

	/*
	 * Without the executor (an index scan in a statement's snapshot, as
	 * SPI's), unless parking_fee() reads it in its caller's snapshot, maybe
	 * in a parallel worker, or row-level security or privileges ask for SPI.
	 */
	if (!read_only)
		scan = PayextDirectBeginScan("parking_lot_pkey", "id");
	if (scan != NULL)
	{
		PayextScanKey key = PayextKey(1, BTEqualStrategyNumber, Int64GetDatum(lot_id));

		PayextDirectRescan(scan, 1, &key);
		if (!PayextDirectNext(scan, lengthof(cols), cols, values, nulls))
			ParkingRaiseUnknownLot(lot_id);
		strlcpy(lot->currency, TextDatumGetCString(values[1]), sizeof(lot->currency));
		tz_name = TextDatumGetCString(values[2]);
		for (int i = 0; i < (int) lengthof(cols); i++)
			if (nulls[i])
				values[i] = Int64GetDatum(if_null[i]);
	}
	else
	{
		Datum		key[1] = {Int64GetDatum(lot_id)};

		if (PayextExecute(&load_lot_plan, key, NULL, read_only, 1, SPI_OK_SELECT) == 0)
			ParkingRaiseUnknownLot(lot_id);
		strlcpy(lot->currency, PayextResultCString(0, 3), sizeof(lot->currency));
		tz_name = PayextResultCString(0, 4);
		for (int i = 0; i < (int) lengthof(cols); i++)
			values[i] = PayextResultDatum(0, i + 2);
	}
	lot->id = lot_id;
	lot->operator_id = DatumGetInt64(values[0]);
	lot->tz = pg_tzset(tz_name);
	if (lot->tz == NULL)
		elog(ERROR, "payext: time zone \"%s\" of lot " INT64_FORMAT " is gone", tz_name, lot_id);
	lot->tariff.free_minutes = DatumGetInt32(values[3]);
	lot->tariff.unit_minutes = DatumGetInt32(values[4]);
	lot->tariff.day_price = DatumGetInt64(values[5]);
	lot->tariff.night_price = DatumGetInt64(values[6]);
	lot->tariff.day_start_min = (int32) (DatumGetTimeADT(values[7]) / (60 * USECS_PER_SEC));
	lot->tariff.night_start_min = (int32) (DatumGetTimeADT(values[8]) / (60 * USECS_PER_SEC));
	lot->tariff.cap_24h = DatumGetInt64(values[9]);
	lot->tariff.cap_stay = DatumGetInt64(values[10]);
	lot->exit_grace_minutes = DatumGetInt32(values[11]);
	lot->entry_hold = DatumGetInt64(values[12]);
	if (scan != NULL)
		PayextDirectEndScan(scan);
}

/*
 * The lot's fee for [entered_at, exited_at], as the tariff core answers.
 * memo: the lot's zone, kept by a caller that prices many stays; NULL for
 * one.
 */
static TariffResult
ParkingTryPrice(const ParkingLot *lot, ParkingZone *memo, TimestampTz entered_at,
				TimestampTz exited_at, int64 *fee)
{
	ParkingZone one = {lot->tz};
	TariffZone	zone = {ParkingZoneOffset, memo != NULL ? memo : &one};

	Assert(memo == NULL || memo->tz == lot->tz);
	*fee = 0;
	return TariffPriceStay(&lot->tariff, &zone, entered_at, exited_at, fee);
}

/* The lot's fee for [entered_at, exited_at]; raises PY412/PY413. */
static int64
ParkingPriceWith(const ParkingLot *lot, ParkingZone *memo, TimestampTz entered_at,
				 TimestampTz exited_at)
{
	int64		fee = 0;
	TariffResult result = ParkingTryPrice(lot, memo, entered_at, exited_at, &fee);

	switch (result)
	{
		case TARIFF_OK:
			return fee;
		case TARIFF_EXIT_BEFORE_ENTRY:
			ereport(ERROR,
					(errcode(PAYEXT_ERRCODE_BAD_TIME),
					 errmsg("exit is before entry")));
			break;
		case TARIFF_OVERFLOW:
			ereport(ERROR,
					(errcode(PAYEXT_ERRCODE_FEE_OVERFLOW),
					 errmsg("the fee of this stay does not fit in 64 bits"),
					 errhint("Give the lot a cap_24h or a cap_stay.")));
			break;
		case TARIFF_BAD_TARIFF:
		case TARIFF_ZONE_FAILED:
			break;
	}
	elog(ERROR, "payext: lot " INT64_FORMAT " cannot be priced (%d)", lot->id, (int) result);
	return 0;					/* not reached */
}

/* A camera's or a caller's time: finite, and not ahead of the server. */
static TimestampTz
ParkingArgTime(FunctionCallInfo fcinfo, int argno, const char *name)
{
	TimestampTz at;

	PayextRequireArg(fcinfo, argno, name);
	at = PG_GETARG_TIMESTAMPTZ(argno);
	if (!PayextTimestampIsFinite(at))
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_BAD_TIME),
				 errmsg("argument \"%s\" must be a finite time", name)));
	return at;
}

/* A span of whole minutes as a person reads it: "30 days", "36 hours". */
static char *
ParkingFormatMinutes(int64 minutes)
{
	if (minutes % (24 * 60) == 0)
		return psprintf(INT64_FORMAT " day%s", minutes / (24 * 60), minutes == 24 * 60 ? "" : "s");
	if (minutes % 60 == 0)
		return psprintf(INT64_FORMAT " hour%s", minutes / 60, minutes == 60 ? "" : "s");
	return psprintf(INT64_FORMAT " minute%s", minutes, minutes == 1 ? "" : "s");
}

/* payext.max_stay in microseconds. */
static int64
ParkingMaxStayUs(void)
{
	return (int64) payext_max_stay_min * USECS_PER_MINUTE;
}

/*
 * A camera's time: at most payext.max_stay before the server's clock (the
 * transaction's start) and at most payext.max_clock_skew after it (PY412).
 * A camera dated in 1970 would otherwise open a stay of half a century.
 */
static void
ParkingCheckCameraTime(TimestampTz at, const char *name)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TimestampTz earliest;
	TimestampTz latest;

	/* now is finite and the bounds are at most ten years: no overflow. */
	if (pg_sub_s64_overflow(now, ParkingMaxStayUs(), &earliest) ||
		pg_add_s64_overflow(now, (int64) payext_max_clock_skew_s * USECS_PER_SEC, &latest))
		elog(ERROR, "payext: the camera time bounds overflow");
	if (at > latest)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_BAD_TIME),
				 errmsg("argument \"%s\" is in the future", name),
				 errdetail("Camera events up to %d seconds ahead of the server's clock are accepted (payext.max_clock_skew).",
						   payext_max_clock_skew_s),
				 errhint("Check the camera's clock.")));
	if (at < earliest)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_BAD_TIME),
				 errmsg("argument \"%s\" is too far in the past", name),
				 errdetail("Camera events up to %s old are accepted (payext.max_stay).",
						   ParkingFormatMinutes(payext_max_stay_min)),
				 errhint("Check the camera's clock.")));
}

/*
 * A stay's fee at exit, or when its owner asks what is due: NULL with *fee
 * set, or why it cannot be priced, for a person to settle.  No stay longer
 * than payext.max_stay is priced: no lot's tariff is checked beyond it (see
 * ParkingRequireBoundedTariff).  Within it, a lot made while max_stay was
 * shorter (or before 0.8.0) may still give a fee beyond 64 bits.
 */
static const char *
ParkingPriceStayFree(const ParkingLot *lot, const char *plate, TimestampTz entered_at,
					 TimestampTz exited_at, TimestampTz free_until, int64 *fee)
{
	int64		span_us;
	struct TariffPass passes[TARIFF_MAX_PASSES];
	int			npasses = 0;
	TariffResult result;

	if (pg_sub_s64_overflow(exited_at, entered_at, &span_us) || span_us > ParkingMaxStayUs())
		return psprintf("The stay lasted longer than payext.max_stay (%s).",
						ParkingFormatMinutes(payext_max_stay_min));
	if (plate != NULL)
	{
		Datum		values[4];
		uint64		rows;

		values[0] = Int64GetDatum(lot->id);
		values[1] = CStringGetTextDatum(plate);
		values[2] = TimestampTzGetDatum(entered_at);
		values[3] = TimestampTzGetDatum(exited_at);
		rows = PayextExecute(&passes_plan, values, NULL, true, 0, SPI_OK_SELECT);
		/* One place is the free minutes': more passes cannot be priced. */
		if (rows > TARIFF_MAX_PASSES - 1)
			return psprintf("More than %d passes of the plate overlap the stay.",
							TARIFF_MAX_PASSES - 1);
		for (uint64 i = 0; i < rows; i++)
		{
			passes[npasses].from_us = DatumGetTimestampTz(PayextResultDatum(i, 1));
			passes[npasses].until_us = DatumGetTimestampTz(PayextResultDatum(i, 2));
			npasses++;
		}
	}
	/* Free minutes from the entry are one pass more. */
	if (free_until > entered_at)
	{
		passes[npasses].from_us = entered_at;
		passes[npasses].until_us = free_until;
		npasses++;
	}
	if (npasses == 0)
		result = ParkingTryPrice(lot, NULL, entered_at, exited_at, fee);
	else
	{
		ParkingZone one = {lot->tz};
		TariffZone	zone = {ParkingZoneOffset, &one};

		*fee = 0;
		result = TariffPriceStayWithPasses(&lot->tariff, &zone, entered_at, exited_at,
										   passes, npasses, fee);
	}
	switch (result)
	{
		case TARIFF_OK:
			return NULL;
		case TARIFF_OVERFLOW:
			return "Its fee does not fit in 64 bits: the lot's tariff was accepted for a shorter payext.max_stay.";
		case TARIFF_EXIT_BEFORE_ENTRY:
		case TARIFF_BAD_TARIFF:
		case TARIFF_ZONE_FAILED:
			break;
	}
	return "The lot's tariff cannot price it.";
}

/* The fee of the plate's stay, its passes counted (plate NULL: none). */
static const char *
ParkingPriceStay(const ParkingLot *lot, const char *plate, TimestampTz entered_at,
				 TimestampTz exited_at, int64 *fee)
{
	return ParkingPriceStayFree(lot, plate, entered_at, exited_at, DT_NOBEGIN, fee);
}

/* ---------------------------------------------------------------------
 * Stays
 * ---------------------------------------------------------------------
 */

static int64 ParkingValidations(const ParkingLot *lot, const ParkingStay *stay,
								ParkingStay *apply_to, TimestampTz until, int64 fee);

/* A stay's state as its table stores it. */
static ParkingStayState
ParkingParseStayState(const char *state)
{
	if (strcmp(state, "open") == 0)
		return STAY_OPEN;
	if (strcmp(state, "exited") == 0)
		return STAY_EXITED;
	if (strcmp(state, "exit_unpriced") == 0)
		return STAY_EXIT_UNPRICED;
	return STAY_OTHER;
}

/*
 * A stay from SPI's result row `row`: STAY_COLUMNS, and with `locked` the
 * version locked (its ctid, the eleventh column).
 */
static void
ParkingReadStay(uint64 row, ParkingStay *stay, bool locked)
{
	char	   *owner;

	stay->id = DatumGetInt64(PayextResultDatum(row, 1));
	stay->lot = DatumGetInt64(PayextResultDatum(row, 2));
	strlcpy(stay->plate, PayextResultCString(row, 3), sizeof(stay->plate));
	stay->entered_at = DatumGetTimestampTz(PayextResultDatum(row, 4));
	stay->exited_at = DatumGetTimestampTz(PayextResultDatum(row, 5));
	stay->fee = DatumGetInt64(PayextResultDatum(row, 6));
	stay->paid = DatumGetInt64(PayextResultDatum(row, 7));
	stay->paid_at = DatumGetTimestampTz(PayextResultDatum(row, 8));
	stay->state = ParkingParseStayState(PayextResultCString(row, 9));
	owner = PayextResultCString(row, 10);
	strlcpy(stay->owner_at_entry, owner ? owner : "", sizeof(stay->owner_at_entry));
	ItemPointerSetInvalid(&stay->tid);
	if (locked)
		ItemPointerCopy((ItemPointer) DatumGetPointer(PayextResultDatum(row, 11)), &stay->tid);
}

/*
 * lock_open_stay_plan: the plate's open stay at the lot (values: lot,
 * plate), locked FOR UPDATE, into *stay; false when there is none.  Without
 * the executor through parking_stay_open_key when direct.c may, else
 * through SPI.
 */
static bool
ParkingLockOpenStay(Datum *values, ParkingStay *stay)
{
	static const char *const cols[] = {
		"id", "lot", "plate", "entered_at", "exited_at", "fee", "paid", "paid_at",
		"state", "owner_at_entry"
	};
	static const char *const equal_cols[] = {"lot", "plate", "state"};
	Datum		equal[lengthof(equal_cols)];
	PayextScanKey keys[2];
	Datum		row[lengthof(cols)];
	bool		nulls[lengthof(cols)];
	int			locked;

	equal[0] = values[0];
	equal[1] = values[1];
	equal[2] = CStringGetTextDatum("open");
	keys[0] = PayextKey(1, BTEqualStrategyNumber, values[0]);
	keys[1] = PayextKey(2, BTEqualStrategyNumber, values[1]);
	locked = PayextDirectLockByIndex(PayextDirectParkingStay, "parking_stay_open_key",
									 lengthof(keys), keys, lengthof(equal_cols), equal_cols,
									 equal, LockTupleExclusive, lengthof(cols), cols, row,
									 nulls, &stay->tid);
	if (locked < 0)
	{
		if (PayextExecute(&lock_open_stay_plan, values, NULL, false, 1, SPI_OK_SELECT) == 0)
			return false;
		ParkingReadStay(0, stay, true);
		return true;
	}
	if (locked == 0)
		return false;
	/* as STAY_COLUMNS reads them: NULLs as -infinity, -1 and "" */
	stay->id = DatumGetInt64(row[0]);
	stay->lot = DatumGetInt64(row[1]);
	strlcpy(stay->plate, TextDatumGetCString(row[2]), sizeof(stay->plate));
	stay->entered_at = nulls[3] ? DT_NOBEGIN : DatumGetTimestampTz(row[3]);
	stay->exited_at = nulls[4] ? DT_NOBEGIN : DatumGetTimestampTz(row[4]);
	stay->fee = nulls[5] ? -1 : DatumGetInt64(row[5]);
	stay->paid = DatumGetInt64(row[6]);
	stay->paid_at = nulls[7] ? DT_NOBEGIN : DatumGetTimestampTz(row[7]);
	stay->state = ParkingParseStayState(TextDatumGetCString(row[8]));
	strlcpy(stay->owner_at_entry, nulls[9] ? "" : TextDatumGetCString(row[9]),
			sizeof(stay->owner_at_entry));
	return true;
}

/*
 * The stay's UPDATE of the columns cols without the executor, where
 * direct.c can (src/direct.c): in the version this transaction locked and
 * last wrote, whose paid is the stay's (a bug otherwise, an internal
 * error); its tid then follows the version written.  false when direct.c
 * declines (a DBA's trigger, another write of the stay since, say): the
 * caller then runs its UPDATE, and the stay is no longer followed.
 */
static bool
ParkingUpdateStayDirect(ParkingStay *stay, int nset, const char *const *cols,
						const Datum *set, const bool *set_null)
{
	static const char *const expect_cols[] = {"id", "paid"};
	int64		expect[2];

	expect[0] = stay->id;
	expect[1] = stay->paid;
	if (PayextDirectUpdateTracked(PayextDirectParkingStay, &stay->tid, 2, expect_cols,
								  expect, nset, cols, set, set_null))
		return true;
	ItemPointerSetInvalid(&stay->tid);
	return false;
}

/*
 * A payment of the stay: its paid and paid_at, and its row of
 * payext.parking_payment (`payment`, in the columns' order), without the
 * executor where direct.c can; false, having written nothing, when it
 * declines the stay's update (the caller runs record_payment_plan).  The
 * payment row's foreign keys are given: the transfer is this
 * transaction's, the stay and the wallet are locked.
 */
static bool
ParkingRecordPaymentDirect(ParkingStay *stay, Datum *payment)
{
	static const char *const stay_cols[] = {"paid", "paid_at"};
	static const char *const cols[] = {
		"transfer_id", "stay", "wallet", "amount", "how", "paid_at"
	};
	Datum		set[2];

	/* at most the fee (a CHECK), a sum of bigint transfers: no overflow */
	set[0] = Int64GetDatum(stay->paid + DatumGetInt64(payment[3]));
	set[1] = payment[5];
	if (!ParkingUpdateStayDirect(stay, 2, stay_cols, set, NULL))
		return false;
	if (!PayextDirectInsert(PayextDirectParkingPayment, lengthof(cols), cols, payment,
							NULL, true, NULL))
		PayextExecute(&insert_payment_plan, payment, NULL, false, 0, SPI_OK_INSERT);
	return true;
}

/* True when a payment at paid_at still covers leaving at `at`. */
static bool
ParkingWithinGrace(const ParkingLot *lot, const ParkingStay *stay, TimestampTz at)
{
	return stay->paid_at != DT_NOBEGIN &&
		at <= stay->paid_at + (int64) lot->exit_grace_minutes * 60 * USECS_PER_SEC;
}

/*
 * What is due for the stay at time `at`: NULL with *due set, or why the
 * stay cannot be priced.
 */
static const char *
ParkingDue(const ParkingLot *lot, const ParkingStay *stay, TimestampTz at, int64 *due)
{
	const char *why;
	int64		fee;

	*due = 0;
	if (stay->state == STAY_EXITED)
	{
		*due = stay->fee - stay->paid;
		return NULL;
	}
	if (stay->state == STAY_EXIT_UNPRICED)
		return "Its exit could not be priced; it is in payext.parking_anomaly.";
	if (stay->state != STAY_OPEN || at <= stay->entered_at ||
		ParkingWithinGrace(lot, stay, at))
		return NULL;
	why = ParkingPriceStay(lot, stay->plate, stay->entered_at, at, &fee);
	if (why == NULL)
		*due = fee - stay->paid - ParkingValidations(lot, stay, NULL, at, fee);
	return why;
}

/*
 * Moves `amount` from wallet to the lot's operator and books it on the stay.
 * With payer set, `wallet` is this partition's clearing account holding a
 * saga's money from the payer's wallet on another partition; the
 * interaction is then the payer's side's to record (src/sql/saga.sql).
 */
static int64
ParkingTransferFrom(const ParkingLot *lot, ParkingStay *stay, int64 wallet,
					int64 amount, const char *how, bool softly, const char *payer)
{
	LedgerTransferRequest req = {0};
	LedgerAccount wallet_found = {0};
	LedgerAccount operator_found = {0};
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int64		transfer_id;
	bool		replayed;
	Datum		values[6];

	req.debit_account = wallet;
	req.credit_account = lot->operator_id;
	req.amount_minor = amount;
	req.kind = LEDGER_PARKING;
	req.idem_scope = lot->operator_id;
	/* One reference per stay and amount paid before: a stay step pays once. */
	req.reference = psprintf("stay-" INT64_FORMAT "-" INT64_FORMAT, stay->id, stay->paid);
	req.refuse_softly = softly;

	/*
	 * The operator is a merchant: paid through its buckets, but for a saga's
	 * payment, whose clearing account the bucket path does not lock.
	 */
	req.credit_via_bucket = payer == NULL;
	req.debit_found = &wallet_found;
	req.credit_found = &operator_found;
	transfer_id = LedgerTransfer(&req, &replayed);
	if (transfer_id == 0)
		return 0;
	/* The stay's row lock makes each step's reference new; a replay is a bug. */
	if (replayed)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_INVARIANT_BROKEN),
				 errmsg("parking stay " INT64_FORMAT " was already paid at this step", stay->id)));

	values[0] = Int64GetDatum(transfer_id);
	values[1] = Int64GetDatum(stay->id);
	values[2] = Int64GetDatum(wallet);
	values[3] = Int64GetDatum(amount);
	values[4] = CStringGetTextDatum(how);
	values[5] = TimestampTzGetDatum(now);
	if (!ParkingRecordPaymentDirect(stay, values))
		PayextExecute(&record_payment_plan, values, NULL, false, 0, SPI_OK_INSERT);
	stay->paid += amount;
	stay->paid_at = now;
	if (payer == NULL)
		AssocRecordTransfer(transfer_id, "payment", &wallet_found, &operator_found, amount);
	return transfer_id;
}

static int64
ParkingTransfer(const ParkingLot *lot, ParkingStay *stay, int64 wallet,
				int64 amount, const char *how, bool softly)
{
	return ParkingTransferFrom(lot, stay, wallet, amount, how, softly, NULL);
}

/* ---------------------------------------------------------------------
 * Shop validations: a merchant pays part of a stay
 * ---------------------------------------------------------------------
 */

/* parking_validation.kind */
typedef enum ParkingValidationKind
{
	VALIDATION_AMOUNT,
	VALIDATION_MINUTES,
	VALIDATION_PERCENT,
	VALIDATION_FREE
} ParkingValidationKind;

static const char *const validation_kind_names[] = {
	[VALIDATION_AMOUNT] = "amount",
	[VALIDATION_MINUTES] = "minutes",
	[VALIDATION_PERCENT] = "percent",
	[VALIDATION_FREE] = "free",
};

/*
 * What a validation takes off a stay's fee (for [entered_at, until]),
 * before the caps of ParkingValidations(): an amount, a share (rounded
 * down), all of it, or what the first `value` minutes from the entry
 * cost (the fee less the fee with those minutes free, passes counted).
 */
static int64
ParkingValidationDiscount(const ParkingLot *lot, const ParkingStay *stay,
						  TimestampTz until, int64 fee, ParkingValidationKind kind,
						  int64 value)
{
	int64		rest;

	switch (kind)
	{
		case VALIDATION_AMOUNT:
			return Min(value, fee);
		case VALIDATION_PERCENT:
			/* floor(fee * value / 100) without the product's overflow */
			return (fee / 100) * value + (fee % 100) * value / 100;
		case VALIDATION_FREE:
			return fee;
		case VALIDATION_MINUTES:
			if (ParkingPriceStayFree(lot, stay->plate, stay->entered_at, until,
									 stay->entered_at + value * 60 * USECS_PER_SEC,
									 &rest) != NULL)
				return 0;
			return Max(fee - rest, 0);
	}
	return 0;
}

/* Whether the shop's account can pay amount now (active, enough in it). */
static bool
ParkingShopCanPay(int64 shop, int64 amount)
{
	LedgerAccount account;

	return LedgerFindAccount(shop, &account) && account.status == LEDGER_ACTIVE &&
		LedgerWholeBalance(shop) >= amount;
}

/*
 * The discount of the shop's payment: from the shop's account to the
 * operator, booked on the stay (how 'validation'); 0 when the shop's
 * account cannot pay it now (too little, frozen, closed).
 */
static int64
ParkingValidationTransfer(const ParkingLot *lot, ParkingStay *stay, int64 shop,
						  int64 amount)
{
	LedgerTransferRequest req = {0};
	Datum		values[6];
	int64		transfer_id;
	bool		replayed;

	req.debit_account = shop;
	req.credit_account = lot->operator_id;
	req.amount_minor = amount;
	req.kind = LEDGER_PARKING;
	req.idem_scope = lot->operator_id;
	req.reference = psprintf("stay-" INT64_FORMAT "-" INT64_FORMAT, stay->id, stay->paid);
	req.refuse_softly = true;
	/* The operator is paid through its buckets, as by any parking payment. */
	req.credit_via_bucket = true;
	transfer_id = LedgerTransfer(&req, &replayed);
	if (transfer_id == 0)
		return 0;
	if (replayed)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_INVARIANT_BROKEN),
				 errmsg("parking stay " INT64_FORMAT " was already paid at this step", stay->id)));
	values[0] = Int64GetDatum(transfer_id);
	values[1] = Int64GetDatum(stay->id);
	values[2] = Int64GetDatum(amount);
	values[3] = Int64GetDatum(shop);
	values[4] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	PayextExecute(&record_validation_payment_plan, values, NULL, false, 0, SPI_OK_INSERT);
	stay->paid += amount;
	return transfer_id;
}

/*
 * The stay's pending validations against its fee for [entered_at, until]:
 * each in the order made, its discount capped at what is left of the fee
 * (they never take more than the fee together), and 0 for a shop that
 * cannot pay it now.  With apply_to, each shop pays its discount now (one
 * that cannot is 'unfunded' and takes nothing), and the stay's paid grows;
 * the caller holds the stay's lock and the payers' (ParkingLockPayers).  A
 * quote and the payment that follows it agree.  Read in a fresh snapshot:
 * a validation committed while the caller waited for the stay counts.
 * Returns the discounts' sum.
 */
static int64
ParkingValidations(const ParkingLot *lot, const ParkingStay *stay, ParkingStay *apply_to,
				   TimestampTz until, int64 fee)
{
	bool		apply = apply_to != NULL;
	Datum		values[4];
	uint64		rows;
	int64	   *ids;
	int64	   *shops;
	ParkingValidationKind *kinds;
	int64	   *amounts;
	int64		left = fee - stay->paid;
	int64		total = 0;

	values[0] = Int64GetDatum(stay->id);
	rows = PayextExecute(&pending_validations_plan, values, NULL, false, 0, SPI_OK_SELECT);
	if (rows == 0)
		return 0;
	ids = palloc(sizeof(int64) * rows);
	shops = palloc(sizeof(int64) * rows);
	kinds = palloc(sizeof(ParkingValidationKind) * rows);
	amounts = palloc(sizeof(int64) * rows);
	for (uint64 i = 0; i < rows; i++)
	{
		ids[i] = DatumGetInt64(PayextResultDatum(i, 1));
		shops[i] = DatumGetInt64(PayextResultDatum(i, 2));
		kinds[i] = (ParkingValidationKind) PayextParseWord(PayextResultCString(i, 3),
														   validation_kind_names,
														   lengthof(validation_kind_names),
														   "validation kind");
		amounts[i] = DatumGetInt64(PayextResultDatum(i, 4));
	}
	for (uint64 i = 0; i < rows; i++)
	{
		int64		discount = Max(Min(ParkingValidationDiscount(lot, stay, until, fee,
																 kinds[i], amounts[i]),
									   left - total), 0);
		int64		transfer_id = 0;
		const char *state = "applied";

		if (discount > 0 && apply)
			transfer_id = ParkingValidationTransfer(lot, apply_to, shops[i], discount);
		if (discount > 0 && (apply ? transfer_id == 0 : !ParkingShopCanPay(shops[i], discount)))
		{
			/* The shop cannot pay it now: the owner pays all. */
			state = "unfunded";
			discount = 0;
		}
		if (apply)
		{
			values[0] = Int64GetDatum(ids[i]);
			values[1] = CStringGetTextDatum(state);
			values[2] = Int64GetDatum(discount);
			values[3] = Int64GetDatum(transfer_id);
			PayextExecute(&settle_validation_plan, values,
						  transfer_id == 0 ? "   n" : NULL, false, 0, SPI_OK_UPDATE);
		}
		total += discount;
	}
	return total;
}

/*
 * The stay's entry hold, if it still holds: takes up to `due` of it as a
 * payment of the stay (how 'auto', recorded as the hold's capture) and
 * releases the rest; `due` 0 releases it all.  Returns what it took.  A
 * payment the wallet refuses now (frozen, closed) takes nothing: the camera
 * event goes on, and the stay stays due.
 */
static int64
ParkingTakeEntryHold(const ParkingLot *lot, ParkingStay *stay, int64 due)
{
	Datum		values[3];
	int64		hold;
	int64		wallet;
	int64		take;
	int64		transfer_id;

	values[0] = Int64GetDatum(stay->id);
	if (PayextExecute(&lock_stay_hold_plan, values, NULL, false, 1, SPI_OK_SELECT) == 0)
		return 0;
	hold = DatumGetInt64(PayextResultDatum(0, 1));
	wallet = DatumGetInt64(PayextResultDatum(0, 2));
	take = DatumGetBool(PayextResultDatum(0, 4)) ? 0 :
		Min(Max(due, 0), DatumGetInt64(PayextResultDatum(0, 3)));

	/* The hold gives up what the payment takes, before it is checked. */
	values[0] = Int64GetDatum(hold);
	values[1] = Int64GetDatum(take);
	PayextExecute(&close_stay_hold_plan, values, NULL, false, 0, SPI_OK_UPDATE);
	if (take == 0)
		return 0;
	transfer_id = ParkingTransfer(lot, stay, wallet, take, "auto", true);
	if (transfer_id == 0)
	{
		PayextExecute(&undo_stay_hold_plan, values, NULL, false, 0, SPI_OK_UPDATE);
		return 0;
	}
	values[0] = Int64GetDatum(transfer_id);
	values[1] = Int64GetDatum(hold);
	values[2] = Int64GetDatum(take);
	PayextExecute(&record_hold_capture_plan, values, NULL, false, 0, SPI_OK_INSERT);
	return take;
}

/*
 * The wallet that pays for plate in currency automatically: its owner's,
 * when the vehicle is bound with auto_pay (and to owner, unless owner is
 * ""); 0 when there is none.  auto_pay_wallet_plan, without the executor
 * when direct.c may read both tables (the vehicle by its plate, the wallet
 * by account_wallet_key), else through SPI.
 */
static int64
ParkingAutoPayWallet(const char *plate, const char *currency, const char *owner)
{
	static const char *const vehicle_cols[] = {"owner", "auto_pay"};
	static const char *const wallet_cols[] = {"id"};
	Datum		values[3];
	bool		nulls[2];
	PayextDirectScan *scan = PayextDirectBeginScan("vehicle_pkey", "plate");
	PayextScanKey keys[2];
	char	   *vehicle_owner = NULL;
	int64		wallet = 0;

	if (scan != NULL)
	{
		keys[0] = PayextKey(1, BTEqualStrategyNumber, CStringGetTextDatum(plate));
		PayextDirectRescan(scan, 1, keys);
		if (PayextDirectNext(scan, lengthof(vehicle_cols), vehicle_cols, values, nulls) &&
			!nulls[0] && !nulls[1] && DatumGetBool(values[1]))
			vehicle_owner = TextDatumGetCString(values[0]);
		PayextDirectEndScan(scan);
		if (vehicle_owner == NULL || (owner[0] != '\0' && strcmp(owner, vehicle_owner) != 0))
			return 0;
		/* the index admits wallets only: kind = 'wallet' is implied */
		scan = PayextDirectBeginScan("account_wallet_key", "owner,currency");
	}
	if (scan != NULL)
	{
		keys[0] = PayextKey(1, BTEqualStrategyNumber, CStringGetTextDatum(vehicle_owner));
		keys[1] = PayextKey(2, BTEqualStrategyNumber, CStringGetTextDatum(currency));
		PayextDirectRescan(scan, 2, keys);
		if (PayextDirectNext(scan, 1, wallet_cols, values, nulls) && !nulls[0])
			wallet = DatumGetInt64(values[0]);
		PayextDirectEndScan(scan);
		return wallet;
	}
	values[0] = CStringGetTextDatum(plate);
	values[1] = CStringGetTextDatum(currency);
	values[2] = CStringGetTextDatum(owner);
	if (PayextExecute(&auto_pay_wallet_plan, values, NULL, false, 1, SPI_OK_SELECT) == 1)
		wallet = DatumGetInt64(PayextResultDatum(0, 1));
	return wallet;
}

/*
 * At entry of a bound vehicle with auto_pay, at a lot that asks for it:
 * holds the lot's entry_hold on the owner's wallet in the lot's currency,
 * for the operator, until payext.max_stay from now.  A wallet that cannot
 * hold it (too little available, frozen) gets no hold; nothing stops the
 * camera's event.
 */
static void
ParkingEntryHold(const ParkingLot *lot, int64 stay_id, const char *plate)
{
	LedgerAccount operator;
	int64		wallet;

	if (lot->entry_hold <= 0)
		return;
	wallet = ParkingAutoPayWallet(plate, lot->currency, "");
	if (wallet == 0)
		return;
	LedgerReadAccount(lot->operator_id, &operator);
	HoldsCreate(wallet, &operator, psprintf(HOLDS_STAY_ORDER_PREFIX INT64_FORMAT, stay_id),
				0, stay_id, lot->entry_hold,
				GetCurrentTransactionStartTimestamp() + ParkingMaxStayUs(), true);
}

/*
 * The locks of a stay's payment, taken before any of its transfers: the
 * operator's row FOR KEY SHARE (as a charge takes its merchant's, so that
 * authorize() and a parking payment take turns, not deadlock), then every
 * account that may pay (the shops of pending validations, the entry
 * hold's wallet, the auto-paying owner's wallet, `wallet`) in id order.
 * The caller holds the stay's lock.  Returns the auto-paying owner's
 * wallet, 0 when there is none (ParkingAutoPay pays from it).
 */
static int64
ParkingLockPayers(const ParkingLot *lot, const ParkingStay *stay, int64 wallet)
{
	Datum		values[3];
	uint64		rows;
	int64	   *ids;
	int			n = 0;
	int64		auto_wallet = 0;

	CodesLockMerchantForPayment(lot->operator_id);
	values[0] = Int64GetDatum(stay->id);
	rows = PayextExecute(&stay_payers_plan, values, NULL, false, 0, SPI_OK_SELECT);
	ids = palloc(sizeof(int64) * (rows + 2));
	for (uint64 i = 0; i < rows; i++)
		ids[n++] = DatumGetInt64(PayextResultDatum(i, 1));
	if (wallet > 0)
		ids[n++] = wallet;
	auto_wallet = ParkingAutoPayWallet(stay->plate, lot->currency, stay->owner_at_entry);
	if (auto_wallet > 0)
		ids[n++] = auto_wallet;
	LedgerLockAccounts(ids, n);
	return auto_wallet;
}

/*
 * At exit: takes what is due from the stay's entry hold first; pays the
 * rest from the owner's wallet when auto_pay allows (auto_wallet, as
 * ParkingLockPayers found and locked it; 0: it does not), up to
 * payext.max_auto_pay; a dearer rest stays due for the owner to pay.
 */
static void
ParkingAutoPay(const ParkingLot *lot, ParkingStay *stay, int64 auto_wallet, int64 due)
{
	due -= ParkingTakeEntryHold(lot, stay, due);
	if (due <= 0 || due > payext_max_auto_pay || auto_wallet == 0)
		return;
	ParkingTransfer(lot, stay, auto_wallet, due, "auto", true);
}

/*
 * An exit that cannot be priced: kept, with its times and no fee, as the
 * anomaly exit_unpriced, and reported with a WARNING (PY415); nothing is
 * charged.  A person settles it.
 */
static void
ParkingCloseUnpriced(const ParkingLot *lot, ParkingStay *stay, TimestampTz entered_at,
					 TimestampTz exited_at, const char *why)
{
	Datum		values[3];

	values[0] = Int64GetDatum(stay->id);
	values[1] = TimestampTzGetDatum(entered_at);
	values[2] = TimestampTzGetDatum(exited_at);
	PayextExecute(&close_unpriced_plan, values, NULL, false, 0, SPI_OK_UPDATE);
	/* A person settles it: the entry hold holds nothing back meanwhile. */
	ParkingTakeEntryHold(lot, stay, 0);
	stay->entered_at = entered_at;
	stay->exited_at = exited_at;
	stay->state = STAY_EXIT_UNPRICED;
	ereport(WARNING,
			(errcode(PAYEXT_ERRCODE_EXIT_UNPRICED),
			 errmsg("the stay of plate %s at lot " INT64_FORMAT " cannot be priced", stay->plate, lot->id),
			 errdetail("%s The exit is kept in payext.parking_anomaly as exit_unpriced, and nothing is charged.", why),
			 errhint("A person settles it.")));
}

/*
 * Closes an open stay (or completes an exit without entry); returns the
 * fee, or -1 when it cannot be priced.
 */
static int64
ParkingCloseStay(const ParkingLot *lot, ParkingStay *stay, TimestampTz entered_at,
				 TimestampTz exited_at)
{
	static const char *const close_cols[] = {"entered_at", "exited_at", "fee", "state"};
	Datum		values[5];
	int64		fee;
	int64		auto_wallet;

	/* Paid before leaving, and gone within the grace: nothing more. */
	if (ParkingWithinGrace(lot, stay, exited_at))
		fee = stay->paid;
	else
	{
		const char *why = ParkingPriceStay(lot, stay->plate, entered_at, exited_at, &fee);

		if (why != NULL)
		{
			ParkingCloseUnpriced(lot, stay, entered_at, exited_at, why);
			return -1;
		}
		fee = Max(fee, stay->paid);
	}
	values[0] = TimestampTzGetDatum(entered_at);
	values[1] = TimestampTzGetDatum(exited_at);
	values[2] = Int64GetDatum(fee);
	values[3] = CStringGetTextDatum("exited");
	values[4] = Int64GetDatum(stay->id);
	if (!ParkingUpdateStayDirect(stay, lengthof(close_cols), close_cols, values, NULL))
		PayextExecute(&close_stay_plan, values, NULL, false, 0, SPI_OK_UPDATE);
	stay->entered_at = entered_at;
	stay->exited_at = exited_at;
	stay->fee = fee;
	stay->state = STAY_EXITED;
	auto_wallet = ParkingLockPayers(lot, stay, 0);
	ParkingValidations(lot, stay, stay, exited_at, fee);
	ParkingAutoPay(lot, stay, auto_wallet, fee - stay->paid);
	return fee;
}

/*
 * insert_stay_plan without the executor: the plate's owner read by the
 * vehicle's primary key, the lot locked FOR KEY SHARE as the stay's foreign
 * key's check locks it, the row inserted with that check given.  false,
 * having inserted nothing, when SPI must: the vehicle's read or the insert
 * declined (row-level security, a trigger, a DBA's column...), or the lot
 * gone since it was read (the SPI insert's check then raises 23503, or
 * 40001).  values and nulls are insert_stay_plan's.
 */
static bool
ParkingInsertStayDirect(const Datum *values, const char *nulls)
{
	static const char *const cols[] = {
		"id", "lot", "plate", "entered_at", "exited_at", "fee", "paid",
		"paid_at", "owner_at_entry", "state", "recorded_at"
	};
	static const char *const owner_col[] = {"owner"};
	Datum		row[lengthof(cols)];
	bool		row_null[lengthof(cols)];
	PayextDirectScan *scan = PayextDirectBeginScan("vehicle_pkey", "plate");
	PayextScanKey key;
	Datum		owner;
	bool		owner_null;

	if (scan == NULL)
		return false;
	if (!PayextDirectInsertAllowed(PayextDirectParkingStay, lengthof(cols), true))
	{
		PayextDirectEndScan(scan);
		return false;
	}
	key = PayextKey(1, BTEqualStrategyNumber, values[2]);
	PayextDirectRescan(scan, 1, &key);
	if (PayextDirectNext(scan, 1, owner_col, &owner, &owner_null) && !owner_null)
		owner = PointerGetDatum(PG_DETOAST_DATUM_COPY(owner));
	else
		owner_null = true;
	PayextDirectEndScan(scan);

	if (!PayextDirectLockById("parking_lot", DatumGetInt64(values[1]), LockTupleKeyShare))
		return false;
	memset(row_null, false, sizeof(row_null));
	row[0] = values[0];			/* id */
	row[1] = values[1];			/* lot */
	row[2] = values[2];			/* plate */
	row[3] = values[3];			/* entered_at */
	row_null[3] = nulls[3] == 'n';
	row[4] = values[4];			/* exited_at */
	row_null[4] = nulls[4] == 'n';
	row[5] = (Datum) 0;			/* fee */
	row_null[5] = true;
	row[6] = Int64GetDatum(0);	/* paid */
	row[7] = (Datum) 0;			/* paid_at */
	row_null[7] = true;
	row[8] = owner;				/* owner_at_entry */
	row_null[8] = owner_null;
	row[9] = values[5];			/* state */
	row[10] = values[6];		/* recorded_at */
	return PayextDirectInsert(PayextDirectParkingStay, lengthof(cols), cols, row, row_null,
							  true, NULL);
}

static int64
ParkingInsertStay(int64 lot, const char *plate, TimestampTz entered_at,
				  TimestampTz exited_at, const char *state)
{
	Datum		values[7];
	char		nulls[7];
	int64		id = PayextNextId("parking_stay_id_seq");

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(id);
	values[1] = Int64GetDatum(lot);
	values[2] = CStringGetTextDatum(plate);
	values[3] = TimestampTzGetDatum(entered_at);
	nulls[3] = entered_at == DT_NOBEGIN ? 'n' : ' ';
	values[4] = TimestampTzGetDatum(exited_at);
	nulls[4] = exited_at == DT_NOBEGIN ? 'n' : ' ';
	values[5] = CStringGetTextDatum(state);
	values[6] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	if (ParkingInsertStayDirect(values, nulls) ||
		PayextExecute(&insert_stay_plan, values, nulls, false, 0, SPI_OK_INSERT) == 1)
		return id;
	return 0;
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

/* plate_match_keys(plate text) RETURNS text[] (src/plate.c, PlateMatchKeys) */
PG_FUNCTION_INFO_V1(payext_plate_match_keys);
Datum
payext_plate_match_keys(PG_FUNCTION_ARGS)
{
	char	   *plate = ParkingArgPlate(fcinfo, 0);
	char		keys[PLATE_MAX_KEYS][PLATE_MAX_BYTES];
	Datum		elems[PLATE_MAX_KEYS];
	int			n = PlateMatchKeys(plate, keys);

	if (n < 1)
		elog(ERROR, "payext: normalised plate %s has no match keys", plate);
	for (int i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(keys[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* plate_distance(a text, b text) RETURNS integer: 0, 1, or 2 for more */
PG_FUNCTION_INFO_V1(payext_plate_distance);
Datum
payext_plate_distance(PG_FUNCTION_ARGS)
{
	char	   *a = ParkingArgPlate(fcinfo, 0);
	char	   *b = ParkingArgPlate(fcinfo, 1);

	PG_RETURN_INT32(PlateDistance(a, b));
}

/* parking_next_id(what text) RETURNS bigint: 'pass' */
PG_FUNCTION_INFO_V1(payext_parking_next_id);
Datum
payext_parking_next_id(PG_FUNCTION_ARGS)
{
	char	   *what = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (strcmp(what, "pass") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payext has no parking sequence for \"%s\"", what),
				 errhint("The one there is: pass.")));
	PG_RETURN_INT64(PayextNextId("parking_pass_id_seq"));
}

/* normalize_plate(plate text) RETURNS text */
PG_FUNCTION_INFO_V1(payext_normalize_plate);
Datum
payext_normalize_plate(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(ParkingArgPlate(fcinfo, 0)));
}

/* bind_vehicle(owner text, plate text, auto_pay boolean DEFAULT false) RETURNS void */
PG_FUNCTION_INFO_V1(payext_bind_vehicle);
Datum
payext_bind_vehicle(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"owner", "plate", "auto_pay"};
	char	   *owner;
	char	   *plate;
	bool		auto_pay;
	Datum		values[4];

	PayextRequireArgs(fcinfo, 3, names);
	owner = PayextArgIdentifier(fcinfo, 0, "owner", PAYEXT_MAX_IDENTIFIER_LEN);
	plate = ParkingArgPlate(fcinfo, 1);
	auto_pay = PG_GETARG_BOOL(2);

	PayextSpiConnect();
	values[0] = CStringGetTextDatum(plate);
	values[1] = CStringGetTextDatum(owner);
	values[2] = BoolGetDatum(auto_pay);
	values[3] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	if (PayextExecute(&insert_vehicle_plan, values, NULL, false, 0, SPI_OK_INSERT) == 1)
	{
		/* A new binding: count it against the owner's limit. */
		Datum		count_values[2];

		count_values[0] = values[1];
		count_values[1] = Int32GetDatum(1);
		PayextExecute(&count_vehicle_plan, count_values, NULL, false, 0, SPI_OK_INSERT_RETURNING);
		if (DatumGetInt32(PayextResultDatum(0, 1)) > payext_max_vehicles)
			ereport(ERROR,
					(errcode(PAYEXT_ERRCODE_TOO_MANY_VEHICLES),
					 errmsg("user \"%s\" may bind at most %d vehicles", owner, payext_max_vehicles),
					 errdetail("The limit is set by payext.max_vehicles."),
					 errhint("Unbind a vehicle first.")));
	}
	else
	{
		/*
		 * Bound already: to this owner, a change of auto_pay; to another,
		 * refused.
		 */
		Datum		set_values[2];

		PayextExecute(&lock_vehicle_plan, values, NULL, false, 1, SPI_OK_SELECT);
		if (SPI_processed != 1 || strcmp(PayextResultCString(0, 1), owner) != 0)
			ereport(ERROR,
					(errcode(PAYEXT_ERRCODE_PLATE_TAKEN),
					 errmsg("plate %s is bound to another user", plate),
					 errhint("That user must unbind it first.")));
		set_values[0] = values[0];
		set_values[1] = values[2];
		PayextExecute(&set_auto_pay_plan, set_values, NULL, false, 0, SPI_OK_UPDATE);
	}
	PayextSpiFinish();
	PG_RETURN_VOID();
}

/* unbind_vehicle(owner text, plate text) RETURNS void */
PG_FUNCTION_INFO_V1(payext_unbind_vehicle);
Datum
payext_unbind_vehicle(PG_FUNCTION_ARGS)
{
	char	   *owner = PayextArgIdentifier(fcinfo, 0, "owner", PAYEXT_MAX_IDENTIFIER_LEN);
	char	   *plate = ParkingArgPlate(fcinfo, 1);
	Datum		values[2];

	PayextSpiConnect();
	values[0] = CStringGetTextDatum(plate);
	values[1] = CStringGetTextDatum(owner);
	if (PayextExecute(&delete_vehicle_plan, values, NULL, false, 0, SPI_OK_DELETE) == 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_NOT_BOUND),
				 errmsg("plate %s is not bound to user \"%s\"", plate, owner)));
	PayextExecute(&uncount_vehicle_plan, &values[1], NULL, false, 0, SPI_OK_UPDATE);
	PayextSpiFinish();
	PG_RETURN_VOID();
}

static void
ParkingRaiseBadLot(const char *message)
{
	ereport(ERROR,
			(errcode(PAYEXT_ERRCODE_BAD_LOT),
			 errmsg("%s", message)));
}

/*
 * Refuses a tariff that could charge more than 64 bits for a stay of at most
 * payext.max_stay (PY405), so that every exit up to it can be priced.  A
 * later, longer max_stay is the exit's problem: see ParkingCloseStay.
 */
static void
ParkingRequireBoundedTariff(const Tariff *tariff)
{
	int64		worst;

	switch (TariffWorstCase(tariff, ParkingMaxStayUs(), &worst))
	{
		case TARIFF_OK:
			return;
		case TARIFF_OVERFLOW:
			ereport(ERROR,
					(errcode(PAYEXT_ERRCODE_BAD_LOT),
					 errmsg("the tariff could charge more than the largest amount within payext.max_stay"),
					 errdetail("A stay of %s (payext.max_stay) could cost more than " INT64_FORMAT " minor units at up to " INT64_FORMAT " a unit.",
							   ParkingFormatMinutes(payext_max_stay_min), PG_INT64_MAX,
							   Max(tariff->day_price, tariff->night_price)),
					 errhint("Lower the prices, or give the lot a cap_24h or a cap_stay.")));
			break;
		default:
			elog(ERROR, "payext: a checked tariff is invalid");
	}
}

/* A time of day as whole minutes, or a refusal. */
static int32
ParkingArgMinuteOfDay(FunctionCallInfo fcinfo, int argno, const char *name)
{
	TimeADT		t = PG_GETARG_TIMEADT(argno);

	if (t < 0 || t >= USECS_PER_DAY || t % (60 * USECS_PER_SEC) != 0)
		ParkingRaiseBadLot(psprintf("%s must be a whole minute from 00:00 to 23:59", name));
	return (int32) (t / (60 * USECS_PER_SEC));
}

/*
 * create_parking_lot(operator bigint, name text, time_zone text,
 *		free_minutes integer, unit_minutes integer, day_price bigint,
 *		night_price bigint DEFAULT NULL, day_start time DEFAULT '08:00',
 *		night_start time DEFAULT '20:00', cap_24h bigint DEFAULT NULL,
 *		cap_stay bigint DEFAULT NULL, exit_grace_minutes integer DEFAULT 15)
 *		RETURNS bigint
 */
PG_FUNCTION_INFO_V1(payext_create_parking_lot);
Datum
payext_create_parking_lot(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"operator", "name", "time_zone", "free_minutes",
		"unit_minutes", "day_price", "night_price", "day_start", "night_start", "cap_24h",
	"cap_stay", "exit_grace_minutes", "entry_hold"};
	char	   *name;
	char	   *tz_name;
	LedgerAccount operator;
	Tariff		tariff;
	int32		grace;
	Datum		values[16];
	char		nulls[16];
	int64		id;

	/*
	 * night_price, cap_24h, cap_stay and entry_hold may be NULL; nothing
	 * else.
	 */
	for (int i = 0; i < 12; i++)
		if (i != 6 && i != 9 && i != 10)
			PayextRequireArg(fcinfo, i, names[i]);
	name = PayextArgIdentifier(fcinfo, 1, "name", PAYEXT_MAX_DISPLAY_NAME_LEN);
	tz_name = ParkingArgTimeZone(fcinfo, 2);
	tariff.free_minutes = PG_GETARG_INT32(3);
	tariff.unit_minutes = PG_GETARG_INT32(4);
	tariff.day_price = PG_GETARG_INT64(5);
	tariff.night_price = PG_ARGISNULL(6) ? TARIFF_NO_PRICE : PG_GETARG_INT64(6);
	tariff.day_start_min = ParkingArgMinuteOfDay(fcinfo, 7, "day_start");
	tariff.night_start_min = ParkingArgMinuteOfDay(fcinfo, 8, "night_start");
	tariff.cap_24h = PG_ARGISNULL(9) ? TARIFF_NO_PRICE : PG_GETARG_INT64(9);
	tariff.cap_stay = PG_ARGISNULL(10) ? TARIFF_NO_PRICE : PG_GETARG_INT64(10);
	grace = PG_GETARG_INT32(11);

	if (tariff.free_minutes < 0 || tariff.free_minutes > PAYEXT_MAX_FREE_MINUTES)
		ParkingRaiseBadLot(psprintf("free_minutes must be between 0 and %d", PAYEXT_MAX_FREE_MINUTES));
	if (tariff.unit_minutes < 1 || tariff.unit_minutes > 1440)
		ParkingRaiseBadLot("unit_minutes must be between 1 and 1440");
	if (tariff.day_price < 0 || (!PG_ARGISNULL(6) && tariff.night_price < 0))
		ParkingRaiseBadLot("prices must not be negative");
	if ((!PG_ARGISNULL(9) && tariff.cap_24h < 0) || (!PG_ARGISNULL(10) && tariff.cap_stay < 0))
		ParkingRaiseBadLot("caps must not be negative");
	if (!PG_ARGISNULL(6) && tariff.day_start_min == tariff.night_start_min)
		ParkingRaiseBadLot("with a night price, day_start and night_start must differ");
	if (grace < 0 || grace > 1440)
		ParkingRaiseBadLot("exit_grace_minutes must be between 0 and 1440");
	if (!PG_ARGISNULL(12) && PG_GETARG_INT64(12) <= 0)
		ParkingRaiseBadLot("entry_hold must be positive (NULL: no entry hold)");
	Assert(TariffIsValid(&tariff));
	ParkingRequireBoundedTariff(&tariff);

	PayextSpiConnect();
	LedgerReadAccount(PG_GETARG_INT64(0), &operator);
	LedgerRequireKind(&operator, LEDGER_MERCHANT, "operator of a parking lot");
	id = PayextNextId("parking_lot_id_seq");
	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(id);
	values[1] = Int64GetDatum(operator.id);
	values[2] = CStringGetTextDatum(name);
	values[3] = CStringGetTextDatum(operator.currency);
	values[4] = CStringGetTextDatum(tz_name);
	values[5] = Int32GetDatum(tariff.free_minutes);
	values[6] = Int32GetDatum(tariff.unit_minutes);
	values[7] = Int64GetDatum(tariff.day_price);
	values[8] = Int64GetDatum(tariff.night_price);
	nulls[8] = PG_ARGISNULL(6) ? 'n' : ' ';
	values[9] = PG_GETARG_DATUM(7);
	values[10] = PG_GETARG_DATUM(8);
	values[11] = Int64GetDatum(tariff.cap_24h);
	nulls[11] = PG_ARGISNULL(9) ? 'n' : ' ';
	values[12] = Int64GetDatum(tariff.cap_stay);
	nulls[12] = PG_ARGISNULL(10) ? 'n' : ' ';
	values[13] = Int32GetDatum(grace);
	values[14] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	values[15] = PG_ARGISNULL(12) ? Int64GetDatum(0) : PG_GETARG_DATUM(12);
	nulls[15] = PG_ARGISNULL(12) ? 'n' : ' ';
	PayextExecute(&insert_lot_plan, values, nulls, false, 0, SPI_OK_INSERT);
	PayextSpiFinish();
	PG_RETURN_INT64(id);
}

/*
 * The lots one call site of parking_fee() has priced, kept for the rest of
 * its query in fn_extra: a query pricing a million stays reads each lot's
 * tariff once, not a million times.  A lot's row never changes (there is
 * no function that updates one, and ids are never reused), so a copy can
 * not go stale within the query.
 *
 * parking_fee() is SECURITY INVOKER without a SET clause: a SET
 * search_path costs a GUC save and restore on every call, which was most
 * of the time of pricing a million stays.  It reads the lot as its owner,
 * under a pinned search_path, itself, and only when the lot is not cached.
 *
 * It is PARALLEL SAFE: it writes nothing, reads the lot read-only under the
 * query's snapshot, and a parallel worker may switch the user id and save
 * and restore a GUC (what a SET clause does), so each worker keeps a cache
 * of its own and a query over many stays is priced by all of them.
 */
#define PARKING_FEE_CACHED_LOTS 8

typedef struct ParkingFeeCache
{
	int			used;
	int			next;			/* the slot to replace when full */
	ParkingLot	lots[PARKING_FEE_CACHED_LOTS];
	ParkingZone zones[PARKING_FEE_CACHED_LOTS];
} ParkingFeeCache;

static const ParkingLot *
ParkingCachedLot(FunctionCallInfo fcinfo, int64 lot_id, ParkingZone **zone)
{
	ParkingFeeCache *cache = (ParkingFeeCache *) fcinfo->flinfo->fn_extra;
	ParkingLot	lot;
	int			slot;
	RolesSwitch sw;
	int			nest_level;

	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(ParkingFeeCache));
		fcinfo->flinfo->fn_extra = cache;
	}
	for (int i = 0; i < cache->used; i++)
	{
		if (cache->lots[i].id == lot_id)
		{
			*zone = &cache->zones[i];
			return &cache->lots[i];
		}
	}
	RolesBecomeOwner(fcinfo, &sw);
	nest_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, payext, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	PayextSpiConnect();
	ParkingLoadLot(lot_id, &lot, true);
	PayextSpiFinish();
	AtEOXact_GUC(true, nest_level);
	RolesRestore(&sw);
	if (cache->used < PARKING_FEE_CACHED_LOTS)
		slot = cache->used++;
	else
	{
		slot = cache->next;
		cache->next = (cache->next + 1) % PARKING_FEE_CACHED_LOTS;
	}
	cache->lots[slot] = lot;
	memset(&cache->zones[slot], 0, sizeof(ParkingZone));
	cache->zones[slot].tz = lot.tz;
	*zone = &cache->zones[slot];
	return &cache->lots[slot];
}

/* parking_fee(lot bigint, entered_at timestamptz, exited_at timestamptz) RETURNS bigint */
PG_FUNCTION_INFO_V1(payext_parking_fee);
Datum
payext_parking_fee(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"lot"};
	TimestampTz entered_at;
	TimestampTz exited_at;
	const ParkingLot *lot;
	ParkingZone *zone;
	int64		fee;

	PayextRequireArgs(fcinfo, 1, names);
	entered_at = ParkingArgTime(fcinfo, 1, "entered_at");
	exited_at = ParkingArgTime(fcinfo, 2, "exited_at");
	lot = ParkingCachedLot(fcinfo, PG_GETARG_INT64(0), &zone);
	fee = ParkingPriceWith(lot, zone, entered_at, exited_at);
	PG_RETURN_INT64(fee);
}

/*
 * lock_plate_events_plan without the executor: the plate's row at the lot,
 * as the statement's snapshot sees it, locked and counted; or, when there
 * is none, the lot locked FOR KEY SHARE (the new row's foreign key's check)
 * and the row inserted, ON CONFLICT as the executor does it (the row a
 * concurrent event inserted first, locked and counted).  The lot is locked
 * for a plate new at the lot, as the upsert's check locks it, and when a
 * first event of the plate at the lot is in flight elsewhere (the upsert
 * would have met its row: one lock more, as rare as such a race).  Under
 * SERIALIZABLE the row is not looked for first: the snapshot's read would
 * take a predicate lock that the upsert's probe does not, so the lot is
 * locked and the insert tried, as for a new plate.  Under READ COMMITTED
 * a row updated meanwhile is looked for again; under REPEATABLE READ and
 * SERIALIZABLE it is 40001, as the upsert raises.  false, having written
 * nothing but a lock, when SPI must: the caller's upsert then finds the
 * row this transaction holds.  values: lot, plate.
 */
static bool
ParkingCountEventDirect(const Datum *values)
{
	static const char *const cols[] = {"lot", "plate", "events"};
	static const char *const count_col[] = {"events"};
	Datum		row[lengthof(cols)] = {values[0], values[1], Int64GetDatum(1)};

	/* What the upsert checks and fires, conflict or not. */
	if (!PayextDirectUpsertAllowed(PayextDirectParkingPlateEvents, lengthof(cols), 1,
								   count_col))
		return false;
	for (;;)
	{
		PayextDirectScan *scan = NULL;
		PayextScanKey keys[2];
		ItemPointerData tid;
		bool		found = false;
		Datum		events;
		bool		events_null;
		int64		counted;

		if (!IsolationIsSerializable())
		{
			scan = PayextDirectBeginScan("parking_plate_events_pkey", "lot,plate");
			if (scan == NULL)
				return false;
			keys[0] = PayextKey(1, BTEqualStrategyNumber, values[0]);
			keys[1] = PayextKey(2, BTEqualStrategyNumber, values[1]);
			PayextDirectRescan(scan, 2, keys);
			found = PayextDirectNext(scan, 0, NULL, NULL, NULL);
			if (found)
				tid = *PayextDirectScanTid(scan);
			PayextDirectEndScan(scan);
		}
		if (!found)
		{
			int			inserted;

			if (!PayextDirectLockById("parking_lot", DatumGetInt64(values[0]),
									  LockTupleKeyShare))
				return false;	/* gone: the upsert's check raises 23503 */
			inserted = PayextDirectInsertOrNothing(PayextDirectParkingPlateEvents,
												   "parking_plate_events_pkey",
												   lengthof(cols), cols, row, NULL,
												   true, &tid);
			if (inserted != 0)
				return inserted == 1;
		}
		if (PayextDirectLockRow(PayextDirectParkingPlateEvents, &tid, LockTupleNoKeyExclusive,
								1, count_col, &events, &events_null) == 0)
			continue;			/* changed meanwhile: from the start */
		if (events_null)
			elog(ERROR, "payext: a plate's event counter is null");
		if (pg_add_s64_overflow(DatumGetInt64(events), 1, &counted))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("bigint out of range")));
		events = Int64GetDatum(counted);
		return PayextDirectUpdate(PayextDirectParkingPlateEvents, &tid, 0, NULL, NULL,
								  1, count_col, &events, NULL);
	}
}

/*
 * The arguments of a camera event (lot, plate, at), checked; connects to SPI,
 * loads the lot and takes the plate's event lock at the lot.  values (4
 * of them) gets lot id, plate, at and the repeat window in seconds, as the
 * stay plans take them.
 */
static void
ParkingEventStart(FunctionCallInfo fcinfo, ParkingLot *lot, Datum *values,
				  char **plate, TimestampTz *at)
{
	static const char *const names[] = {"lot"};

	PayextRequireArgs(fcinfo, 1, names);
	*plate = ParkingArgPlate(fcinfo, 1);
	*at = ParkingArgTime(fcinfo, 2, "at");
	ParkingCheckCameraTime(*at, "at");

	PayextSpiConnect();
	ParkingLoadLot(PG_GETARG_INT64(0), lot, false);
	values[0] = Int64GetDatum(lot->id);
	values[1] = CStringGetTextDatum(*plate);
	values[2] = TimestampTzGetDatum(*at);
	values[3] = Float8GetDatum(PAYEXT_EXIT_REPEAT_S);
	/* One event of this plate at this lot at a time. */
	if (!ParkingCountEventDirect(values))
		PayextExecute(&lock_plate_events_plan, values, NULL, false, 0, SPI_OK_INSERT);
}

/*
 * find_entered_stay_plan (values: lot, plate, at, the window's seconds):
 * the stay of lot and plate that ended (exited, exit_missed or
 * exit_unpriced) and entered within the repeat window of `at`, the latest
 * entered; 0 when there is none.  Read through parking_stay_plate_idx
 * without the executor (every stay of the plate at the lot, as the
 * statement's plan reads them) when direct.c may, else through SPI.
 */
static int64
ParkingFindEnteredStay(Datum *values)
{
	static const char *const cols[] = {"id", "state", "entered_at"};
	PayextDirectScan *scan = PayextDirectBeginScan("parking_stay_plate_idx",
												   "plate,lot");
	TimestampTz at = DatumGetTimestampTz(values[2]);
	int64		repeat_us = (int64) PAYEXT_EXIT_REPEAT_S * USECS_PER_SEC;
	PayextScanKey keys[2];
	Datum		row[lengthof(cols)];
	bool		nulls[lengthof(cols)];
	int64		found = 0;
	TimestampTz found_at = DT_NOBEGIN;

	if (scan == NULL)
	{
		if (PayextExecute(&find_entered_stay_plan, values, NULL, false, 1, SPI_OK_SELECT) == 1)
			return DatumGetInt64(PayextResultDatum(0, 1));
		return 0;
	}
	keys[0] = PayextKey(1, BTEqualStrategyNumber, values[1]);
	keys[1] = PayextKey(2, BTEqualStrategyNumber, values[0]);
	PayextDirectRescan(scan, lengthof(keys), keys);
	while (PayextDirectNext(scan, lengthof(cols), cols, row, nulls))
	{
		char	   *state;
		TimestampTz entered_at;

		if (nulls[0] || nulls[1] || nulls[2])
			continue;
		entered_at = DatumGetTimestampTz(row[2]);
		if (entered_at < at - repeat_us || entered_at > at + repeat_us ||
			(found != 0 && entered_at <= found_at))
			continue;
		state = TextDatumGetCString(row[1]);
		if (strcmp(state, "exited") == 0 || strcmp(state, "exit_missed") == 0 ||
			strcmp(state, "exit_unpriced") == 0)
		{
			found = DatumGetInt64(row[0]);
			found_at = entered_at;
		}
		pfree(state);
	}
	PayextDirectEndScan(scan);
	return found;
}

/*
 * Whether lot and plate may have an exit without entry between args[2]
 * and args[3] (args: lot, plate, from, until): false when a read through
 * parking_stay_plate_idx without the executor finds none, so that the
 * locking statement need not run.  Such stays are made by this plate's
 * exits at this lot, which the caller's event lock keeps out meanwhile.
 */
static bool
ParkingMayHaveExitWithoutEntry(const Datum *args)
{
	static const char *const cols[] = {"state"};
	PayextDirectScan *scan = PayextDirectBeginScan("parking_stay_plate_idx",
												   "plate,lot,exited_at");
	PayextScanKey keys[4];
	Datum		state;
	bool		null;
	bool		found = false;

	if (scan == NULL)
		return true;
	keys[0] = PayextKey(1, BTEqualStrategyNumber, args[1]);
	keys[1] = PayextKey(2, BTEqualStrategyNumber, args[0]);
	keys[2] = PayextKey(3, BTGreaterEqualStrategyNumber, args[2]);
	keys[3] = PayextKey(3, BTLessEqualStrategyNumber, args[3]);
	PayextDirectRescan(scan, lengthof(keys), keys);
	while (!found && PayextDirectNext(scan, 1, cols, &state, &null))
	{
		char	   *name;

		if (null)
			continue;
		name = TextDatumGetCString(state);
		found = strcmp(name, "exit_without_entry") == 0;
		pfree(name);
	}
	PayextDirectEndScan(scan);
	return found;
}

/*
 * A late entry: completes the earliest exit without entry between `at` and
 * `until`; returns its stay id, or 0 when there is none.
 */
static int64
ParkingCompleteExit(const ParkingLot *lot, Datum *values, TimestampTz until)
{
	Datum		args[4];
	ParkingStay stay;

	args[0] = values[0];
	args[1] = values[1];
	args[2] = values[2];
	args[3] = TimestampTzGetDatum(until);
	if (!ParkingMayHaveExitWithoutEntry(args) ||
		PayextExecute(&lock_exit_without_entry_plan, args, NULL, false, 1, SPI_OK_SELECT) == 0)
		return 0;
	ParkingReadStay(0, &stay, true);
	ParkingCloseStay(lot, &stay, DatumGetTimestampTz(values[2]), stay.exited_at);
	return stay.id;
}

/*
 * A new stay from `at` in `state` ('open' or 'exit_missed'); an open one
 * gets the lot's entry hold.
 */
static int64
ParkingNewEntry(const ParkingLot *lot, const char *plate, TimestampTz at, const char *state)
{
	int64		id = ParkingInsertStay(lot->id, plate, at, DT_NOBEGIN, state);

	if (id == 0)
		elog(ERROR, "payext: plate %s already has an open stay at lot " INT64_FORMAT,
			 plate, lot->id);
	if (strcmp(state, "open") == 0)
		ParkingEntryHold(lot, id, plate);
	return id;
}

/* vehicle_entered(lot bigint, plate text, at timestamptz DEFAULT now()) RETURNS bigint */
PG_FUNCTION_INFO_V1(payext_vehicle_entered);
Datum
payext_vehicle_entered(PG_FUNCTION_ARGS)
{
	char	   *plate;
	TimestampTz at;
	ParkingLot	lot;
	Datum		values[4];
	int64		repeat_us = (int64) PAYEXT_EXIT_REPEAT_S * USECS_PER_SEC;
	int64		id;
	ParkingStay open;

	ParkingEventStart(fcinfo, &lot, values, &plate, &at);

	if (ParkingLockOpenStay(values, &open))
	{
		if (at >= open.entered_at - repeat_us && at <= open.entered_at + repeat_us)
			id = open.id;		/* the same entry, seen again */
		else if (at < open.entered_at)
		{
			/*
			 * An earlier stay's entry: seen again, late with its exit, or
			 * alone.
			 */
			if ((id = ParkingFindEnteredStay(values)) == 0)
			{
				id = ParkingCompleteExit(&lot, values, open.entered_at);
				if (id == 0)
					id = ParkingNewEntry(&lot, plate, at, "exit_missed");
			}
		}
		else
		{
			/* In again, so it left unseen: the open stay's exit was missed. */
			values[0] = Int64GetDatum(open.id);
			PayextExecute(&exit_missed_plan, values, NULL, false, 0, SPI_OK_UPDATE);
			ParkingTakeEntryHold(&lot, &open, 0);
			id = ParkingNewEntry(&lot, plate, at, "open");
		}
		PayextSpiFinish();
		PG_RETURN_INT64(id);
	}
	/* The same entry again, of a stay that has ended since. */
	if ((id = ParkingFindEnteredStay(values)) != 0)
	{
		PayextSpiFinish();
		PG_RETURN_INT64(id);
	}
	/* A late entry for an exit seen first completes that stay. */
	id = ParkingCompleteExit(&lot, values, DT_NOEND);
	if (id == 0)
		id = ParkingNewEntry(&lot, plate, at, "open");
	PayextSpiFinish();
	PG_RETURN_INT64(id);
}

/* vehicle_exited(lot bigint, plate text, at timestamptz DEFAULT now()) RETURNS bigint */
PG_FUNCTION_INFO_V1(payext_vehicle_exited);
Datum
payext_vehicle_exited(PG_FUNCTION_ARGS)
{
	char	   *plate;
	TimestampTz at;
	ParkingLot	lot;
	Datum		values[4];
	ParkingStay stay;
	int64		fee;

	ParkingEventStart(fcinfo, &lot, values, &plate, &at);

	if (ParkingLockOpenStay(values, &stay))
	{
		if (stay.entered_at <= at)
		{
			fee = ParkingCloseStay(&lot, &stay, stay.entered_at, at);
			PayextSpiFinish();
			if (fee < 0)
				PG_RETURN_NULL();	/* kept, unpriced */
			PG_RETURN_INT64(fee);
		}
		/* Older than the open stay's entry: an earlier stay's exit. */
	}

	/*
	 * A repeated exit event: of a stay that has ended, or of one without
	 * entry.
	 */
	if (PayextExecute(&find_repeated_exit_plan, values, NULL, false, 1, SPI_OK_SELECT) == 1)
	{
		bool		isnull;

		fee = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		PayextSpiFinish();
		if (isnull)
			PG_RETURN_NULL();
		PG_RETURN_INT64(fee);
	}
	/* An exit without an entry: kept, and reported in parking_anomaly. */
	ParkingInsertStay(lot.id, plate, DT_NOBEGIN, at, "exit_without_entry");
	ereport(WARNING,
			(errcode(PAYEXT_ERRCODE_EXIT_WITHOUT_ENTRY),
			 errmsg("plate %s left lot " INT64_FORMAT " without an entry on record", plate, lot.id),
			 errdetail("The exit is kept in payext.parking_anomaly; a late entry event completes it.")));
	PayextSpiFinish();
	PG_RETURN_NULL();
}

/*
 * parking_service_info(owner text, at timestamptz DEFAULT now())
 *		RETURNS TABLE(stay, plate, lot, entered_at, exited_at, amount_due,
 *					  lot_name, currency)
 */
PG_FUNCTION_INFO_V1(payext_parking_service_info);
Datum
payext_parking_service_info(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *owner = PayextArgIdentifier(fcinfo, 0, "owner", PAYEXT_MAX_IDENTIFIER_LEN);
	TimestampTz at = ParkingArgTime(fcinfo, 1, "at");
	Datum		args[1];
	uint64		rows;
	ParkingStay *stays;
	char	  **lot_names;
	char	  **currencies;
	ParkingLot	lot = {0};
	int64		due;

	InitMaterializedSRF(fcinfo, 0);
	PayextSpiConnect();
	args[0] = CStringGetTextDatum(owner);
	rows = PayextExecute(&service_info_plan, args, NULL, true, 0, SPI_OK_SELECT);
	/* Read them all first: pricing runs queries of its own. */
	stays = palloc(sizeof(ParkingStay) * Max(rows, 1));
	lot_names = palloc(sizeof(char *) * Max(rows, 1));
	currencies = palloc(sizeof(char *) * Max(rows, 1));
	for (uint64 i = 0; i < rows; i++)
	{
		ParkingReadStay(i, &stays[i], false);
		lot_names[i] = PayextResultCString(i, 11);
		currencies[i] = PayextResultCString(i, 12);
	}
	for (uint64 i = 0; i < rows; i++)
	{
		Datum		values[8];
		bool		nulls[8] = {false};

		if (lot.id != stays[i].lot)
			ParkingLoadLot(stays[i].lot, &lot, false);
		values[0] = Int64GetDatum(stays[i].id);
		values[1] = CStringGetTextDatum(stays[i].plate);
		values[2] = Int64GetDatum(stays[i].lot);
		values[3] = TimestampTzGetDatum(stays[i].entered_at);
		values[4] = TimestampTzGetDatum(stays[i].exited_at);
		nulls[4] = stays[i].exited_at == DT_NOBEGIN;
		/* A stay that cannot be priced is listed without an amount. */
		nulls[5] = ParkingDue(&lot, &stays[i], at, &due) != NULL;
		values[5] = Int64GetDatum(due);
		values[6] = CStringGetTextDatum(lot_names[i]);
		values[7] = CStringGetTextDatum(currencies[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PayextSpiFinish();
	return (Datum) 0;
}

/*
 * True when the plate is bound to the owner of the wallet, and was bound to
 * nobody else when the stay began.
 */
static bool
ParkingPlateOwnedByUser(const char *plate, const char *owner_at_entry, const char *user)
{
	Datum		values[1];
	char	   *plate_owner;

	values[0] = CStringGetTextDatum(plate);
	if (PayextExecute(&vehicle_owner_plan, values, NULL, false, 1, SPI_OK_SELECT) == 0)
		return false;
	plate_owner = PayextResultCString(0, 1);
	if (owner_at_entry[0] != '\0' && strcmp(owner_at_entry, plate_owner) != 0)
		return false;
	return strcmp(plate_owner, user) == 0;
}

static bool
ParkingPlateOwnedBy(const char *plate, const char *owner_at_entry, int64 wallet_id)
{
	Datum		values[1];

	values[0] = Int64GetDatum(wallet_id);
	if (PayextExecute(&wallet_owner_plan, values, NULL, false, 1, SPI_OK_SELECT) == 0)
		return false;
	return ParkingPlateOwnedByUser(plate, owner_at_entry, PayextResultCString(0, 1));
}

/* Locks a stay for its payment and reads it; PY408 when there is none. */
static void
ParkingLockStay(int64 stay_id, ParkingStay *stay)
{
	Datum		values[1];

	values[0] = Int64GetDatum(stay_id);
	if (PayextExecute(&lock_stay_plan, values, NULL, false, 1, SPI_OK_SELECT) == 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_UNKNOWN_STAY),
				 errmsg("parking stay " INT64_FORMAT " does not exist", stay_id)));
	ParkingReadStay(0, stay, true);
}

/* What is due for the locked stay now, its lot loaded into lot; PY415. */
static int64
ParkingDueNow(const ParkingStay *stay, ParkingLot *lot)
{
	const char *why;
	int64		due;

	ParkingLoadLot(stay->lot, lot, false);
	why = ParkingDue(lot, stay, GetCurrentTransactionStartTimestamp(), &due);
	if (why != NULL)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_EXIT_UNPRICED),
				 errmsg("parking stay " INT64_FORMAT " cannot be priced", stay->id),
				 errdetail("%s", why),
				 errhint("A person settles it.")));
	return due;
}

/*
 * Before an owner pays an open stay: the shops pay their discounts of the
 * fee so far, so that leaving within the grace owes nothing more.
 */
static void
ParkingApplyValidationsNow(const ParkingLot *lot, ParkingStay *stay)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int64		fee;

	if (stay->state == STAY_OPEN && now > stay->entered_at &&
		!ParkingWithinGrace(lot, stay, now) &&
		ParkingPriceStay(lot, stay->plate, stay->entered_at, now, &fee) == NULL)
		ParkingValidations(lot, stay, stay, now, fee);
}

/* A payment offers exactly what is due (PY409). */
static void
ParkingRequireDue(const ParkingStay *stay, const ParkingLot *lot, int64 amount, int64 due)
{
	if (amount != due)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_STALE_AMOUNT),
				 errmsg("the amount due for parking stay " INT64_FORMAT " has changed", stay->id),
				 errdetail("%s is due now; the payment offers %s.",
						   PayextFormatAmount(due, lot->currency),
						   PayextFormatAmount(amount, lot->currency)),
				 errhint("Ask payext.parking_service_info() again and pay what it shows.")));
}

/* pay_parking(stay bigint, wallet bigint, amount bigint) RETURNS bigint */
PG_FUNCTION_INFO_V1(payext_pay_parking);
Datum
payext_pay_parking(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"stay", "wallet", "amount"};
	int64		amount;
	ParkingStay stay;
	ParkingLot	lot;
	LedgerAccount wallet;
	Datum		values[3];
	int64		due;
	int64		transfer_id;

	PayextRequireArgs(fcinfo, 3, names);
	amount = PayextArgAmount(fcinfo, 2, "amount");

	PayextSpiConnect();
	ParkingLockStay(PG_GETARG_INT64(0), &stay);
	LedgerReadAccount(PG_GETARG_INT64(1), &wallet);
	LedgerRequireKind(&wallet, LEDGER_WALLET, "account a parking fee is paid from");

	/*
	 * Only the vehicle's owner pays from a wallet; an unbound plate cannot
	 * be.
	 */
	if (!ParkingPlateOwnedBy(stay.plate, stay.owner_at_entry, wallet.id))
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_NOT_OWNERS_VEHICLE),
				 errmsg("plate %s is not bound to the owner of wallet " INT64_FORMAT,
						stay.plate, wallet.id),
				 errhint("A stay is paid from a wallet of the user the vehicle is bound to.")));

	/*
	 * The shops pay first, then what is left is due: a shop that cannot pay
	 * now leaves more due than a quote that counted it (PY409).
	 */
	ParkingLoadLot(stay.lot, &lot, false);
	(void) ParkingLockPayers(&lot, &stay, wallet.id);
	ParkingApplyValidationsNow(&lot, &stay);
	due = ParkingDueNow(&stay, &lot);
	if (due == 0)
	{
		/* A retry of the payment that settled it answers with its transfer. */
		values[0] = Int64GetDatum(stay.id);
		values[1] = Int64GetDatum(wallet.id);
		values[2] = Int64GetDatum(amount);
		if (PayextExecute(&find_payment_replay_plan, values, NULL, false, 1, SPI_OK_SELECT) == 1)
		{
			transfer_id = DatumGetInt64(PayextResultDatum(0, 1));
			PayextSpiFinish();
			PG_RETURN_INT64(transfer_id);
		}
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_NOTHING_DUE),
				 errmsg("nothing is due for parking stay " INT64_FORMAT, stay.id)));
	}
	ParkingRequireDue(&stay, &lot, amount, due);
	transfer_id = ParkingTransfer(&lot, &stay, wallet.id, amount, "manual", false);
	PayextSpiFinish();
	PG_RETURN_INT64(transfer_id);
}

/*
 * The merchant's validation under `ref`: its id when it is this one (the
 * same stay, kind and value), PY419 when it is another, 0 when none.
 */
static int64
ParkingFindValidation(int64 shop, const char *ref, int64 stay, const char *kind,
					  int64 value)
{
	Datum		values[2];
	int64		id;

	values[0] = Int64GetDatum(shop);
	values[1] = CStringGetTextDatum(ref);
	if (PayextExecute(&find_validation_plan, values, NULL, false, 1, SPI_OK_SELECT) == 0)
		return 0;
	id = DatumGetInt64(PayextResultDatum(0, 1));
	if (DatumGetInt64(PayextResultDatum(0, 2)) != stay ||
		strcmp(PayextResultCString(0, 3), kind) != 0 ||
		DatumGetInt64(PayextResultDatum(0, 4)) != value)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_VALIDATION_CONFLICT),
				 errmsg("validation reference \"%s\" was already used for another validation", ref),
				 errdetail("Validation " INT64_FORMAT " of the merchant was made under it.", id),
				 errhint("A retry repeats the stay, kind and value; a new validation needs a new reference.")));
	return id;
}

/*
 * validate_parking(stay bigint, merchant bigint, kind text, value bigint,
 *					validation_ref text) RETURNS bigint: a shop pays part of
 * its customer's stay.  The discount is paid by the shop to the operator
 * when the stay is paid: at once for an exited stay, else when the owner
 * pays before leaving or at the exit, from the fee then (the fee a
 * 'percent', 'minutes' or 'free' validation is of is known only then).
 * Refused now when the shop's balance does not cover the discount as the
 * stay stands; one that the shop cannot pay when it comes due is
 * 'unfunded' and the owner pays all.  Once per shop and stay; idempotent
 * on (merchant, validation_ref).  Returns the validation's id.
 */
PG_FUNCTION_INFO_V1(payext_validate_parking);
Datum
payext_validate_parking(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"stay", "merchant", "kind", "value", "validation_ref"};
	char	   *kind_name;
	int			found;
	ParkingValidationKind kind;
	int64		value;
	char	   *ref;
	ParkingStay stay;
	ParkingLot	lot;
	LedgerAccount shop;
	Datum		values[6];
	int64		id;
	int64		fee = 0;
	int64		estimate = 0;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	PayextRequireArgs(fcinfo, 5, names);
	kind_name = text_to_cstring(PG_GETARG_TEXT_PP(2));
	value = PG_GETARG_INT64(3);
	ref = PayextArgIdentifier(fcinfo, 4, "validation_ref", PAYEXT_MAX_REFERENCE_LEN);
	found = -1;
	for (int i = 0; i < (int) lengthof(validation_kind_names); i++)
		if (strcmp(kind_name, validation_kind_names[i]) == 0)
			found = i;
	if (found < 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_BAD_VALIDATION),
				 errmsg("a validation's kind is amount, minutes, percent or free, not \"%s\"", kind_name)));
	kind = (ParkingValidationKind) found;
	if ((kind == VALIDATION_AMOUNT && value <= 0) ||
		(kind == VALIDATION_MINUTES && (value <= 0 || value > (int64) payext_max_stay_min)) ||
		(kind == VALIDATION_PERCENT && (value <= 0 || value > 100)) ||
		(kind == VALIDATION_FREE && value != 0))
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_BAD_VALIDATION),
				 errmsg("a validation of kind %s cannot have the value " INT64_FORMAT, kind_name, value),
				 errdetail("amount: minor units above 0; minutes: 1 to payext.max_stay; percent: 1 to 100; free: 0.")));

	PayextSpiConnect();
	values[0] = PG_GETARG_DATUM(1);
	PayextExecute(&require_merchant_plan, values, NULL, true, 1, SPI_OK_SELECT);
	LedgerReadAccount(PG_GETARG_INT64(1), &shop);
	LedgerRequireKind(&shop, LEDGER_MERCHANT, "account a validation is paid from");

	/*
	 * The stay's lock puts validations of one stay in turn; a retry then
	 * finds its first attempt (a fresh snapshot after the lock).
	 */
	ParkingLockStay(PG_GETARG_INT64(0), &stay);
	id = ParkingFindValidation(shop.id, ref, stay.id, kind_name, value);
	if (id != 0)
	{
		PayextSpiFinish();
		PG_RETURN_INT64(id);
	}
	ParkingLoadLot(stay.lot, &lot, false);
	if (shop.id == lot.operator_id)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_BAD_VALIDATION),
				 errmsg("the lot's operator does not validate its own lot"),
				 errhint("A validation is a shop's payment to the operator.")));
	if (strcmp(shop.currency, lot.currency) != 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_CURRENCY_MISMATCH),
				 errmsg("account " INT64_FORMAT " holds %s, the lot charges %s", shop.id,
						shop.currency, lot.currency)));
	LedgerCheckActive(&shop);
	values[0] = Int64GetDatum(stay.id);
	values[1] = Int64GetDatum(shop.id);
	if (PayextExecute(&validated_before_plan, values, NULL, false, 1, SPI_OK_SELECT) == 1)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_VALIDATED_BEFORE),
				 errmsg("merchant " INT64_FORMAT " has validated parking stay " INT64_FORMAT " already",
						shop.id, stay.id),
				 errdetail("Validation " INT64_FORMAT " is its one validation of the stay.",
						   DatumGetInt64(PayextResultDatum(0, 1)))));

	/* What the validation would take off the stay as it stands now. */
	if (stay.state == STAY_EXITED && stay.fee > stay.paid)
		fee = stay.fee;
	else if (stay.state == STAY_OPEN)
	{
		if (now > stay.entered_at &&
			ParkingPriceStay(&lot, stay.plate, stay.entered_at, now, &fee) != NULL)
			fee = 0;
		fee = Max(fee, stay.paid);
	}
	else
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_NOTHING_DUE),
				 errmsg("nothing is due for parking stay " INT64_FORMAT, stay.id),
				 errdetail("A stay is validated while it is open, or exited and not paid in full.")));
	if (fee > stay.paid)
	{
		TimestampTz until = stay.state == STAY_EXITED ? stay.exited_at : now;

		estimate = Max(Min(ParkingValidationDiscount(&lot, &stay, until, fee, kind, value),
						   fee - stay.paid - ParkingValidations(&lot, &stay, NULL, until, fee)), 0);
	}
	/* (The refusal says nothing of the stay's fee: the stay is a customer's.) */
	if (estimate > 0 && LedgerWholeBalance(shop.id) < estimate)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_INSUFFICIENT_FUNDS),
				 errmsg("insufficient funds in account " INT64_FORMAT " for the validation", shop.id),
				 errdetail("The merchant's balance does not cover what the validation takes off the stay as it stands now.")));

	id = PayextNextId("parking_validation_id_seq");
	values[0] = Int64GetDatum(id);
	values[1] = Int64GetDatum(stay.id);
	values[2] = Int64GetDatum(shop.id);
	values[3] = CStringGetTextDatum(validation_kind_names[kind]);
	values[4] = Int64GetDatum(value);
	values[5] = CStringGetTextDatum(ref);
	if (PayextExecute(&insert_validation_ref_plan, values, NULL, false, 0, SPI_OK_INSERT) == 0)
	{
		/* The reference came to another stay's validation meanwhile. */
		id = ParkingFindValidation(shop.id, ref, stay.id, kind_name, value);
		PayextSpiFinish();
		PG_RETURN_INT64(id);
	}
	/* An exited stay's fee is known: the shop pays now. */
	if (stay.state == STAY_EXITED)
	{
		(void) ParkingLockPayers(&lot, &stay, 0);
		ParkingValidations(&lot, &stay, &stay, stay.exited_at, stay.fee);
	}
	PayextSpiFinish();
	PG_RETURN_INT64(id);
}

/*
 * parking_receive(stay bigint, amount bigint, payer text) RETURNS bigint:
 * a parking saga's second leg (src/sql/saga.sql, saga_receive): pays the
 * stay's operator from this partition's clearing account, which holds the
 * money a saga took from the payer's wallet on another partition, after
 * the same checks as pay_parking: the plate is the payer's (PY411),
 * something is due (PY410), exactly that (PY409).  Granted to nobody.
 */
PG_FUNCTION_INFO_V1(payext_parking_receive);
Datum
payext_parking_receive(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"stay", "amount", "payer"};
	int64		amount;
	char	   *payer;
	ParkingStay stay;
	ParkingLot	lot;
	int64		due;
	int64		transfer_id;

	PayextRequireArgs(fcinfo, 3, names);
	amount = PayextArgAmount(fcinfo, 1, "amount");
	payer = text_to_cstring(PG_GETARG_TEXT_PP(2));

	PayextSpiConnect();
	ParkingLockStay(PG_GETARG_INT64(0), &stay);
	if (!ParkingPlateOwnedByUser(stay.plate, stay.owner_at_entry, payer))
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_NOT_OWNERS_VEHICLE),
				 errmsg("plate %s is not bound to the payer", stay.plate),
				 errhint("A stay is paid from a wallet of the user the vehicle is bound to.")));
	ParkingLoadLot(stay.lot, &lot, false);
	(void) ParkingLockPayers(&lot, &stay, 0);
	ParkingApplyValidationsNow(&lot, &stay);
	due = ParkingDueNow(&stay, &lot);
	if (due == 0)
		ereport(ERROR,
				(errcode(PAYEXT_ERRCODE_NOTHING_DUE),
				 errmsg("nothing is due for parking stay " INT64_FORMAT, stay.id)));
	ParkingRequireDue(&stay, &lot, amount, due);
	transfer_id = ParkingTransferFrom(&lot, &stay, LedgerClearingAccount(lot.currency),
									  amount, "saga", false, payer);
	PayextSpiFinish();
	PG_RETURN_INT64(transfer_id);
}
