/*
 * test/load/driver.c -- the load driver of payext's load and crash tests.
 *
 * Forks N clients, each with its own libpq connection.  For T seconds each
 * picks, at random, one of the money-moving calls a real platform makes:
 *
 *   top_up            money in to a wallet (sometimes retried: same id back)
 *   charge            a payment code and a merchant's charge, as one
 *                     statement, as one transaction, or as two (the app asks
 *                     for the code, the till charges it later); sometimes a
 *                     capped code is first charged above its cap (PY207, the
 *                     code must survive) and then at the cap
 *   charge_retry      the same charge again: the same transfer id back
 *   code_reuse        a code this client saw paid, for another order: PY206
 *   charge_many       2 to 20 codes (one statement), then one merchant's
 *                     charge_many() of them, each item checked against what
 *                     charge() would answer; sometimes with items refused on
 *                     purpose (above a capped code's cap, PY207, and the same
 *                     code later at its cap; a code paid before, PY206; an
 *                     earlier item's code for another order); sometimes the
 *                     whole batch again (charge_many_retry): charged items
 *                     answer their transfers
 *   refund            part of a charge this client saw acknowledged
 *   refund_retry      the same refund again: the same transfer id back
 *   over_refund       more than what is left of a charge: PY210
 *   withdraw          a merchant's payout or a user's cash-out (PY104 when
 *                     short; sometimes retried: same id back)
 *   parking (auto)    a bound car with auto-pay enters and leaves a lot; the
 *                     exit's transaction also reads the automatic payment
 *   parking (manual)  a car without auto-pay enters and leaves; the app reads
 *                     parking_service_info() and pays what it shows with
 *                     pay_parking() (sometimes retried: same id back)
 *   holds             about one call in eight: authorize() with a fresh
 *                     code (one statement, or the code first), some holds
 *                     expiring after 1 to 3 seconds, some retried (the same
 *                     hold back); captures, partial (final => false) and
 *                     final; voids; captures retried with their capture_ref
 *                     (the same transfer back); and refusals on purpose:
 *                     a capture above the remainder (PY605), of a voided
 *                     (PY603), captured (PY604) or expired (PY602) hold, of
 *                     another merchant's hold (PY601), a capture_ref again
 *                     for another amount (PY607), the order held again at
 *                     another amount (PY208) or charged (PY608).  The
 *                     client models each of its holds (remainder, state,
 *                     the window in which it expires) and checks every
 *                     answer against it: a capture within the remainder of
 *                     a live hold must go through, whatever else the
 *                     wallet paid meanwhile.
 *
 * Every call runs under default_transaction_isolation (-i); 40001 and
 * 40P01 make the client run the whole transaction again, at most -r times.
 * A refusal in SQLSTATE class PY is an answer: it is counted by call and
 * code.  Any other error fails the run, except, with -C (crash mode), the
 * loss of the connection: that client then stops.
 *
 * What the clients record.  Every call the server acknowledged (the
 * statement, or the COMMIT of its transaction, succeeded) appends one line
 * to the client's file <dir>/<tag>-<n>.acks, written only after
 * PQresultStatus said so.  Tab-separated, COPY text format, \N for none:
 *
 *   client call kind ref transfer_id wallet merchant amount code order_ref
 *   stay lot at hold
 *
 *   kind      the journal's kind of the transfer the call returned
 *             (top_up, withdraw, charge, refund, parking, capture); \N for
 *             the camera events, which move money only through auto-pay,
 *             and for authorize and void_hold, which move none
 *   ref       external_ref (top_up, withdraw), order_ref (charge,
 *             authorize, void), refund_ref (refund), capture_ref (capture),
 *             the plate (camera events, parking)
 *   amount    what moved; the hold's amount (authorize); what a void
 *             released
 *   order_ref a capture's: its hold's order
 *   at        the camera event's time, in seconds since 1970
 *   hold      the hold's id (authorize, captures, void)
 *
 * Holds: calls authorize, authorize_retry (\N kind and transfer), capture,
 * capture_final (final => true), capture_retry (kind capture), void (the
 * amount released), and capture_refused: a capture refused on purpose for
 * its hold (PY602-PY605; its capture_ref must have moved nothing).
 *
 * A charged item of a batch is logged as a charge (call charge_many,
 * charge_many_retry or charge_many_replay).  An item refused for its code
 * (PY206, PY207), whose order must never be paid, is logged with call
 * charge_many_refused, kind and transfer \N.
 *
 * test/load/verify.sql loads these lines and proves from them that nothing
 * acknowledged was lost and nothing was paid twice.
 *
 * Crash mode (-C).  A call whose connection died before its answer may or
 * may not have happened.  The client writes it to <dir>/<tag>-<n>.pending
 * (same format, no transfer id).  The next run given that file with -R
 * first sends each such call again, with the same references, as a client
 * would after reconnecting: it must find the first attempt's transfer, or
 * do it now, never both.  Those answers are logged with call <call>_replay.
 * A batch in flight leaves a line per item that may have been charged,
 * consecutive; they are sent again as one batch, and an item whose code
 * did not survive the crash is then charged with a fresh code under its
 * order_ref (replay_batch()).
 *
 * Usage: driver [-d conninfo] [-c clients] [-T seconds] [-i isolation]
 *               [-t tag] [-o dir] [-r tries] [-s seed] [-C] [-R pending] [-v]
 *
 *   -d  libpq connection string (default: the PG* environment)
 *   -c  clients (8), -T  seconds (10), -r  tries per transaction (20)
 *   -i  read committed | repeatable read | serializable
 *   -t  tag: names the logs and prefixes every reference, so runs against
 *       one database never reuse one; -o  the logs' directory
 *   -s  seed of the clients' random choices (printed at start)
 *   -C  crash mode, -R  calls to replay first (crash mode), -v  print
 *       every conflict's message
 *
 * Exit status: 0 when every client ran to its end (or to the lost
 * connection, in crash mode) and saw nothing that breaks the contract; 1
 * when a client failed or saw a broken promise (reported on stderr); 2 on
 * bad usage.
 */
#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

/* ------------------------------------------------------------------ */
/* Options and the population the clients work on                      */
/* ------------------------------------------------------------------ */

static const char *opt_conninfo = "";
static int	opt_clients = 8;
static int	opt_seconds = 10;
static const char *opt_isolation = "read committed";
static const char *opt_tag = "load";
static const char *opt_dir = ".";
static int	opt_tries = 20;
static uint64_t opt_seed;
static bool opt_crash;
static const char *opt_replay;
static bool opt_verbose;

/*
 * Stays are dated in the past: this much before the start at most, within
 * payext.max_stay (30 days by default), beyond which cameras' times are
 * refused.
 */
#define PARKING_HISTORY_S (25 * 86400)
/* A stay's length: 20 to 119 minutes; then 2 minutes until the next entry. */
#define STAY_MIN_S (20 * 60)
#define STAY_SPREAD_MIN 100
#define STAY_GAP_S 120

/* One (lot, plate) a client drives: the time of its next entry. */
typedef struct Spot
{
	int64_t		lot;
	int64_t		operator_id;
	char		plate[32];
	char		owner[64];
	int64_t		wallet;			/* the owner's wallet */
	bool		auto_pay;
	int64_t		cursor;			/* seconds since 1970 */
} Spot;

static int64_t *wallets;
static int	n_wallets;
static int64_t *merchants;
static int	n_merchants;
static Spot *spots;				/* every spot; spot_client[i] drives spots[i] */
static int *spot_client;
static int	n_spots;
static int64_t start_epoch;		/* the server's now() at start */

/* ------------------------------------------------------------------ */
/* Counters, shared between the clients and the parent                 */
/* ------------------------------------------------------------------ */

#define MAX_COUNTERS 192

typedef struct Counter
{
	char		key[48];		/* "ack charge", "refused charge PY104", ... */
	long		n;
} Counter;

typedef struct Stats
{
	Counter		c[MAX_COUNTERS];
	int			used;
	int			failed;			/* the client stopped on an error */
	int			lost;			/* crash mode: the connection died */
} Stats;

static Stats *all_stats;		/* opt_clients + 1 (the replays) */

/* ------------------------------------------------------------------ */
/* Memory of what this client saw acknowledged (bounded rings)         */
/* ------------------------------------------------------------------ */

#define RING 4096
/* A reference: "<tag>-<client>-<what>-<sequence>", well within payext's 128. */
#define REF_LEN 96

typedef struct Charge
{
	int64_t		tid;
	int64_t		wallet;
	int64_t		merchant;
	int64_t		amount;
	int64_t		refunded;		/* by this client, acknowledged */
	char		order_ref[REF_LEN];
	char		code[24];
} Charge;

typedef struct Refund
{
	int64_t		tid;
	int64_t		wallet;
	int64_t		merchant;
	int64_t		amount;
	char		refund_ref[REF_LEN];
	char		order_ref[REF_LEN];
} Refund;

typedef struct External			/* a top-up or a withdrawal */
{
	bool		top_up;
	int64_t		tid;
	int64_t		account;
	bool		merchant;		/* withdrawal from a merchant account */
	int64_t		amount;
	char		ref[REF_LEN];
} External;

/* A hold this client authorized, as far as it knows (it alone acts on it). */
typedef enum HoldState
{
	HOLD_OPEN,
	HOLD_CAPTURED,				/* in full, or by a final capture */
	HOLD_VOIDED
} HoldState;

typedef struct Hold
{
	int64_t		id;
	int64_t		wallet;
	int64_t		merchant;
	int64_t		amount;
	int64_t		captured;		/* acknowledged captures */
	HoldState	state;
	bool		expired_seen;	/* the server said PY602 */
	int			expires_s;		/* expires_in, in seconds */
	/* the server's time of its creation lies in [made_from, made_until] */
	double		made_from;
	double		made_until;
	char		order_ref[REF_LEN];
	char		code[24];
} Hold;

/* An acknowledged capture: a retry must answer its transfer. */
typedef struct Capture
{
	int64_t		tid;
	Hold	   *hold;			/* NULL once the ring reused the hold's slot */
	int64_t		hold_id;
	int64_t		wallet;
	int64_t		merchant;
	int64_t		amount;
	bool		final;
	char		ref[REF_LEN];
	char		order_ref[REF_LEN];
} Capture;

#define HOLD_RING 1024

typedef enum Outcome
{
	OK,							/* acknowledged */
	REFUSED,					/* a PY refusal: an answer */
	CONFLICT,					/* 40001/40P01 (after the last try: gave up) */
	LOST						/* crash mode: the connection died */
} Outcome;

typedef struct Client
{
	int			id;				/* 0..N-1; N for the replays */
	char		name[40];		/* tag-id, the log's client column */
	PGconn	   *conn;
	uint64_t	rng;
	FILE	   *acks;
	FILE	   *pending;
	Stats	   *stats;
	long		seq;			/* makes references unique */
	char		state[6];		/* SQLSTATE of the last failure */
	char		message[512];
	Charge		charges[RING];
	long		n_charges;
	Refund		refunds[RING];
	long		n_refunds;
	External	externals[RING];
	long		n_externals;
	Hold		holds[HOLD_RING];
	long		n_holds;
	Capture		captures[HOLD_RING];
	long		n_captures;
	int		   *my_spots;
	int			n_my_spots;
} Client;

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static uint64_t
rnd(Client *c)
{
	/* xorshift64* */
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * UINT64_C(2685821657736338717);
}

/* A number in [lo, hi]. */
static int64_t
between(Client *c, int64_t lo, int64_t hi)
{
	return lo + (int64_t) (rnd(c) % (uint64_t) (hi - lo + 1));
}

static bool
chance(Client *c, int percent)
{
	return (int) (rnd(c) % 100) < percent;
}

static void
count_key(Client *c, const char *key, long n)
{
	Stats	   *s = c->stats;

	for (int i = 0; i < s->used; i++)
		if (strcmp(s->c[i].key, key) == 0)
		{
			s->c[i].n += n;
			return;
		}
	if (s->used == MAX_COUNTERS)
		return;
	snprintf(s->c[s->used].key, sizeof(s->c[s->used].key), "%s", key);
	s->c[s->used].n = n;
	s->used++;
}

static void
count(Client *c, const char *fmt,...)
{
	char		key[48];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(key, sizeof(key), fmt, ap);
	va_end(ap);
	count_key(c, key, 1);
}

static void
fail(Client *c, const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "driver: client %s: ", c->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	c->stats->failed = 1;
	if (c->acks)
		fclose(c->acks);
	if (c->pending)
		fclose(c->pending);
	exit(1);
}

/* A broken promise seen by the client: reported, counted, the run fails. */
static void
unexpected(Client *c, const char *call, const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "driver: client %s: UNEXPECTED (%s): ", c->name, call);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	count(c, "unexpected %s", call);
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
i64(char *buf, int64_t v)
{
	snprintf(buf, 24, "%" PRId64, v);
}

static int64_t
parse_i64(const char *s)
{
	return strtoll(s, NULL, 10);
}

static void
new_ref(Client *c, char *buf, size_t size, const char *what)
{
	snprintf(buf, size, "%s-%s-%ld", c->name, what, ++c->seq);
}

/* ------------------------------------------------------------------ */
/* The acknowledgement log                                             */
/* ------------------------------------------------------------------ */

/* One line of the log; 0 and NULL are written as \N. */
typedef struct Ack
{
	const char *call;
	const char *kind;
	const char *ref;
	int64_t		tid;
	int64_t		wallet;
	int64_t		merchant;
	int64_t		amount;
	const char *code;
	const char *order_ref;
	int64_t		stay;
	int64_t		lot;
	int64_t		at;
	int64_t		hold;
} Ack;

static void
put_text(FILE *f, const char *s)
{
	fputs(s && *s ? s : "\\N", f);
}

static void
put_num(FILE *f, int64_t v)
{
	if (v == 0)
		fputs("\\N", f);
	else
		fprintf(f, "%" PRId64, v);
}

static void
write_line(Client *c, FILE *f, const Ack *a)
{
	put_text(f, c->name);
	fputc('\t', f);
	put_text(f, a->call);
	fputc('\t', f);
	put_text(f, a->kind);
	fputc('\t', f);
	put_text(f, a->ref);
	fputc('\t', f);
	put_num(f, a->tid);
	fputc('\t', f);
	put_num(f, a->wallet);
	fputc('\t', f);
	put_num(f, a->merchant);
	fputc('\t', f);
	put_num(f, a->amount);
	fputc('\t', f);
	put_text(f, a->code);
	fputc('\t', f);
	put_text(f, a->order_ref);
	fputc('\t', f);
	put_num(f, a->stay);
	fputc('\t', f);
	put_num(f, a->lot);
	fputc('\t', f);
	put_num(f, a->at);
	fputc('\t', f);
	put_num(f, a->hold);
	fputc('\n', f);
	/* The driver is not what gets killed: the page cache keeps the line. */
	if (fflush(f) != 0)
		fail(c, "cannot write its log: %s", strerror(errno));
}

/* Called only once the call (or its COMMIT) came back successful. */
static void
log_ack(Client *c, const Ack *a)
{
	write_line(c, c->acks, a);
	count(c, "ack %s", a->call);
}

/* Crash mode: a call that may or may not have happened, for a replay. */
static void
log_pending(Client *c, const Ack *a)
{
	if (c->pending)
		write_line(c, c->pending, a);
	count(c, "in flight at the crash %s", a->call);
}

/* ------------------------------------------------------------------ */
/* Talking to the server                                               */
/* ------------------------------------------------------------------ */

static bool
connection_lost(Client *c, const char *state)
{
	return PQstatus(c->conn) == CONNECTION_BAD || state == NULL ||
		strncmp(state, "08", 2) == 0 || /* connection exception */
		strncmp(state, "57P", 3) == 0;	/* shutdown, crash, cannot connect */
}

/*
 * Runs one statement.  OK leaves the result in *res (when res is given);
 * a PY refusal, a conflict and, in crash mode, a lost connection are
 * returned; anything else ends the client with the server's message.
 */
static Outcome
run(Client *c, PGresult **res, const char *sql, int n, const char *const *values)
{
	PGresult   *r = PQexecParams(c->conn, sql, n, NULL, values, NULL, NULL, 0);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	const char *state;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
	{
		if (res)
			*res = r;
		else
			PQclear(r);
		return OK;
	}
	state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	snprintf(c->state, sizeof(c->state), "%s", state ? state : "");
	snprintf(c->message, sizeof(c->message), "%s",
			 r ? PQresultErrorMessage(r) : PQerrorMessage(c->conn));
	c->message[strcspn(c->message, "\n")] = '\0';
	if (r)
		PQclear(r);
	if (connection_lost(c, state))
	{
		if (opt_crash)
			return LOST;
		fail(c, "lost its connection (%s) in: %s", c->message, sql);
	}
	if (strcmp(c->state, "40001") == 0 || strcmp(c->state, "40P01") == 0)
		return CONFLICT;
	if (strncmp(c->state, "PY", 2) == 0)
		return REFUSED;
	fail(c, "%s: %s in: %s", c->state, c->message, sql);
	return LOST;				/* not reached */
}

static Outcome
begin(Client *c)
{
	return run(c, NULL, "BEGIN", 0, NULL);
}

/* COMMIT; OK only when the server says COMMIT (not ROLLBACK). */
static Outcome
commit(Client *c)
{
	PGresult   *r;
	Outcome		o = run(c, &r, "COMMIT", 0, NULL);

	if (o != OK)
		return o;
	if (strcmp(PQcmdStatus(r), "COMMIT") != 0)
		fail(c, "COMMIT answered %s", PQcmdStatus(r));
	PQclear(r);
	return OK;
}

/* After a failed statement inside BEGIN: roll back, pass the outcome on. */
static Outcome
abandon(Client *c, Outcome o)
{
	if (o != LOST)
		PQclear(PQexec(c->conn, "ROLLBACK"));
	return o;
}

/* The first column of the first row: a number, or 0 for NULL / no row. */
static int64_t
first_i64(PGresult *r)
{
	if (PQntuples(r) == 0 || PQgetisnull(r, 0, 0))
		return 0;
	return parse_i64(PQgetvalue(r, 0, 0));
}

/*
 * Before running a transaction again after a conflict: a random pause of
 * up to 1, 2, 4, ... 64 ms, as clients do, so that the transactions that
 * met do not meet again at once.
 */
static void
backoff(Client *c, int try)
{
	int			cap_ms = 1 << (try < 7 ? try - 1 : 6);
	struct timespec ts = {0, (long) between(c, 0, cap_ms * 1000 - 1) * 1000};

	nanosleep(&ts, NULL);
}

typedef Outcome (*Attempt) (Client *c, void *arg);

/*
 * Runs an attempt (one whole transaction) until it is not in conflict, at
 * most opt_tries times; counts retries, refusals and give-ups.
 */
static Outcome
retrying(Client *c, const char *call, Attempt fn, void *arg)
{
	for (int try = 1;; try++)
	{
		Outcome		o = fn(c, arg);

		if (o == CONFLICT)
		{
			if (opt_verbose)
				fprintf(stderr, "driver: client %s: %s, try %d: %s\n", c->name, call, try, c->message);
			if (try < opt_tries)
			{
				count(c, "retry %s", c->state);
				backoff(c, try);
				continue;
			}
			count(c, "gave up %s", call);
		}
		else if (o == REFUSED)
			count(c, "refused %s %s", call, c->state);
		return o;
	}
}

/* One statement in a transaction of its own. */
typedef struct Stmt
{
	const char *sql;
	int			n;
	const char *v[6];
	PGresult   *res;
} Stmt;

static Outcome
attempt_stmt(Client *c, void *arg)
{
	Stmt	   *s = arg;

	return run(c, &s->res, s->sql, s->n, s->v);
}

/* A statement under retries; on OK, *out gets the first column. */
static Outcome
call1(Client *c, const char *call, Stmt *s, int64_t *out)
{
	Outcome		o = retrying(c, call, attempt_stmt, s);

	if (o == OK)
	{
		if (out)
			*out = first_i64(s->res);
		PQclear(s->res);
	}
	return o;
}

/* ------------------------------------------------------------------ */
/* Top-ups and withdrawals                                             */
/* ------------------------------------------------------------------ */

static Outcome
external(Client *c, const char *call, bool top_up, int64_t account, bool merchant,
		 int64_t amount, const char *ref, int64_t expect_tid)
{
	char		a[24],
				m[24];
	Stmt		s = {
		.sql = (top_up ? "SELECT payext.top_up($1, $2, $3)"
				: "SELECT payext.withdraw($1, $2, $3)"),
		.n = 3,
		.v = {a, m, ref},
		.res = NULL,
	};
	int64_t		tid;
	Ack			ack = {
		.call = call,
		.kind = top_up ? "top_up" : "withdraw",
		.ref = ref,
		.wallet = merchant ? 0 : account,
		.merchant = merchant ? account : 0,
		.amount = amount,
	};
	Outcome		o;

	i64(a, account);
	i64(m, amount);
	o = call1(c, call, &s, &tid);
	if (o == OK)
	{
		ack.tid = tid;
		log_ack(c, &ack);
		if (expect_tid && tid != expect_tid)
			unexpected(c, call, "%s answered transfer %" PRId64 ", the first answer was %" PRId64,
					   ref, tid, expect_tid);
		if (!expect_tid)
		{
			External   *e = &c->externals[c->n_externals++ % RING];

			e->top_up = top_up;
			e->tid = tid;
			e->account = account;
			e->merchant = merchant;
			e->amount = amount;
			snprintf(e->ref, sizeof(e->ref), "%s", ref);
		}
	}
	else if (o == REFUSED && expect_tid)
		unexpected(c, call, "a retry of %s was refused: %s %s", ref, c->state, c->message);
	else if (o == LOST)
		log_pending(c, &ack);
	return o;
}

static Outcome
do_top_up(Client *c)
{
	char		ref[REF_LEN];

	new_ref(c, ref, sizeof(ref), "tu");
	return external(c, "top_up", true, wallets[between(c, 0, n_wallets - 1)], false,
					between(c, 1, 8000), ref, 0);
}

static Outcome
do_withdraw(Client *c)
{
	char		ref[REF_LEN];

	new_ref(c, ref, sizeof(ref), "wd");
	/* Mostly a merchant's payout; sometimes a user's cash-out. */
	if (chance(c, 75))
		return external(c, "withdraw", false, merchants[between(c, 0, n_merchants - 1)], true,
						between(c, 1, 6000), ref, 0);
	return external(c, "withdraw", false, wallets[between(c, 0, n_wallets - 1)], false,
					between(c, 1, 2000), ref, 0);
}

/* The same request again: the first answer's transfer id must come back. */
static Outcome
do_external_retry(Client *c, bool top_up)
{
	for (int i = 0; i < 8 && c->n_externals > 0; i++)
	{
		long		n = c->n_externals < RING ? c->n_externals : RING;
		External   *e = &c->externals[between(c, 0, n - 1)];

		if (e->top_up == top_up)
			return external(c, top_up ? "top_up_retry" : "withdraw_retry", top_up, e->account,
							e->merchant, e->amount, e->ref, e->tid);
	}
	return top_up ? do_top_up(c) : do_withdraw(c);
}

/* ------------------------------------------------------------------ */
/* Payment codes and charges                                           */
/* ------------------------------------------------------------------ */

typedef struct ChargeOp
{
	int			mode;			/* 0 one statement, 1 one transaction */
	int64_t		wallet;
	int64_t		merchant;
	int64_t		amount;
	const char *order_ref;
	char		code[24];		/* out (or in, for a code requested before) */
	int64_t		tid;			/* out */
} ChargeOp;

static void
copy_code(ChargeOp *op, PGresult *r, int column)
{
	snprintf(op->code, sizeof(op->code), "%s", PQgetvalue(r, 0, column));
}

/* A new code and its charge: one statement (mode 0) or one transaction (1). */
static Outcome
attempt_code_and_charge(Client *c, void *arg)
{
	ChargeOp   *op = arg;
	char		w[24],
				m[24],
				amt[24];
	PGresult   *r;
	Outcome		o;

	i64(w, op->wallet);
	i64(m, op->merchant);
	i64(amt, op->amount);
	op->code[0] = '\0';
	if (op->mode == 0)
	{
		const char *v[] = {m, amt, op->order_ref, w};

		o = run(c, &r, "SELECT code, payext.charge($1, code, $2, $3)"
				"  FROM payext.request_payment($4) AS code", 4, v);
		if (o != OK)
			return o;
		copy_code(op, r, 0);
		op->tid = parse_i64(PQgetvalue(r, 0, 1));
		PQclear(r);
		return OK;
	}
	if ((o = begin(c)) != OK)
		return o;
	{
		const char *v[] = {w};

		if ((o = run(c, &r, "SELECT payext.request_payment($1)", 1, v)) != OK)
			return abandon(c, o);
		copy_code(op, r, 0);
		PQclear(r);
	}
	{
		const char *v[] = {m, op->code, amt, op->order_ref};

		if ((o = run(c, &r, "SELECT payext.charge($1, $2, $3, $4)", 4, v)) != OK)
			return abandon(c, o);
		op->tid = first_i64(r);
		PQclear(r);
	}
	return commit(c);
}

/* A charge of a code the client holds (op->code). */
static Outcome
attempt_charge(Client *c, void *arg)
{
	ChargeOp   *op = arg;
	char		m[24],
				amt[24];
	const char *v[] = {m, op->code, amt, op->order_ref};
	PGresult   *r;
	Outcome		o;

	i64(m, op->merchant);
	i64(amt, op->amount);
	o = run(c, &r, "SELECT payext.charge($1, $2, $3, $4)", 4, v);
	if (o == OK)
	{
		op->tid = first_i64(r);
		PQclear(r);
	}
	return o;
}

static void
remember_charge(Client *c, const ChargeOp *op)
{
	Charge	   *ch = &c->charges[c->n_charges++ % RING];

	ch->tid = op->tid;
	ch->wallet = op->wallet;
	ch->merchant = op->merchant;
	ch->amount = op->amount;
	ch->refunded = 0;
	snprintf(ch->order_ref, sizeof(ch->order_ref), "%s", op->order_ref);
	snprintf(ch->code, sizeof(ch->code), "%s", op->code);
}

static void
charge_ack(const ChargeOp *op, Ack *ack, const char *call)
{
	Ack			charge = {
		.call = call,
		.kind = "charge",
		.ref = op->order_ref,
		.tid = op->tid,
		.wallet = op->wallet,
		.merchant = op->merchant,
		.amount = op->amount,
		.code = op->code,
		.order_ref = op->order_ref,
	};

	*ack = charge;
}

static Outcome
do_charge(Client *c)
{
	char		order_ref[REF_LEN];
	ChargeOp	op = {
		.wallet = wallets[between(c, 0, n_wallets - 1)],
		.merchant = merchants[between(c, 0, n_merchants - 1)],
		.amount = between(c, 1, 3000),
		.order_ref = order_ref,
	};
	Ack			ack;
	Outcome		o;
	int			how = (int) between(c, 0, 2);

	new_ref(c, order_ref, sizeof(order_ref), "or");
	if (how < 2)
	{
		op.mode = how;
		o = retrying(c, "charge", attempt_code_and_charge, &op);
	}
	else
	{
		/* The app asks for a code (sometimes capped), the till charges it. */
		char		w[24],
					cap[24];
		bool		capped = op.amount >= 2 && chance(c, 20);
		Stmt		s = {
			.sql = (capped ? "SELECT payext.request_payment($1, max_amount => $2)"
					: "SELECT payext.request_payment($1)"),
			.n = capped ? 2 : 1,
			.v = {w, cap},
			.res = NULL,
		};

		i64(w, op.wallet);
		i64(cap, op.amount - 1);
		o = retrying(c, "request_payment", attempt_stmt, &s);
		if (o != OK)
			return o;
		snprintf(op.code, sizeof(op.code), "%s", PQgetvalue(s.res, 0, 0));
		PQclear(s.res);
		if (capped)
		{
			/* Above the cap: PY207, and the code must stay usable. */
			o = retrying(c, "charge_over_cap", attempt_charge, &op);
			if (o == OK)
			{
				charge_ack(&op, &ack, "charge_over_cap");
				log_ack(c, &ack);
				unexpected(c, "charge_over_cap", "order %s charged %" PRId64 " on a code capped at %" PRId64,
						   order_ref, op.amount, op.amount - 1);
				return o;
			}
			if (o == REFUSED && strcmp(c->state, "PY207") != 0)
				unexpected(c, "charge_over_cap", "refused with %s, not PY207: %s", c->state, c->message);
			if (o != REFUSED)
				return o;		/* gave up or lost: nothing moved */
			op.amount--;
		}
		o = retrying(c, "charge", attempt_charge, &op);
		/* A refused charge burns nothing: the code must still pay at its cap. */
		if (capped && o == REFUSED && strncmp(c->state, "PY2", 3) == 0 &&
			strcmp(c->state, "PY204") != 0)
			unexpected(c, "charge", "code %s, refused once above its cap, was refused at its cap: %s %s",
					   op.code, c->state, c->message);
	}
	charge_ack(&op, &ack, "charge");
	if (o == OK)
	{
		log_ack(c, &ack);
		remember_charge(c, &op);
	}
	else if (o == LOST)
		log_pending(c, &ack);
	return o;
}

/* A charge to make, nothing of it done yet (mode 0, no code, no transfer). */
static ChargeOp
charge_op(int64_t wallet, int64_t merchant, int64_t amount, const char *order_ref)
{
	ChargeOp	op = {
		.wallet = wallet,
		.merchant = merchant,
		.amount = amount,
		.order_ref = order_ref,
	};

	return op;
}

static Charge *
pick_charge(Client *c)
{
	long		n = c->n_charges < RING ? c->n_charges : RING;

	return n == 0 ? NULL : &c->charges[between(c, 0, n - 1)];
}

/* The same charge again (same code, amount, order_ref): the same id back. */
static Outcome
do_charge_retry(Client *c)
{
	Charge	   *ch = pick_charge(c);
	ChargeOp	op;
	Ack			ack;
	Outcome		o;

	if (!ch)
		return do_charge(c);
	op = charge_op(ch->wallet, ch->merchant, ch->amount, ch->order_ref);
	snprintf(op.code, sizeof(op.code), "%s", ch->code);
	o = retrying(c, "charge_retry", attempt_charge, &op);
	charge_ack(&op, &ack, "charge_retry");
	if (o == OK)
	{
		log_ack(c, &ack);
		if (op.tid != ch->tid)
			unexpected(c, "charge_retry", "order %s answered transfer %" PRId64 ", the first answer was %" PRId64,
					   ch->order_ref, op.tid, ch->tid);
	}
	else if (o == REFUSED)
		unexpected(c, "charge_retry", "a retry of order %s was refused: %s %s",
				   ch->order_ref, c->state, c->message);
	else if (o == LOST)
		log_pending(c, &ack);
	return o;
}

/* A code this client saw paid, for a new order: must be refused (PY206). */
static Outcome
do_code_reuse(Client *c)
{
	Charge	   *ch = pick_charge(c);
	char		order_ref[REF_LEN];
	int64_t		merchant;
	ChargeOp	op;
	Ack			ack;
	Outcome		o;

	if (!ch)
		return do_charge(c);
	new_ref(c, order_ref, sizeof(order_ref), "reuse");
	/* The merchant first, then the amount: a seed repeats its run. */
	merchant = merchants[between(c, 0, n_merchants - 1)];
	op = charge_op(ch->wallet, merchant, between(c, 1, 3000), order_ref);
	snprintf(op.code, sizeof(op.code), "%s", ch->code);
	o = retrying(c, "code_reuse", attempt_charge, &op);
	if (o == OK)
	{
		/* Logged: the checker must see a code paid twice. */
		charge_ack(&op, &ack, "code_reuse");
		log_ack(c, &ack);
		unexpected(c, "code_reuse", "code %s, paid by order %s, paid order %s too",
				   ch->code, ch->order_ref, order_ref);
	}
	else if (o == REFUSED && strcmp(c->state, "PY206") != 0)
		unexpected(c, "code_reuse", "refused with %s, not PY206: %s", c->state, c->message);
	return o;
}

/* ------------------------------------------------------------------ */
/* Batches of charges: charge_many()                                   */
/* ------------------------------------------------------------------ */

/*
 * A batch: 2 to BATCH_MAX charges of one merchant in one charge_many()
 * call.  Its codes are issued first, in a statement and transaction of
 * their own (under REPEATABLE READ and SERIALIZABLE a code issued after the
 * batch's snapshot would be a 40001 for the whole call).  Now and then an
 * item is refused on purpose: a capped code charged above its cap (PY207)
 * and, later in the same batch, at its cap (it must pay: a refusal burns
 * nothing); a code this client saw paid (PY206); the code of an earlier
 * item of the batch for another order (PY206 when that item was charged).
 *
 * The client keeps a model of each code (its cap, the item whose order it
 * paid) and checks every item's answer against it, in input order, as
 * charge() would answer one by one: the same transfer for an item charged
 * before, PY206 for a code paid by another order, PY207 above the cap, and
 * otherwise a new transfer or PY104 (the client cannot know the balance).
 */
#define BATCH_MAX 20

#define PAID_NONE (-1)			/* the code paid nothing (as far as known) */
#define PAID_ELSEWHERE (-2)		/* the code paid an order outside the batch */

typedef struct BatchCode
{
	char		code[24];
	int64_t		wallet;
	int64_t		cap;			/* max_amount; 0: none */
	bool		issue;			/* to be issued (again) before the call */
	int			paid_by;		/* the item whose order it paid, or PAID_* */
} BatchCode;

typedef struct BatchItem
{
	int			code;			/* index into Batch.codes */
	int64_t		amount;
	char		order_ref[REF_LEN];
	int64_t		tid;			/* the transfer it was charged with; 0: none */
	/* the last call's answer */
	int64_t		got_tid;
	char		state[6];
	char		message[200];
} BatchItem;

typedef struct Batch
{
	int64_t		merchant;
	int			n;
	BatchItem	items[BATCH_MAX];
	int			n_codes;
	BatchCode	codes[BATCH_MAX];
} Batch;

/* An array literal, '{...}', for a text[] or bigint[] parameter. */
typedef struct ArrayLit
{
	char		buf[8192];
	size_t		len;
} ArrayLit;

static void
lit_add(Client *c, ArrayLit *a, const char *elem)
{
	size_t		need = elem ? 2 * strlen(elem) + 3 : 4;

	if (a->len == 0)
		a->buf[a->len++] = '{';
	else
		a->buf[a->len++] = ',';
	if (a->len + need + 2 > sizeof(a->buf))
		fail(c, "a batch's array literal is too long");
	if (!elem)
	{
		memcpy(a->buf + a->len, "NULL", 4);
		a->len += 4;
	}
	else
	{
		a->buf[a->len++] = '"';
		for (const char *p = elem; *p; p++)
		{
			if (*p == '"' || *p == '\\')
				a->buf[a->len++] = '\\';
			a->buf[a->len++] = *p;
		}
		a->buf[a->len++] = '"';
	}
	a->buf[a->len] = '\0';
}

static const char *
lit_end(ArrayLit *a)
{
	if (a->len == 0)
		a->buf[a->len++] = '{';
	a->buf[a->len++] = '}';
	a->buf[a->len] = '\0';
	return a->buf;
}

/* Issues the codes marked `issue`, in one statement; on OK, stores them. */
static Outcome
attempt_issue_codes(Client *c, void *arg)
{
	Batch	   *b = arg;
	ArrayLit	w = {.len = 0},
				m = {.len = 0};
	const char *v[2];
	PGresult   *r;
	Outcome		o;
	int			k = 0;

	for (int i = 0; i < b->n_codes; i++)
		if (b->codes[i].issue)
		{
			char		a[24],
						cap[24];

			i64(a, b->codes[i].wallet);
			i64(cap, b->codes[i].cap);
			lit_add(c, &w, a);
			lit_add(c, &m, b->codes[i].cap ? cap : NULL);
			k++;
		}
	if (k == 0)
		return OK;
	v[0] = lit_end(&w);
	v[1] = lit_end(&m);
	o = run(c, &r, "SELECT payext.request_payment(u.w, max_amount => u.m)"
			"  FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS u(w, m, i)"
			" ORDER BY u.i", 2, v);
	if (o != OK)
		return o;
	if (PQntuples(r) != k)
		fail(c, "request_payment() for %d wallets answered %d rows", k, PQntuples(r));
	k = 0;
	for (int i = 0; i < b->n_codes; i++)
		if (b->codes[i].issue)
		{
			snprintf(b->codes[i].code, sizeof(b->codes[i].code), "%s", PQgetvalue(r, k++, 0));
			b->codes[i].issue = false;
		}
	PQclear(r);
	return OK;
}

/* The batch in one charge_many() call; each item's answer is stored. */
static Outcome
attempt_charge_many(Client *c, void *arg)
{
	Batch	   *b = arg;
	ArrayLit   *codes = calloc(3, sizeof(ArrayLit));
	ArrayLit   *amounts = codes + 1,
			   *refs = codes + 2;
	char		m[24];
	const char *v[4];
	PGresult   *r;
	Outcome		o;

	if (!codes)
		fail(c, "out of memory");
	for (int i = 0; i < b->n; i++)
	{
		char		a[24];

		i64(a, b->items[i].amount);
		lit_add(c, codes, b->codes[b->items[i].code].code);
		lit_add(c, amounts, a);
		lit_add(c, refs, b->items[i].order_ref);
	}
	i64(m, b->merchant);
	v[0] = m;
	v[1] = lit_end(codes);
	v[2] = lit_end(amounts);
	v[3] = lit_end(refs);
	/* No ORDER BY: the rows must come in input order by themselves. */
	o = run(c, &r, "SELECT item, transfer_id, sqlstate, message"
			"  FROM payext.charge_many($1, $2::text[], $3::bigint[], $4::text[])", 4, v);
	free(codes);
	if (o != OK)
		return o;
	if (PQntuples(r) != b->n)
		fail(c, "UNEXPECTED: charge_many() of %d items answered %d rows", b->n, PQntuples(r));
	for (int i = 0; i < b->n; i++)
	{
		BatchItem  *it = &b->items[i];
		bool		charged = !PQgetisnull(r, i, 1);

		if (parse_i64(PQgetvalue(r, i, 0)) != i + 1)
			fail(c, "UNEXPECTED: charge_many() answered item %s in row %d", PQgetvalue(r, i, 0), i + 1);
		if (charged != PQgetisnull(r, i, 2) || charged != PQgetisnull(r, i, 3))
			fail(c, "UNEXPECTED: charge_many() item %d: transfer %s, sqlstate %s, message %s",
				 i + 1, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
		it->got_tid = charged ? parse_i64(PQgetvalue(r, i, 1)) : 0;
		snprintf(it->state, sizeof(it->state), "%s", charged ? "" : PQgetvalue(r, i, 2));
		snprintf(it->message, sizeof(it->message), "%s", charged ? "" : PQgetvalue(r, i, 3));
	}
	PQclear(r);
	return OK;
}

/* An item as a charge: the shape of a charge's acknowledgement. */
static ChargeOp
batch_op(const Batch *b, int i, int64_t tid)
{
	const BatchItem *it = &b->items[i];
	const BatchCode *bc = &b->codes[it->code];
	ChargeOp	op = charge_op(bc->wallet, b->merchant, it->amount, it->order_ref);

	snprintf(op.code, sizeof(op.code), "%s", bc->code);
	op.tid = tid;
	return op;
}

/*
 * What an item must answer now, from the model: "same" (the transfer it
 * was charged with), a SQLSTATE, or NULL (a new transfer, or PY104).
 */
static const char *
batch_expect(const Batch *b, int i)
{
	const BatchItem *it = &b->items[i];
	const BatchCode *bc = &b->codes[it->code];

	if (bc->paid_by == i)
		return "same";
	if (bc->paid_by != PAID_NONE)
		return "PY206";
	if (bc->cap && it->amount > bc->cap)
		return "PY207";
	return NULL;
}

/*
 * Checks a call's answers against the model, in input order, and logs
 * them: a charged item as a charge (call `call`), an item refused as
 * expected for its code (PY206, PY207) as call charge_many_refused (no
 * transfer: the checker proves that its order was never paid).  With
 * `lenient` (the replay of a batch whose first answer never came), a new
 * item may be refused for any reason: its code may be lost in the crash.
 */
static void
batch_settle(Client *c, Batch *b, const char *call, bool lenient)
{
	long		charged = 0,
				again = 0,
				refused = 0;

	for (int i = 0; i < b->n; i++)
	{
		BatchItem  *it = &b->items[i];
		BatchCode  *bc = &b->codes[it->code];
		const char *expect = batch_expect(b, i);
		ChargeOp	op = batch_op(b, i, it->got_tid);
		Ack			ack;

		if (it->got_tid)
		{
			charge_ack(&op, &ack, call);
			log_ack(c, &ack);
			if (expect && strcmp(expect, "same") == 0)
			{
				again++;
				if (it->got_tid != it->tid)
					unexpected(c, call, "item %d (order %s) answered transfer %" PRId64
							   ", the first answer was %" PRId64, i + 1, it->order_ref,
							   it->got_tid, it->tid);
				continue;
			}
			charged++;
			if (expect)
				unexpected(c, call, "item %d (order %s, code %s, amount %" PRId64
						   ", cap %" PRId64 ") was charged (transfer %" PRId64 "), not refused with %s",
						   i + 1, it->order_ref, bc->code, it->amount, bc->cap, it->got_tid, expect);
			it->tid = it->got_tid;
			bc->paid_by = i;
			remember_charge(c, &op);
			continue;
		}
		refused++;
		count(c, "refused %s %s", call, it->state);
		if (!expect)
		{
			if (!lenient && strcmp(it->state, "PY104") != 0)
				unexpected(c, call, "item %d (order %s, amount %" PRId64 "%s) was refused: %s %s",
						   i + 1, it->order_ref, it->amount,
						   bc->cap ? ", at its code's cap after a refusal above it" : "",
						   it->state, it->message);
		}
		else if (strcmp(expect, "same") == 0)
			unexpected(c, call, "item %d (order %s, charged with transfer %" PRId64 ") was refused: %s %s",
					   i + 1, it->order_ref, it->tid, it->state, it->message);
		else if (strcmp(it->state, expect) != 0)
			unexpected(c, call, "item %d (order %s, code %s, amount %" PRId64 ", cap %" PRId64
					   ") was refused with %s, not %s: %s", i + 1, it->order_ref, bc->code,
					   it->amount, bc->cap, it->state, expect, it->message);
		else
		{
			/* Refused for its code: this order must never be paid. */
			charge_ack(&op, &ack, "charge_many_refused");
			ack.kind = NULL;
			write_line(c, c->acks, &ack);
		}
	}
	count_key(c, "batch calls", 1);
	count_key(c, "batch items", b->n);
	count_key(c, "batch charged", charged);
	count_key(c, "batch answered again", again);
	count_key(c, "batch refused", refused);
}

/*
 * Crash mode: the batch's answer never came.  Its items that may have been
 * charged are logged as pending (call charge_many, their codes, no
 * transfer), consecutive, for the next run to send again as one batch;
 * items that had to be refused for their code are not.
 */
static void
batch_pending(Client *c, const Batch *b)
{
	for (int i = 0; i < b->n; i++)
	{
		const char *expect = batch_expect(b, i);
		ChargeOp	op;
		Ack			ack;

		if (expect && strcmp(expect, "same") != 0)
			continue;
		op = batch_op(b, i, 0);
		charge_ack(&op, &ack, "charge_many");
		log_pending(c, &ack);
	}
}

/* Sends the batch (retrying conflicts) and checks and logs the answer. */
static Outcome
batch_call(Client *c, Batch *b, const char *call, bool lenient)
{
	Outcome		o = retrying(c, call, attempt_charge_many, b);

	if (o == OK)
		batch_settle(c, b, call, lenient);
	else if (o == LOST)
		batch_pending(c, b);
	else if (o == REFUSED)
		unexpected(c, call, "the whole batch of %d items was refused: %s %s", b->n, c->state, c->message);
	return o;
}

/* A random item of the batch with a code of its own, shared with none. */
static int
batch_plain_item(Client *c, const bool *taken, int lo, int hi)
{
	for (int t = 0; t < 8 && lo <= hi; t++)
	{
		int			i = (int) between(c, lo, hi);

		if (!taken[i])
			return i;
	}
	return -1;
}

static Outcome
do_charge_many(Client *c)
{
	Batch	   *b = calloc(1, sizeof(Batch));
	bool		taken[BATCH_MAX] = {false};
	int			own[BATCH_MAX]; /* the item whose code an item uses */
	int64_t		caps[BATCH_MAX] = {0};
	int			used_item = -1;
	Charge	   *used = NULL;
	char		base[REF_LEN - 4];	/* room for "-<item>" */
	Outcome		o;

	if (!b)
		fail(c, "out of memory");
	b->merchant = merchants[between(c, 0, n_merchants - 1)];
	b->n = (int) between(c, 2, BATCH_MAX);
	new_ref(c, base, sizeof(base), "cm");
	for (int i = 0; i < b->n; i++)
	{
		own[i] = i;
		b->items[i].amount = between(c, 1, 3000);
		snprintf(b->items[i].order_ref, sizeof(b->items[i].order_ref), "%s-%d", base, i + 1);
	}
	if (chance(c, 30))
	{
		/* Above a capped code's cap (PY207), then, later, at the cap. */
		int			p = (int) between(c, 0, b->n - 2);
		int			q = (int) between(c, p + 1, b->n - 1);

		if (b->items[p].amount < 2)
			b->items[p].amount = 2;
		caps[p] = b->items[p].amount - 1;
		b->items[q].amount = caps[p];
		own[q] = p;
		taken[p] = taken[q] = true;
	}
	if (c->n_charges > 0 && chance(c, 25) &&
		(used_item = batch_plain_item(c, taken, 0, b->n - 1)) >= 0)
	{
		/* A code this client saw paid: PY206. */
		used = pick_charge(c);
		taken[used_item] = true;
	}
	if (chance(c, 20))
	{
		/* The code of an earlier item, for another order. */
		int			q = batch_plain_item(c, taken, 1, b->n - 1);
		int			p = q > 0 ? batch_plain_item(c, taken, 0, q - 1) : -1;

		if (p >= 0)
		{
			own[q] = p;
			taken[p] = taken[q] = true;
		}
	}

	/* The codes: one per item that has its own. */
	for (int i = 0; i < b->n; i++)
	{
		if (own[i] != i)
		{
			b->items[i].code = b->items[own[i]].code;
			continue;
		}
		{
			BatchCode  *bc = &b->codes[b->n_codes];

			b->items[i].code = b->n_codes++;
			bc->paid_by = PAID_NONE;
			if (i == used_item)
			{
				snprintf(bc->code, sizeof(bc->code), "%s", used->code);
				bc->wallet = used->wallet;
				bc->paid_by = PAID_ELSEWHERE;
			}
			else
			{
				bc->wallet = wallets[between(c, 0, n_wallets - 1)];
				bc->cap = caps[i];
				bc->issue = true;
			}
		}
	}
	o = retrying(c, "request_payment", attempt_issue_codes, b);
	if (o == OK)
		o = batch_call(c, b, "charge_many", false);
	/* The till did not see the answer and sends the batch again. */
	if (o == OK && chance(c, 20))
		o = batch_call(c, b, "charge_many_retry", false);
	free(b);
	return o;
}

/* ------------------------------------------------------------------ */
/* Refunds                                                             */
/* ------------------------------------------------------------------ */

static Outcome
refund(Client *c, const char *call, Charge *ch, int64_t amount, const char *refund_ref,
	   int64_t expect_tid)
{
	char		m[24],
				amt[24];
	Stmt		s = {
		.sql = "SELECT payext.refund($1, $2, $3, $4)",
		.n = 4,
		.v = {m, ch->order_ref, amt, refund_ref},
		.res = NULL,
	};
	int64_t		tid;
	Ack			ack = {
		.call = call,
		.kind = "refund",
		.ref = refund_ref,
		.wallet = ch->wallet,
		.merchant = ch->merchant,
		.amount = amount,
		.order_ref = ch->order_ref,
	};
	Outcome		o;

	i64(m, ch->merchant);
	i64(amt, amount);
	o = call1(c, call, &s, &tid);
	if (o == OK)
	{
		ack.tid = tid;
		log_ack(c, &ack);
		if (expect_tid && tid != expect_tid)
			unexpected(c, call, "refund %s answered transfer %" PRId64 ", the first answer was %" PRId64,
					   refund_ref, tid, expect_tid);
		if (!expect_tid)
		{
			Refund	   *rf = &c->refunds[c->n_refunds++ % RING];

			ch->refunded += amount;
			rf->tid = tid;
			rf->wallet = ch->wallet;
			rf->merchant = ch->merchant;
			rf->amount = amount;
			snprintf(rf->refund_ref, sizeof(rf->refund_ref), "%s", refund_ref);
			snprintf(rf->order_ref, sizeof(rf->order_ref), "%s", ch->order_ref);
		}
	}
	else if (o == REFUSED && expect_tid)
		unexpected(c, call, "a retry of refund %s was refused: %s %s", refund_ref, c->state, c->message);
	else if (o == LOST)
		log_pending(c, &ack);
	return o;
}

/* Part (sometimes all) of what is left of a charge this client got. */
static Outcome
do_refund(Client *c)
{
	char		ref[REF_LEN];

	for (int i = 0; i < 8; i++)
	{
		Charge	   *ch = pick_charge(c);
		int64_t		left;

		if (!ch)
			break;
		left = ch->amount - ch->refunded;
		if (left <= 0)
			continue;
		new_ref(c, ref, sizeof(ref), "rf");
		return refund(c, "refund", ch, chance(c, 25) ? left : between(c, 1, left), ref, 0);
	}
	return do_charge(c);
}

static Outcome
do_refund_retry(Client *c)
{
	long		n = c->n_refunds < RING ? c->n_refunds : RING;
	Refund	   *rf;
	Charge		ch = {0};

	if (n == 0)
		return do_refund(c);
	rf = &c->refunds[between(c, 0, n - 1)];
	ch.wallet = rf->wallet;
	ch.merchant = rf->merchant;
	snprintf(ch.order_ref, sizeof(ch.order_ref), "%s", rf->order_ref);
	return refund(c, "refund_retry", &ch, rf->amount, rf->refund_ref, rf->tid);
}

/* More than what is left of a charge: must be refused (PY210). */
static Outcome
do_over_refund(Client *c)
{
	Charge	   *ch = pick_charge(c);
	char		ref[REF_LEN];
	Outcome		o;

	if (!ch)
		return do_charge(c);
	new_ref(c, ref, sizeof(ref), "over");
	o = refund(c, "over_refund", ch, ch->amount - ch->refunded + between(c, 1, 100), ref, 0);
	if (o == OK)
		unexpected(c, "over_refund", "order %s (charged %" PRId64 ") refunded beyond its charge",
				   ch->order_ref, ch->amount);
	else if (o == REFUSED && strcmp(c->state, "PY210") != 0)
		unexpected(c, "over_refund", "refused with %s, not PY210: %s", c->state, c->message);
	return o;
}

/* ------------------------------------------------------------------ */
/* Parking                                                             */
/* ------------------------------------------------------------------ */

typedef struct ExitOp
{
	Spot	   *spot;
	int64_t		stay;
	int64_t		at;
	int64_t		fee;			/* out; -1 for NULL */
	int64_t		auto_tid;		/* out; 0: no automatic payment */
	int64_t		auto_wallet;
	int64_t		auto_amount;
} ExitOp;

/*
 * The camera's exit event and, in the same transaction, the automatic
 * payment it made (if any): the client learns the auto-pay's transfer id
 * from an acknowledged transaction.
 */
static Outcome
attempt_exit(Client *c, void *arg)
{
	ExitOp	   *x = arg;
	char		lot[24],
				at[24],
				stay[24];
	PGresult   *r;
	Outcome		o;

	i64(lot, x->spot->lot);
	i64(at, x->at);
	i64(stay, x->stay);
	if ((o = begin(c)) != OK)
		return o;
	{
		const char *v[] = {lot, x->spot->plate, at};

		if ((o = run(c, &r, "SELECT payext.vehicle_exited($1, $2, to_timestamp($3::float8))",
					 3, v)) != OK)
			return abandon(c, o);
		x->fee = PQgetisnull(r, 0, 0) ? -1 : parse_i64(PQgetvalue(r, 0, 0));
		PQclear(r);
	}
	{
		const char *v[] = {stay};

		/*
		 * Behind a router, a stay paid from a wallet of another partition is
		 * a saga's payment ('saga'), booked against the stay partition's
		 * clearing account: the wallet it came from is then the spot's.
		 */
		if ((o = run(c, &r, "SELECT transfer_id, CASE how WHEN 'saga' THEN NULL ELSE wallet END, amount"
					 " FROM payext.parking_payment WHERE stay = $1 AND how IN ('auto', 'saga')",
					 1, v)) != OK)
			return abandon(c, o);
		x->auto_tid = 0;
		if (PQntuples(r) > 1)
			fail(c, "stay %s has %d automatic payments", stay, PQntuples(r));
		if (PQntuples(r) == 1)
		{
			x->auto_tid = parse_i64(PQgetvalue(r, 0, 0));
			x->auto_wallet = PQgetisnull(r, 0, 1) ? x->spot->wallet
				: parse_i64(PQgetvalue(r, 0, 1));
			x->auto_amount = parse_i64(PQgetvalue(r, 0, 2));
		}
		PQclear(r);
	}
	return commit(c);
}

static Outcome
vehicle_exit(Client *c, const char *call, const char *auto_call, ExitOp *x)
{
	Ack			ack = {
		.call = call,
		.ref = x->spot->plate,
		.wallet = x->spot->wallet,
		.merchant = x->spot->operator_id,
		.stay = x->stay,
		.lot = x->spot->lot,
		.at = x->at,
	};
	Outcome		o = retrying(c, call, attempt_exit, x);

	if (o == LOST)
		log_pending(c, &ack);
	if (o != OK)
		return o;
	if (x->fee < 0)
		unexpected(c, call, "plate %s left lot %" PRId64 " without its entry (stay %" PRId64 ") on record",
				   x->spot->plate, x->spot->lot, x->stay);
	ack.amount = x->fee > 0 ? x->fee : 0;
	log_ack(c, &ack);
	if (x->auto_tid)
	{
		Ack			pay = {
			.call = auto_call,
			.kind = "parking",
			.ref = x->spot->plate,
			.tid = x->auto_tid,
			.wallet = x->auto_wallet,
			.merchant = x->spot->operator_id,
			.amount = x->auto_amount,
			.stay = x->stay,
			.lot = x->spot->lot,
			.at = x->at,
		};

		log_ack(c, &pay);
		if (!x->spot->auto_pay)
			unexpected(c, call, "stay %" PRId64 " of plate %s, without auto-pay, was paid automatically",
					   x->stay, x->spot->plate);
	}
	return OK;
}

typedef struct PayOp
{
	Spot	   *spot;
	int64_t		stay;
	int64_t		amount;			/* in: what to pay (0: read it first) */
	bool		read_due;		/* read parking_service_info in the same
								 * transaction */
	int64_t		due;			/* out: what parking_service_info showed */
	int64_t		tid;			/* out */
} PayOp;

static Outcome
read_due(Client *c, PayOp *p)
{
	char		stay[24];
	const char *v[] = {p->spot->owner, stay};
	PGresult   *r;
	Outcome		o;

	i64(stay, p->stay);
	o = run(c, &r, "SELECT amount_due FROM payext.parking_service_info($1) WHERE stay = $2", 2, v);
	if (o == OK)
	{
		p->due = PQntuples(r) == 1 ? parse_i64(PQgetvalue(r, 0, 0)) : -1;
		PQclear(r);
	}
	return o;
}

static Outcome
attempt_read_due(Client *c, void *arg)
{
	return read_due(c, arg);
}

/* pay_parking of p->amount, or, with read_due, of what the app reads first. */
static Outcome
attempt_pay(Client *c, void *arg)
{
	PayOp	   *p = arg;
	char		stay[24],
				wallet[24],
				amount[24];
	const char *v[] = {stay, wallet, amount};
	PGresult   *r;
	Outcome		o;

	p->tid = 0;
	if (p->read_due)
	{
		if ((o = begin(c)) != OK)
			return o;
		if ((o = read_due(c, p)) != OK)
			return abandon(c, o);
		if (p->due <= 0)
		{
			PQclear(PQexec(c->conn, "ROLLBACK"));
			return OK;			/* nothing shown: the caller reports it */
		}
		p->amount = p->due;
	}
	i64(stay, p->stay);
	i64(wallet, p->spot->wallet);
	i64(amount, p->amount);
	o = run(c, &r, "SELECT payext.pay_parking($1, $2, $3)", 3, v);
	if (o != OK)
		return p->read_due ? abandon(c, o) : o;
	p->tid = first_i64(r);
	PQclear(r);
	return p->read_due ? commit(c) : OK;
}

static Outcome
pay_parking(Client *c, const char *call, PayOp *p, int64_t expect_tid)
{
	Ack			ack = {
		.call = call,
		.kind = "parking",
		.ref = p->spot->plate,
		.wallet = p->spot->wallet,
		.merchant = p->spot->operator_id,
		.amount = p->amount,
		.stay = p->stay,
		.lot = p->spot->lot,
	};
	Outcome		o = retrying(c, call, attempt_pay, p);

	ack.amount = p->amount;
	if (o == OK && p->tid == 0)
		return OK;				/* read_due showed nothing; reported by the
								 * caller */
	if (o == OK)
	{
		ack.tid = p->tid;
		log_ack(c, &ack);
		if (expect_tid && p->tid != expect_tid)
			unexpected(c, call, "stay %" PRId64 " answered transfer %" PRId64 ", the first answer was %" PRId64,
					   p->stay, p->tid, expect_tid);
	}
	else if (o == REFUSED && expect_tid)
		unexpected(c, call, "a retry of the payment of stay %" PRId64 " was refused: %s %s",
				   p->stay, c->state, c->message);
	else if (o == LOST && p->amount > 0)
		log_pending(c, &ack);
	return o;
}

/* A spot of this client with history left; NULL when none. */
static Spot *
pick_spot(Client *c, bool auto_pay)
{
	for (int i = 0; i < 16 && c->n_my_spots > 0; i++)
	{
		Spot	   *s = &spots[c->my_spots[between(c, 0, c->n_my_spots - 1)]];

		if (s->auto_pay == auto_pay &&
			s->cursor + STAY_MIN_S + STAY_SPREAD_MIN * 60 < start_epoch - 60)
			return s;
	}
	return NULL;
}

/* A car enters and leaves; auto-pay, or the app pays what it is shown. */
static Outcome
do_parking(Client *c, bool auto_pay)
{
	Spot	   *s = pick_spot(c, auto_pay);
	char		lot[24],
				at[24];
	Stmt		enter = {
		.sql = "SELECT payext.vehicle_entered($1, $2, to_timestamp($3::float8))",
		.n = 3,
		.v = {lot, NULL, at},
		.res = NULL,
	};
	ExitOp		x = {0};
	int64_t		entered_at,
				stay;
	Outcome		o;

	if (!s)
		return do_top_up(c);
	entered_at = s->cursor;
	x.spot = s;
	x.at = entered_at + STAY_MIN_S + between(c, 0, STAY_SPREAD_MIN - 1) * 60;
	s->cursor = x.at + STAY_GAP_S;
	i64(lot, s->lot);
	i64(at, entered_at);
	enter.v[1] = s->plate;
	o = call1(c, "enter", &enter, &stay);
	if (o != OK)
		return o;
	{
		Ack			ack = {
			.call = "enter",
			.ref = s->plate,
			.wallet = s->wallet,
			.merchant = s->operator_id,
			.stay = stay,
			.lot = s->lot,
			.at = entered_at,
		};

		log_ack(c, &ack);
	}
	x.stay = stay;
	o = vehicle_exit(c, "exit", "auto_pay", &x);
	if (o != OK || auto_pay || x.fee <= 0)
		return o;

	/* No auto-pay: the app reads what is due and pays it. */
	{
		PayOp		p = {
			.spot = s,
			.stay = stay,
		};

		if (chance(c, 50))
			p.read_due = true;	/* read and pay in one transaction */
		else
		{
			o = retrying(c, "parking_service_info", attempt_read_due, &p);
			if (o != OK)
				return o;
			p.amount = p.due;
		}
		if (!p.read_due && p.due <= 0)
		{
			unexpected(c, "pay_parking", "stay %" PRId64 " (fee %" PRId64 ") is not shown as due",
					   stay, x.fee);
			return OK;
		}
		o = pay_parking(c, "pay_parking", &p, 0);
		if (o != OK)
			return o;
		if (p.tid == 0)
		{
			unexpected(c, "pay_parking", "stay %" PRId64 " (fee %" PRId64 ") is not shown as due",
					   stay, x.fee);
			return OK;
		}
		if (p.amount != x.fee)
			unexpected(c, "pay_parking", "stay %" PRId64 " showed %" PRId64 " due, its fee was %" PRId64,
					   stay, p.amount, x.fee);
		if (chance(c, 25))
		{
			/* The app did not see the answer and pays again: same transfer. */
			PayOp		again = {
				.spot = s,
				.stay = stay,
				.amount = p.amount,
			};

			o = pay_parking(c, "pay_parking_retry", &again, p.tid);
		}
	}
	return o;
}

/* ------------------------------------------------------------------ */
/* Holds                                                               */
/* ------------------------------------------------------------------ */

/*
 * Slack between the clients' clock and the server's now(): one machine,
 * one clock, but the answer of a call is read a little after its
 * transaction began.
 */
#define EXPIRY_MARGIN_S 0.05
/* Holds a capture or a void picks from: this client's latest. */
#define HOLD_PICK 256

static double
wall_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

typedef enum Expiry
{
	HOLD_LIVE,					/* certainly not expired for the call */
	HOLD_MAYBE_EXPIRED,			/* the call came too close to tell */
	HOLD_EXPIRED				/* certainly expired */
} Expiry;

/*
 * Whether a hold had expired for a call sent at `sent` and answered at
 * `answered` (its transaction began in between, and now() is that
 * moment): the hold expires expires_s after its own transaction began,
 * which was in [made_from, made_until].
 */
static Expiry
hold_expiry(const Hold *h, double sent, double answered)
{
	if (h->expired_seen || sent >= h->made_until + h->expires_s + EXPIRY_MARGIN_S)
		return HOLD_EXPIRED;
	if (answered < h->made_from + h->expires_s - EXPIRY_MARGIN_S)
		return HOLD_LIVE;
	return HOLD_MAYBE_EXPIRED;
}

static const char *const expiry_names[] = {"live", "maybe expired", "expired"};
static const char *const hold_state_names[] = {"open", "captured", "voided"};

/* The acknowledgement of an authorize() (or a void: amount then changes). */
static Ack
hold_ack(const Hold *h, const char *call)
{
	Ack			ack = {
		.call = call,
		.ref = h->order_ref,
		.wallet = h->wallet,
		.merchant = h->merchant,
		.amount = h->amount,
		.code = h->code,
		.order_ref = h->order_ref,
		.hold = h->id,
	};

	return ack;
}

typedef struct AuthOp
{
	int			mode;			/* 0: a new code and the hold in one
								 * statement; 1: op->code */
	int64_t		wallet;
	int64_t		merchant;
	int64_t		amount;
	int			expires_s;		/* 0: the default (7 days) */
	const char *order_ref;
	char		code[24];		/* out (mode 0), in (mode 1) */
	int64_t		hold;			/* out */
} AuthOp;

static Outcome
attempt_authorize(Client *c, void *arg)
{
	AuthOp	   *op = arg;
	char		w[24],
				m[24],
				amt[24],
				exp[32];
	PGresult   *r;
	Outcome		o;

	i64(w, op->wallet);
	i64(m, op->merchant);
	i64(amt, op->amount);
	snprintf(exp, sizeof(exp), "%d seconds", op->expires_s);
	if (op->mode == 0)
	{
		const char *v[] = {m, amt, op->order_ref, w, exp};

		op->code[0] = '\0';
		o = run(c, &r, op->expires_s
				? "SELECT code, payext.authorize($1, code, $2, $3, $5::interval)"
				"  FROM payext.request_payment($4) AS code"
				: "SELECT code, payext.authorize($1, code, $2, $3)"
				"  FROM payext.request_payment($4) AS code",
				op->expires_s ? 5 : 4, v);
		if (o != OK)
			return o;
		snprintf(op->code, sizeof(op->code), "%s", PQgetvalue(r, 0, 0));
		op->hold = parse_i64(PQgetvalue(r, 0, 1));
		PQclear(r);
		return OK;
	}
	{
		const char *v[] = {m, op->code, amt, op->order_ref, exp};

		o = run(c, &r, op->expires_s ? "SELECT payext.authorize($1, $2, $3, $4, $5::interval)"
				: "SELECT payext.authorize($1, $2, $3, $4)", op->expires_s ? 5 : 4, v);
		if (o == OK)
		{
			op->hold = first_i64(r);
			PQclear(r);
		}
		return o;
	}
}

/* A fresh code of the wallet, in a transaction of its own, into *code. */
static Outcome
new_code(Client *c, int64_t wallet, char *code, size_t size)
{
	char		w[24];
	Stmt		s = {
		.sql = "SELECT payext.request_payment($1)",
		.n = 1,
		.v = {w},
		.res = NULL,
	};
	Outcome		o;

	i64(w, wallet);
	o = retrying(c, "request_payment", attempt_stmt, &s);
	if (o == OK)
	{
		snprintf(code, size, "%s", PQgetvalue(s.res, 0, 0));
		PQclear(s.res);
	}
	return o;
}

/* A new hold: a fresh code (sometimes asked for first), then authorize(). */
static Outcome
do_authorize(Client *c)
{
	char		order_ref[REF_LEN];
	AuthOp		op = {
		.wallet = wallets[between(c, 0, n_wallets - 1)],
		.merchant = merchants[between(c, 0, n_merchants - 1)],
		.amount = between(c, 1, 5000),
		.order_ref = order_ref,
	};
	int			how = (int) between(c, 0, 99);
	double		sent,
				answered;
	Hold	   *h;
	Ack			ack;
	Outcome		o;

	new_ref(c, order_ref, sizeof(order_ref), "ho");

	/*
	 * Now and then a large one (a car hire's deposit): the wallet's other
	 * payments then meet its available balance, not its balance.
	 */
	if (chance(c, 10))
		op.amount = between(c, 20000, 80000);
	/* A third expire during the run: 1 to 3 seconds. */
	op.expires_s = how < 35 ? (int) between(c, 1, 3) : how < 65 ? 3600 : 0;
	op.mode = chance(c, 50) ? 0 : 1;
	if (op.mode == 1 && (o = new_code(c, op.wallet, op.code, sizeof(op.code))) != OK)
		return o;
	sent = wall_seconds();
	o = retrying(c, "authorize", attempt_authorize, &op);
	answered = wall_seconds();
	{
		Ack			a = {
			.call = "authorize",
			.ref = order_ref,
			.wallet = op.wallet,
			.merchant = op.merchant,
			.amount = op.amount,
			.code = op.code,
			.order_ref = order_ref,
			.hold = op.hold,
		};

		ack = a;
	}
	if (o == LOST)
		log_pending(c, &ack);
	if (o == REFUSED && strcmp(c->state, "PY104") != 0)
		unexpected(c, "authorize", "a new hold of %" PRId64 " was refused: %s %s",
				   op.amount, c->state, c->message);
	if (o != OK)
		return o;
	log_ack(c, &ack);
	if (op.hold <= 0)
	{
		unexpected(c, "authorize", "order %s answered hold %" PRId64, order_ref, op.hold);
		return OK;
	}

	/* Its slot in the ring: captures of the hold it replaces forget it. */
	h = &c->holds[c->n_holds++ % HOLD_RING];
	for (int i = 0; i < HOLD_RING; i++)
		if (c->captures[i].hold == h)
			c->captures[i].hold = NULL;
	memset(h, 0, sizeof(*h));
	h->id = op.hold;
	h->wallet = op.wallet;
	h->merchant = op.merchant;
	h->amount = op.amount;
	h->state = HOLD_OPEN;
	h->expires_s = op.expires_s ? op.expires_s : 7 * 86400;
	h->made_from = sent;
	h->made_until = answered;
	snprintf(h->order_ref, sizeof(h->order_ref), "%s", order_ref);
	snprintf(h->code, sizeof(h->code), "%s", op.code);

	if (chance(c, 15))
	{
		/* The till did not see the answer: the same code and amount again. */
		AuthOp		again = op;

		again.mode = 1;
		again.hold = 0;
		o = retrying(c, "authorize_retry", attempt_authorize, &again);
		ack = hold_ack(h, "authorize_retry");
		ack.hold = again.hold;
		if (o == OK)
		{
			log_ack(c, &ack);
			if (again.hold != h->id)
				unexpected(c, "authorize_retry", "order %s answered hold %" PRId64 ", the first answer was %" PRId64,
						   order_ref, again.hold, h->id);
		}
		else if (o == REFUSED)
			unexpected(c, "authorize_retry", "a retry of order %s was refused: %s %s",
					   order_ref, c->state, c->message);
		else if (o == LOST)
			log_pending(c, &ack);
	}
	return o;
}

typedef bool (*HoldTest) (const Hold *h, double now);

static bool
hold_is_open_and_live(const Hold *h, double now)
{
	/* live for a call that answers within half a second */
	return h->state == HOLD_OPEN && hold_expiry(h, now, now + 0.5) == HOLD_LIVE;
}

static bool
hold_is_open(const Hold *h, double now)
{
	(void) now;
	return h->state == HOLD_OPEN;
}

static bool
hold_is_voided(const Hold *h, double now)
{
	(void) now;
	return h->state == HOLD_VOIDED;
}

static bool
hold_is_captured(const Hold *h, double now)
{
	(void) now;
	return h->state == HOLD_CAPTURED;
}

static bool
hold_is_open_and_expired(const Hold *h, double now)
{
	return h->state == HOLD_OPEN && hold_expiry(h, now, now) == HOLD_EXPIRED;
}

/* One of this client's latest holds that passes `test`; NULL when none. */
static Hold *
pick_hold(Client *c, HoldTest test)
{
	long		n = c->n_holds < HOLD_RING ? c->n_holds : HOLD_RING;
	long		recent = n < HOLD_PICK ? n : HOLD_PICK;
	double		now = wall_seconds();

	for (int t = 0; t < 24 && recent > 0; t++)
	{
		/* the i-th latest */
		long		i = (long) between(c, 1, recent);
		Hold	   *h = &c->holds[(c->n_holds - i) % HOLD_RING];

		if (test(h, now))
			return h;
	}
	return NULL;
}

/* capture_hold(), timed: the call's transaction began in [*sent, *answered]. */
static Outcome
capture_call(Client *c, const char *call, int64_t merchant, int64_t hold, int64_t amount,
			 const char *ref, bool final, int64_t *tid, double *sent, double *answered)
{
	char		m[24],
				h[24],
				amt[24];
	Stmt		s = {
		.sql = "SELECT payext.capture_hold($1, $2, $3, $4, $5)",
		.n = 5,
		.v = {m, h, amt, ref, final ? "true" : "false"},
		.res = NULL,
	};
	Outcome		o;

	i64(m, merchant);
	i64(h, hold);
	i64(amt, amount);
	*tid = 0;
	*sent = wall_seconds();
	o = call1(c, call, &s, tid);
	*answered = wall_seconds();
	return o;
}

static Ack
capture_ack(const Hold *h, const char *call, int64_t amount, const char *ref, int64_t tid)
{
	Ack			ack = {
		.call = call,
		.kind = "capture",
		.ref = ref,
		.tid = tid,
		.wallet = h->wallet,
		.merchant = h->merchant,
		.amount = amount,
		.order_ref = h->order_ref,
		.hold = h->id,
	};

	return ack;
}

/*
 * A capture under a new capture_ref, checked against the model: what it
 * must answer follows from the hold's state, its remainder and whether it
 * had expired (sometimes too close to tell: then it went through, or
 * PY602, or PY605 above the remainder).  A refusal as expected is logged
 * as capture_refused: its capture_ref must have moved nothing.
 */
static Outcome
capture_new(Client *c, const char *call, Hold *h, int64_t amount, bool final)
{
	char		ref[REF_LEN];
	int64_t		left = h->amount - h->captured;
	int64_t		tid;
	double		sent,
				answered;
	const char *expect;			/* "ok", a SQLSTATE; NULL: ok or PY602 */
	Expiry		e;
	Ack			ack;
	Outcome		o;

	new_ref(c, ref, sizeof(ref), "cp");
	o = capture_call(c, call, h->merchant, h->id, amount, ref, final, &tid, &sent, &answered);
	e = hold_expiry(h, sent, answered);
	if (h->state == HOLD_VOIDED)
		expect = "PY603";
	else if (h->state == HOLD_CAPTURED)
		expect = "PY604";
	else if (e == HOLD_EXPIRED)
		expect = "PY602";
	else if (amount > left)
		expect = e == HOLD_LIVE ? "PY605" : NULL;
	else
		expect = e == HOLD_LIVE ? "ok" : NULL;
	ack = capture_ack(h, call, amount, ref, tid);
	if (o == LOST)
		log_pending(c, &ack);
	if (o == OK)
	{
		log_ack(c, &ack);
		if ((expect && strcmp(expect, "ok") != 0) || amount > left)
			unexpected(c, call, "hold %" PRId64 " (%s, %s, amount %" PRId64 ", captured %" PRId64
					   ") took a capture of %" PRId64 " (transfer %" PRId64 "), expected %s",
					   h->id, hold_state_names[h->state], expiry_names[e], h->amount, h->captured,
					   amount, tid, expect ? expect : "PY602");
		h->captured += amount;
		if (final || h->captured >= h->amount)
			h->state = HOLD_CAPTURED;
		{
			Capture    *cp = &c->captures[c->n_captures++ % HOLD_RING];

			cp->tid = tid;
			cp->hold = h;
			cp->hold_id = h->id;
			cp->wallet = h->wallet;
			cp->merchant = h->merchant;
			cp->amount = amount;
			cp->final = final;
			snprintf(cp->ref, sizeof(cp->ref), "%s", ref);
			snprintf(cp->order_ref, sizeof(cp->order_ref), "%s", h->order_ref);
		}
		return OK;
	}
	if (o != REFUSED)
		return o;
	if (expect == NULL ? (strcmp(c->state, "PY602") == 0 ||
						  (amount > left && strcmp(c->state, "PY605") == 0))
		: strcmp(c->state, expect) == 0)
	{
		if (strcmp(c->state, "PY602") == 0)
			h->expired_seen = true;
		ack.call = "capture_refused";
		ack.kind = NULL;
		ack.tid = 0;
		write_line(c, c->acks, &ack);
		return o;
	}
	unexpected(c, call, "a capture of %" PRId64 " of hold %" PRId64 " (%s, %s, amount %" PRId64
			   ", captured %" PRId64 ") was refused with %s, expected %s: %s",
			   amount, h->id, hold_state_names[h->state], expiry_names[e], h->amount, h->captured,
			   c->state, expect ? expect : "a capture or PY602", c->message);
	return o;
}

/* Part of what an open hold reserves (final => false), or a final capture. */
static Outcome
do_capture(Client *c, bool final)
{
	Hold	   *h = pick_hold(c, hold_is_open_and_live);
	int64_t		left;

	if (!h)
		return do_authorize(c);
	left = h->amount - h->captured;
	/* All of the remainder at times: a partial capture then closes it too. */
	return capture_new(c, final ? "capture_final" : "capture", h,
					   chance(c, final ? 30 : 20) ? left : between(c, 1, left), final);
}

/* A capture again with its capture_ref: its transfer back, whatever since. */
static Outcome
do_capture_retry(Client *c)
{
	long		n = c->n_captures < HOLD_RING ? c->n_captures : HOLD_RING;
	Capture    *cp;
	Hold		h = {0};
	int64_t		tid;
	double		sent,
				answered;
	Ack			ack;
	Outcome		o;

	if (n == 0)
		return do_capture(c, false);
	cp = &c->captures[between(c, 0, n - 1)];
	h.id = cp->hold_id;
	h.wallet = cp->wallet;
	h.merchant = cp->merchant;
	snprintf(h.order_ref, sizeof(h.order_ref), "%s", cp->order_ref);
	o = capture_call(c, "capture_retry", cp->merchant, cp->hold_id, cp->amount, cp->ref, cp->final,
					 &tid, &sent, &answered);
	ack = capture_ack(&h, "capture_retry", cp->amount, cp->ref, tid);
	if (o == OK)
	{
		log_ack(c, &ack);
		if (tid != cp->tid)
			unexpected(c, "capture_retry", "capture %s answered transfer %" PRId64 ", the first answer was %" PRId64,
					   cp->ref, tid, cp->tid);
	}
	else if (o == REFUSED)
		unexpected(c, "capture_retry", "a retry of capture %s (hold %" PRId64 ") was refused: %s %s",
				   cp->ref, cp->hold_id, c->state, c->message);
	else if (o == LOST)
		log_pending(c, &ack);
	return o;
}

/*
 * void_hold(): what it releases is the remainder of a live hold, 0 for an
 * expired or voided one; a captured hold is PY604.
 */
static Outcome
do_void(Client *c)
{
	int			which = (int) between(c, 0, 9);
	Hold	   *h = pick_hold(c, which < 8 ? hold_is_open : which < 9 ? hold_is_voided : hold_is_captured);
	char		m[24],
				hid[24];
	Stmt		s = {
		.sql = "SELECT payext.void_hold($1, $2)",
		.n = 2,
		.v = {m, hid},
		.res = NULL,
	};
	int64_t		released = -1;
	int64_t		left;
	double		sent,
				answered;
	Expiry		e;
	Ack			ack;
	Outcome		o;

	if (!h)
		return do_authorize(c);
	left = h->amount - h->captured;
	i64(m, h->merchant);
	i64(hid, h->id);
	sent = wall_seconds();
	o = call1(c, "void", &s, &released);
	answered = wall_seconds();
	e = hold_expiry(h, sent, answered);
	ack = hold_ack(h, "void");
	if (o == LOST)
	{
		ack.amount = 0;
		log_pending(c, &ack);
	}
	if (o == REFUSED)
	{
		if (h->state != HOLD_CAPTURED || strcmp(c->state, "PY604") != 0)
			unexpected(c, "void", "hold %" PRId64 " (%s, %s) was refused a void: %s %s", h->id,
					   hold_state_names[h->state], expiry_names[e], c->state, c->message);
		return o;
	}
	if (o != OK)
		return o;
	ack.amount = released;
	log_ack(c, &ack);
	if (h->state == HOLD_CAPTURED ||
		(h->state == HOLD_VOIDED && released != 0) ||
		(h->state == HOLD_OPEN &&
		 !((e != HOLD_EXPIRED && released == left) || (e != HOLD_LIVE && released == 0))))
		unexpected(c, "void", "hold %" PRId64 " (%s, %s, amount %" PRId64 ", captured %" PRId64
				   ") released %" PRId64, h->id, hold_state_names[h->state], expiry_names[e],
				   h->amount, h->captured, released);
	h->state = HOLD_VOIDED;
	return OK;
}

/*
 * The refusals on purpose: a capture above the remainder, of a voided, a
 * captured or an expired hold, of another merchant's hold; a capture_ref
 * again for another amount; the hold's order held again at another amount,
 * or charged.
 */
static Outcome
do_hold_refusal(Client *c)
{
	int			what = (int) between(c, 0, 7);
	Hold	   *h;
	int64_t		tid;
	double		sent,
				answered;
	Outcome		o;

	switch (what)
	{
		case 0:
			if (!(h = pick_hold(c, hold_is_open_and_live)))
				break;
			return capture_new(c, "capture_over", h, h->amount - h->captured + between(c, 1, 100),
							   chance(c, 50));
		case 1:
			if (!(h = pick_hold(c, hold_is_voided)))
				break;
			return capture_new(c, "capture_voided", h, between(c, 1, h->amount), chance(c, 50));
		case 2:
			if (!(h = pick_hold(c, hold_is_captured)))
				break;
			return capture_new(c, "capture_captured", h, between(c, 1, h->amount), chance(c, 50));
		case 3:
			if (!(h = pick_hold(c, hold_is_open_and_expired)))
				break;
			return capture_new(c, "capture_expired", h, between(c, 1, h->amount - h->captured),
							   chance(c, 50));
		case 4:
			{
				/* Another merchant's hold: PY601, as an unknown hold. */
				int64_t		other = merchants[between(c, 0, n_merchants - 1)];
				char		ref[REF_LEN];
				Ack			ack;

				if (!(h = pick_hold(c, hold_is_open)) || other == h->merchant)
					break;
				new_ref(c, ref, sizeof(ref), "cx");
				o = capture_call(c, "capture_not_mine", other, h->id, 1, ref, true, &tid,
								 &sent, &answered);
				ack = capture_ack(h, "capture_refused", 1, ref, 0);
				ack.merchant = other;
				ack.kind = NULL;
				if (o == OK)
				{
					ack.call = "capture_not_mine";
					ack.kind = "capture";
					ack.tid = tid;
					log_ack(c, &ack);
					unexpected(c, "capture_not_mine", "merchant %" PRId64 " captured hold %" PRId64
							   " of merchant %" PRId64 ": transfer %" PRId64, other, h->id,
							   h->merchant, tid);
				}
				else if (o == REFUSED && strcmp(c->state, "PY601") != 0)
					unexpected(c, "capture_not_mine", "refused with %s, not PY601: %s", c->state, c->message);
				else if (o == REFUSED)
					write_line(c, c->acks, &ack);
				return o;
			}
		case 5:
			{
				/* A capture_ref again, for another amount: PY607. */
				long		n = c->n_captures < HOLD_RING ? c->n_captures : HOLD_RING;
				Capture    *cp;

				if (n == 0)
					break;
				cp = &c->captures[between(c, 0, n - 1)];
				o = capture_call(c, "capture_ref_again", cp->merchant, cp->hold_id, cp->amount + 1,
								 cp->ref, cp->final, &tid, &sent, &answered);
				if (o == OK)
				{
					Hold		hh = {.id = cp->hold_id,.wallet = cp->wallet,.merchant = cp->merchant};
					Ack			ack;

					snprintf(hh.order_ref, sizeof(hh.order_ref), "%s", cp->order_ref);
					ack = capture_ack(&hh, "capture_ref_again", cp->amount + 1, cp->ref, tid);
					log_ack(c, &ack);
					unexpected(c, "capture_ref_again", "capture %s, for %" PRId64 " (transfer %" PRId64
							   "), answered %" PRId64 " for %" PRId64, cp->ref, cp->amount, cp->tid,
							   tid, cp->amount + 1);
				}
				else if (o == REFUSED && strcmp(c->state, "PY607") != 0)
					unexpected(c, "capture_ref_again", "refused with %s, not PY607: %s", c->state, c->message);
				return o;
			}
		case 6:
			{
				/* The same order and code at another amount: PY208. */
				AuthOp		op;

				if (!(h = pick_hold(c, hold_is_open)))
					break;
				op.mode = 1;
				op.wallet = h->wallet;
				op.merchant = h->merchant;
				op.amount = h->amount + 1;
				op.expires_s = 0;
				op.order_ref = h->order_ref;
				op.hold = 0;
				snprintf(op.code, sizeof(op.code), "%s", h->code);
				o = retrying(c, "authorize_again", attempt_authorize, &op);
				if (o == OK)
				{
					Ack			ack = hold_ack(h, "authorize_again");

					ack.amount = op.amount;
					ack.hold = op.hold;
					log_ack(c, &ack);
					unexpected(c, "authorize_again", "order %s, held for %" PRId64 " (hold %" PRId64
							   "), answered hold %" PRId64 " for %" PRId64, h->order_ref, h->amount,
							   h->id, op.hold, op.amount);
				}
				else if (o == REFUSED && strcmp(c->state, "PY208") != 0)
					unexpected(c, "authorize_again", "refused with %s, not PY208: %s", c->state, c->message);
				return o;
			}
		case 7:
			{
				/* A charge of a held order, with a fresh code: PY608. */
				ChargeOp	op;

				if (!(h = pick_hold(c, hold_is_open)))
					break;
				op = charge_op(h->wallet, h->merchant, between(c, 1, h->amount), h->order_ref);
				op.mode = 0;
				o = retrying(c, "charge_held_order", attempt_code_and_charge, &op);
				if (o == OK)
				{
					Ack			ack;

					charge_ack(&op, &ack, "charge_held_order");
					log_ack(c, &ack);
					unexpected(c, "charge_held_order", "order %s, held by hold %" PRId64
							   ", was charged: transfer %" PRId64, h->order_ref, h->id, op.tid);
				}
				else if (o == REFUSED && strcmp(c->state, "PY608") != 0)
					unexpected(c, "charge_held_order", "refused with %s, not PY608: %s", c->state, c->message);
				return o;
			}
	}
	return do_authorize(c);
}

/* About one call in eight: a hold, or something done to one. */
static Outcome
do_hold(Client *c)
{
	int			pick = (int) between(c, 0, 99);

	if (pick < 30)
		return do_authorize(c);
	if (pick < 50)
		return do_capture(c, false);
	if (pick < 65)
		return do_capture(c, true);
	if (pick < 75)
		return do_void(c);
	if (pick < 85)
		return do_capture_retry(c);
	return do_hold_refusal(c);
}

/* ------------------------------------------------------------------ */
/* Replays of calls in flight at a crash                                */
/* ------------------------------------------------------------------ */

#define FIELDS 14

/* Splits a log line in place into its FIELDS columns; \N becomes NULL. */
static bool
split_line(char *line, char **f)
{
	int			n = 0;
	char	   *p = line;

	line[strcspn(line, "\n")] = '\0';
	for (;;)
	{
		char	   *tab = strchr(p, '\t');

		if (n == FIELDS)
			return false;
		if (tab)
			*tab = '\0';
		f[n++] = strcmp(p, "\\N") == 0 ? NULL : p;
		if (!tab)
			break;
		p = tab + 1;
	}
	return n == FIELDS;
}

static int64_t
num(const char *s)
{
	return s ? parse_i64(s) : 0;
}

static bool
starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * The replay of a batch in flight at a crash (pending lines of one call):
 * the same codes, amounts and order_refs in one call.  An item charged the
 * first time answers its transfer; one whose code is unknown now (PY203,
 * PY204: live codes do not survive a crash) was not charged, and is sent
 * again with a fresh code, under the same order_ref, in a second call: it
 * must be charged now (or PY104), never refused as paid (PY208).
 */
static Outcome
replay_batch(Client *c, char **lines, int n)
{
	Batch	   *b = calloc(2, sizeof(Batch));
	Batch	   *again = b + 1;
	Outcome		o;

	if (!b)
		fail(c, "out of memory");
	for (int i = 0; i < n; i++)
	{
		char	   *f[FIELDS];
		char		copy[2048];
		BatchItem  *it = &b->items[b->n];
		int			k;

		snprintf(copy, sizeof(copy), "%s", lines[i]);
		if (!split_line(copy, f) || !f[5] || !f[6] || !f[7] || !f[8] || !f[9])
			fail(c, "bad pending line of a batch: %s", lines[i]);
		if (b->n > 0 && num(f[6]) != b->merchant)
			fail(c, "a pending batch of two merchants: %s", lines[i]);
		b->merchant = num(f[6]);
		it->amount = num(f[7]);
		snprintf(it->order_ref, sizeof(it->order_ref), "%s", f[9]);
		/* Items that shared a code share it again. */
		for (k = 0; k < b->n_codes; k++)
			if (strcmp(b->codes[k].code, f[8]) == 0)
				break;
		if (k == b->n_codes)
		{
			b->n_codes++;
			snprintf(b->codes[k].code, sizeof(b->codes[k].code), "%s", f[8]);
			b->codes[k].wallet = num(f[5]);
			b->codes[k].paid_by = PAID_NONE;
		}
		it->code = k;
		b->n++;
	}
	o = batch_call(c, b, "charge_many_replay", true);
	if (o == OK)
	{
		again->merchant = b->merchant;
		for (int i = 0; i < b->n; i++)
		{
			BatchItem  *it = &b->items[i];
			BatchCode  *bc;

			if (it->got_tid || (strcmp(it->state, "PY203") != 0 && strcmp(it->state, "PY204") != 0))
				continue;

			/*
			 * Its old code until the fresh one is issued (for the pending
			 * log).
			 */
			bc = &again->codes[again->n_codes];
			*bc = b->codes[it->code];
			bc->paid_by = PAID_NONE;
			bc->cap = 0;
			bc->issue = true;
			again->items[again->n] = *it;
			again->items[again->n].code = again->n_codes++;
			again->items[again->n].tid = 0;
			again->n++;
		}
		if (again->n > 0)
		{
			o = retrying(c, "request_payment", attempt_issue_codes, again);
			if (o == LOST)
				batch_pending(c, again);
			else if (o == OK)
				o = batch_call(c, again, "charge_many_replay", false);
		}
	}
	free(b);
	return o;
}

/*
 * Sends one call that was in flight at a crash again, with its first
 * references.  It must either find what the first attempt did (the same
 * transfer, or a refusal saying the order is paid) or do it now, once.
 */
static Outcome
replay_one(Client *c, char **f)
{
	const char *call = f[1];
	const char *ref = f[3];
	int64_t		wallet = num(f[5]),
				merchant = num(f[6]),
				amount = num(f[7]);

	if (starts(call, "top_up"))
		return external(c, "top_up_replay", true, wallet, false, amount, ref, 0);
	if (starts(call, "withdraw"))
		return external(c, "withdraw_replay", false, merchant ? merchant : wallet,
						merchant != 0, amount, ref, 0);
	if (starts(call, "charge_many"))
		fail(c, "a batch's pending line outside its batch");
	if (starts(call, "charge"))
	{
		ChargeOp	op = charge_op(wallet, merchant, amount, ref);
		Ack			ack;
		Outcome		o = REFUSED;

		/*
		 * With the code it had: the same transfer if the first attempt
		 * committed.  A code requested in the lost transaction does not exist
		 * (PY203), and one issued before the crash but unused died with its
		 * unlogged row (PY204); then, or without a code, a new code for the
		 * same order: PY208 if the first attempt paid it.
		 */
		if (f[8])
		{
			snprintf(op.code, sizeof(op.code), "%s", f[8]);
			o = retrying(c, "charge_replay", attempt_charge, &op);
		}
		if (o == REFUSED && (!f[8] || strcmp(c->state, "PY203") == 0 ||
							 strcmp(c->state, "PY204") == 0))
			o = retrying(c, "charge_replay", attempt_code_and_charge, &op);
		charge_ack(&op, &ack, "charge_replay");
		if (o == OK)
			log_ack(c, &ack);
		else if (o == LOST)
			log_pending(c, &ack);
		return o;
	}
	if (starts(call, "refund") || starts(call, "over_refund"))
	{
		Charge		ch = {
			.wallet = wallet,
			.merchant = merchant,
		};
		bool		over = starts(call, "over_refund");
		Outcome		o;

		/*
		 * An over-refund must have been refused the first time; had it
		 * happened, the replay finds its transfer, logs it, and the checker
		 * sees the charge over-refunded.
		 */
		snprintf(ch.order_ref, sizeof(ch.order_ref), "%s", f[9] ? f[9] : "");
		o = refund(c, over ? "over_refund_replay" : "refund_replay", &ch, amount, ref, 0);
		if (over && o == OK)
			unexpected(c, "over_refund_replay", "refund %s of order %s went through", ref, ch.order_ref);
		return o;
	}
	if (starts(call, "pay_parking") || starts(call, "exit"))
	{
		Spot		s = {
			.lot = num(f[11]),
			.operator_id = merchant,
			.wallet = wallet,
		};

		snprintf(s.plate, sizeof(s.plate), "%s", ref);
		if (starts(call, "exit"))
		{
			ExitOp		x = {
				.spot = &s,
				.stay = num(f[10]),
				.at = num(f[12]),
			};

			/* Whether auto-pay ran: the stay's payment tells. */
			s.auto_pay = true;
			return vehicle_exit(c, "exit_replay", "auto_pay_replay", &x);
		}
		else
		{
			PayOp		p = {
				.spot = &s,
				.stay = num(f[10]),
				.amount = amount,
			};

			return pay_parking(c, "pay_parking_replay", &p, 0);
		}
	}
	if (starts(call, "authorize"))
	{
		/*
		 * A hold: with its code, the same hold if the first attempt committed
		 * (a code used or purged since still names it); a code that did not
		 * survive (PY203, PY204), or none (asked for in the lost statement),
		 * is replaced by a fresh one for the same order: PY208 then says that
		 * the first attempt held it.
		 */
		AuthOp		op = {
			.mode = 1,
			.wallet = wallet,
			.merchant = merchant,
			.amount = amount,
			.expires_s = 3600,
			.order_ref = ref,
		};
		Ack			ack = {
			.call = "authorize_replay",
			.ref = ref,
			.wallet = wallet,
			.merchant = merchant,
			.amount = amount,
			.order_ref = ref,
		};
		Outcome		o = REFUSED;

		if (f[8])
		{
			snprintf(op.code, sizeof(op.code), "%s", f[8]);
			o = retrying(c, "authorize_replay", attempt_authorize, &op);
		}
		if (o == REFUSED && (!f[8] || strcmp(c->state, "PY203") == 0 ||
							 strcmp(c->state, "PY204") == 0))
		{
			op.mode = 0;
			o = retrying(c, "authorize_replay", attempt_authorize, &op);
		}
		ack.code = op.code;
		ack.hold = op.hold;
		if (o == OK)
			log_ack(c, &ack);
		else if (o == LOST)
		{
			ack.call = call;
			log_pending(c, &ack);
		}
		return o;
	}
	if (starts(call, "capture"))
	{
		/*
		 * A capture: its transfer if the first attempt committed, else it
		 * happens now or is refused (the hold may have expired since).  A
		 * capture that had to be refused must not go through now.
		 */
		Hold		h = {
			.id = num(f[13]),
			.wallet = wallet,
			.merchant = merchant,
		};
		int64_t		tid;
		double		sent,
					answered;
		bool		refusal = !starts(call, "capture_final") && !starts(call, "capture_retry") &&
		strcmp(call, "capture") != 0;
		Ack			ack;
		Outcome		o;

		snprintf(h.order_ref, sizeof(h.order_ref), "%s", f[9] ? f[9] : "");
		o = capture_call(c, "capture_replay", merchant, h.id, amount, ref,
						 starts(call, "capture_final"), &tid, &sent, &answered);
		ack = capture_ack(&h, "capture_replay", amount, ref, tid);
		if (o == OK)
		{
			log_ack(c, &ack);
			if (refusal)
				unexpected(c, "capture_replay", "%s %s of hold %" PRId64 " went through: transfer %" PRId64,
						   call, ref, h.id, tid);
		}
		else if (o == LOST)
		{
			ack.call = call;
			log_pending(c, &ack);
		}
		return o;
	}
	if (starts(call, "void"))
	{
		Hold		h = {
			.id = num(f[13]),
			.wallet = wallet,
			.merchant = merchant,
		};
		char		m[24],
					hid[24];
		Stmt		s = {
			.sql = "SELECT payext.void_hold($1, $2)",
			.n = 2,
			.v = {m, hid},
			.res = NULL,
		};
		int64_t		released = 0;
		Ack			ack;
		Outcome		o;

		snprintf(h.order_ref, sizeof(h.order_ref), "%s", ref);
		i64(m, merchant);
		i64(hid, h.id);
		o = call1(c, "void_replay", &s, &released);
		ack = hold_ack(&h, "void_replay");
		ack.amount = 0;
		ack.code = NULL;
		if (o == OK)
		{
			ack.amount = released;
			log_ack(c, &ack);
		}
		else if (o == LOST)
		{
			ack.call = call;
			log_pending(c, &ack);
		}
		return o;
	}
	fprintf(stderr, "driver: cannot replay a call of kind %s\n", call);
	return REFUSED;
}

/* ------------------------------------------------------------------ */
/* Set-up, clients, summary                                            */
/* ------------------------------------------------------------------ */

static void
ignore_notice(void *arg, const char *message)
{
	(void) arg;
	(void) message;
}

static PGconn *
connect_db(void)
{
	PGconn	   *conn = PQconnectdb(opt_conninfo);
	char		sql[128];
	PGresult   *r;

	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "driver: cannot connect: %s", PQerrorMessage(conn));
		return NULL;
	}

	/*
	 * PY414's WARNING (an exit without entry) is reported by the exit's
	 * answer.
	 */
	PQsetNoticeProcessor(conn, ignore_notice, NULL);
	snprintf(sql, sizeof(sql),
			 "SET default_transaction_isolation = '%s'; SET statement_timeout = '60s'",
			 opt_isolation);
	r = PQexec(conn, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
	{
		fprintf(stderr, "driver: %s", PQerrorMessage(conn));
		PQclear(r);
		PQfinish(conn);
		return NULL;
	}
	PQclear(r);
	return conn;
}

static PGresult *
query(PGconn *conn, const char *sql)
{
	PGresult   *r = PQexec(conn, sql);

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "driver: %s: %s", sql, PQerrorMessage(conn));
		exit(1);
	}
	return r;
}

/* Reads the accounts, lots and bound vehicles; spots get their cursors. */
static void
load_population(PGconn *conn)
{
	PGresult   *r;
	int			owners = 0;
	char		last_owner[64] = "";
	int			n_lots;
	int64_t    *lot_ids,
			   *lot_ops;

	r = query(conn, "SELECT extract(epoch FROM now())::bigint");
	start_epoch = parse_i64(PQgetvalue(r, 0, 0));
	PQclear(r);

	r = query(conn, "SELECT id FROM payext.account WHERE kind = 'wallet' AND status = 'active'"
			  " AND currency = 'CNY' ORDER BY id");
	n_wallets = PQntuples(r);
	wallets = calloc((size_t) n_wallets + 1, sizeof(int64_t));
	for (int i = 0; i < n_wallets; i++)
		wallets[i] = parse_i64(PQgetvalue(r, i, 0));
	PQclear(r);

	/*
	 * Merchants and lots by their id at a router (partition 0's account or
	 * lot; behind a router each has one on every partition), which on a
	 * single node is every id.
	 */
	r = query(conn, "SELECT id FROM payext.account WHERE kind = 'merchant' AND status = 'active'"
			  " AND currency = 'CNY' AND id >> 56 = 0 ORDER BY id");
	n_merchants = PQntuples(r);
	merchants = calloc((size_t) n_merchants + 1, sizeof(int64_t));
	for (int i = 0; i < n_merchants; i++)
		merchants[i] = parse_i64(PQgetvalue(r, i, 0));
	PQclear(r);
	if (n_wallets == 0 || n_merchants == 0)
	{
		fprintf(stderr, "driver: no CNY wallets or merchants to work with\n");
		exit(1);
	}

	r = query(conn, "SELECT id, operator FROM payext.parking_lot"
			  " WHERE currency = 'CNY' AND id >> 56 = 0 ORDER BY id");
	n_lots = PQntuples(r);
	lot_ids = calloc((size_t) n_lots + 1, sizeof(int64_t));
	lot_ops = calloc((size_t) n_lots + 1, sizeof(int64_t));
	for (int i = 0; i < n_lots; i++)
	{
		lot_ids[i] = parse_i64(PQgetvalue(r, i, 0));
		lot_ops[i] = parse_i64(PQgetvalue(r, i, 1));
	}
	PQclear(r);

	/*
	 * Every (lot, bound plate); its next entry comes after the last event on
	 * record, so that a later round never dates a stay into an old one. A
	 * client drives the plates of every opt_clients-th owner.
	 */
	r = query(conn,
			  "SELECT v.plate, v.owner, v.auto_pay, w.id, l.id,"
			  "       coalesce(extract(epoch FROM (SELECT max(greatest(s.entered_at, s.exited_at))"
			  "                                      FROM payext.parking_stay s"
			  "                                     WHERE s.lot = l.id AND s.plate = v.plate))::bigint, 0)"
			  "  FROM payext.vehicle v"
			  "  JOIN payext.account w ON w.kind = 'wallet' AND w.owner = v.owner AND w.currency = 'CNY'"
			  "  CROSS JOIN payext.parking_lot l"
			  " WHERE l.currency = 'CNY' AND l.id >> 56 = 0"
			  " ORDER BY v.owner, v.plate, l.id");
	n_spots = PQntuples(r);
	spots = calloc((size_t) n_spots + 1, sizeof(Spot));
	spot_client = calloc((size_t) n_spots + 1, sizeof(int));
	for (int i = 0; i < n_spots; i++)
	{
		Spot	   *s = &spots[i];
		int64_t		last = parse_i64(PQgetvalue(r, i, 5));

		snprintf(s->plate, sizeof(s->plate), "%s", PQgetvalue(r, i, 0));
		snprintf(s->owner, sizeof(s->owner), "%s", PQgetvalue(r, i, 1));
		s->auto_pay = strcmp(PQgetvalue(r, i, 2), "t") == 0;
		s->wallet = parse_i64(PQgetvalue(r, i, 3));
		s->lot = parse_i64(PQgetvalue(r, i, 4));
		for (int l = 0; l < n_lots; l++)
			if (lot_ids[l] == s->lot)
				s->operator_id = lot_ops[l];
		s->cursor = start_epoch - PARKING_HISTORY_S;
		if (last + STAY_GAP_S > s->cursor)
			s->cursor = last + STAY_GAP_S;
		if (strcmp(s->owner, last_owner) != 0)
		{
			owners++;
			snprintf(last_owner, sizeof(last_owner), "%s", s->owner);
		}
		spot_client[i] = (owners - 1) % opt_clients;
	}
	PQclear(r);
	free(lot_ids);
	free(lot_ops);
}

static FILE *
open_log(const char *name, const char *suffix)
{
	char		path[1024];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s.%s", opt_dir, name, suffix);
	f = fopen(path, "a");
	if (!f)
	{
		fprintf(stderr, "driver: cannot open %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return f;
}

static void
init_client(Client *c, int id)
{
	memset(c, 0, sizeof(*c));
	c->id = id;
	if (id < opt_clients)
		snprintf(c->name, sizeof(c->name), "%s-%d", opt_tag, id);
	else
		snprintf(c->name, sizeof(c->name), "%s-replay", opt_tag);
	c->stats = &all_stats[id];
	c->rng = opt_seed * 0x9E3779B97F4A7C15ULL + (uint64_t) id * 0xBF58476D1CE4E5B9ULL + 1;
	for (int i = 0; i < 4; i++)
		rnd(c);
}

static void
run_client(int id)
{
	Client	   *c = calloc(1, sizeof(Client));
	double		deadline = now_seconds() + opt_seconds;

	if (!c)
		exit(1);
	init_client(c, id);
	c->conn = connect_db();
	if (!c->conn)
		exit(1);
	c->acks = open_log(c->name, "acks");
	if (opt_crash)
		c->pending = open_log(c->name, "pending");
	c->my_spots = calloc((size_t) n_spots + 1, sizeof(int));
	for (int i = 0; i < n_spots; i++)
		if (spot_client[i] == id)
			c->my_spots[c->n_my_spots++] = i;

	while (now_seconds() < deadline)
	{
		int			pick = (int) between(c, 0, 124);
		Outcome		o;

		if (pick < 12)
			o = do_top_up(c);
		else if (pick < 14)
			o = do_external_retry(c, true);
		else if (pick < 38)
			o = do_charge(c);
		else if (pick < 43)
			o = do_charge_retry(c);
		else if (pick < 47)
			o = do_code_reuse(c);
		else if (pick < 58)
			o = do_refund(c);
		else if (pick < 62)
			o = do_refund_retry(c);
		else if (pick < 65)
			o = do_over_refund(c);
		else if (pick < 72)
			o = do_withdraw(c);
		else if (pick < 74)
			o = do_external_retry(c, false);
		else if (pick < 87)
			o = do_parking(c, true);
		else if (pick < 100)
			o = do_parking(c, false);
		else if (pick < 110)
			o = do_charge_many(c);
		else
			o = do_hold(c);
		if (o == LOST)
		{
			c->stats->lost = 1;
			break;
		}
	}
	fclose(c->acks);
	if (c->pending)
		fclose(c->pending);
	PQfinish(c->conn);
	exit(0);
}

/*
 * The batch a pending line of charge_many belongs to: its order_ref less
 * the item's number ("<tag>-<client>-cm-<sequence>-<item>"); NULL for other
 * calls.  *len gets the key's length.
 */
static const char *
batch_key(const char *line, size_t *len)
{
	char		copy[2048];
	char	   *f[FIELDS];
	const char *dash;

	snprintf(copy, sizeof(copy), "%s", line);
	if (!split_line(copy, f) || !f[1] || !starts(f[1], "charge_many") || !f[9])
		return NULL;
	dash = strrchr(f[9], '-');
	if (!dash)
		return NULL;
	*len = (size_t) (dash - f[9]);
	/* The same bytes in the line itself (f[9] points into the copy). */
	return line + (f[9] - copy);
}

/* The parent, before the clients start: calls in flight at the last crash. */
static void
replay_pending(PGconn *conn)
{
	FILE	   *in = fopen(opt_replay, "r");
	Client	   *c;
	char		line[2048];
	char	  **lines = NULL;
	int			n = 0,
				allocated = 0;
	bool		lost = false;

	if (!in)
	{
		if (errno == ENOENT)
			return;
		fprintf(stderr, "driver: cannot read %s: %s\n", opt_replay, strerror(errno));
		exit(1);
	}
	c = calloc(1, sizeof(Client));
	if (!c)
		exit(1);
	init_client(c, opt_clients);
	c->conn = conn;
	c->acks = open_log(c->name, "acks");
	c->pending = open_log(c->name, "pending");
	while (fgets(line, sizeof(line), in))
	{
		char	   *f[FIELDS];
		char		copy[2048];

		snprintf(copy, sizeof(copy), "%s", line);
		if (!split_line(copy, f) || !f[1] || !f[3])
		{
			fprintf(stderr, "driver: bad line in %s: %s", opt_replay, line);
			exit(1);
		}
		if (n == allocated)
		{
			allocated = allocated ? 2 * allocated : 64;
			lines = realloc(lines, sizeof(char *) * (size_t) allocated);
			if (!lines)
				exit(1);
		}
		if (!(lines[n++] = strdup(line)))
			exit(1);
	}
	fclose(in);
	for (int i = 0; i < n;)
	{
		char	   *f[FIELDS];
		char		copy[2048];
		size_t		len = 0,
					len2 = 0;
		const char *key = batch_key(lines[i], &len);
		int			j = i + 1;

		/* A batch: its items' lines, consecutive, sent again in one call. */
		if (key)
			while (j < n && j - i < BATCH_MAX)
			{
				const char *key2 = batch_key(lines[j], &len2);

				if (!key2 || len2 != len || strncmp(key, key2, len) != 0)
					break;
				j++;
			}
		if (lost)
		{
			/* Still unanswered: for the next run to send again. */
			for (int k = i; k < j; k++)
				fputs(lines[k], c->pending);
		}
		else if (key)
			lost = replay_batch(c, lines + i, j - i) == LOST;
		else
		{
			snprintf(copy, sizeof(copy), "%s", lines[i]);
			split_line(copy, f);
			lost = replay_one(c, f) == LOST;
		}
		i = j;
	}
	for (int i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	fclose(c->acks);
	fclose(c->pending);
	free(c);
	if (lost)
		all_stats[opt_clients].lost = 1;
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: driver [-d conninfo] [-c clients] [-T seconds] [-i isolation]\n"
			"              [-t tag] [-o dir] [-r tries] [-s seed] [-C] [-R pending-file] [-v]\n");
	exit(2);
}

/* Adds up the clients' counters and prints them, one group per line. */
static void
summary(void)
{
	Stats		total = {0};
	static const char *const groups[][2] = {
		{"ack ", "acknowledged:"},
		{"refused ", "refused (an answer):"},
		{"retry ", "retried:"},
		{"gave up ", "gave up after the last try:"},
		{"in flight at the crash ", "in flight at the crash:"},
		{"batch ", "charge_many (answered calls, their items):"},
		{"unexpected ", "UNEXPECTED:"},
	};

	for (int i = 0; i <= opt_clients; i++)
		for (int k = 0; k < all_stats[i].used; k++)
		{
			Counter    *src = &all_stats[i].c[k];
			int			j;

			for (j = 0; j < total.used; j++)
				if (strcmp(total.c[j].key, src->key) == 0)
					break;
			if (j == total.used)
			{
				if (total.used == MAX_COUNTERS)
					continue;
				total.used++;
				snprintf(total.c[j].key, sizeof(total.c[j].key), "%s", src->key);
			}
			total.c[j].n += src->n;
		}
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
	{
		bool		any = false;
		long		sum = 0;

		for (int j = 0; j < total.used; j++)
			if (starts(total.c[j].key, groups[g][0]))
			{
				if (!any)
					printf("  %s", groups[g][1]);
				any = true;
				sum += total.c[j].n;
				printf(" %s=%ld", total.c[j].key + strlen(groups[g][0]), total.c[j].n);
			}
		if (any && strcmp(groups[g][0], "batch ") == 0)
			printf("\n");		/* not one kind of thing: no sum */
		else if (any)
			printf(" (%ld)\n", sum);
	}
}

int
main(int argc, char **argv)
{
	int			opt;
	PGconn	   *conn;
	bool		failed = false;
	int			lost = 0;

	opt_seed = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 16);
	while ((opt = getopt(argc, argv, "d:c:T:i:t:o:r:s:CR:v")) != -1)
	{
		switch (opt)
		{
			case 'd':
				opt_conninfo = optarg;
				break;
			case 'c':
				opt_clients = atoi(optarg);
				break;
			case 'T':
				opt_seconds = atoi(optarg);
				break;
			case 'i':
				opt_isolation = optarg;
				break;
			case 't':
				opt_tag = optarg;
				break;
			case 'o':
				opt_dir = optarg;
				break;
			case 'r':
				opt_tries = atoi(optarg);
				break;
			case 's':
				opt_seed = strtoull(optarg, NULL, 10);
				break;
			case 'C':
				opt_crash = true;
				break;
			case 'R':
				opt_replay = optarg;
				break;
			case 'v':
				opt_verbose = true;
				break;
			default:
				usage();
		}
	}
	if (optind != argc || opt_clients < 1 || opt_clients > 64 || opt_seconds < 0 ||
		opt_tries < 1 || strchr(opt_tag, '\t') || strlen(opt_tag) > 24 ||
		(strcmp(opt_isolation, "read committed") != 0 &&
		 strcmp(opt_isolation, "repeatable read") != 0 &&
		 strcmp(opt_isolation, "serializable") != 0))
		usage();

	all_stats = mmap(NULL, sizeof(Stats) * (size_t) (opt_clients + 1),
					 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (all_stats == MAP_FAILED)
	{
		perror("driver: mmap");
		return 1;
	}
	memset(all_stats, 0, sizeof(Stats) * (size_t) (opt_clients + 1));
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("driver: %d client(s), %d s, %s%s, seed %" PRIu64 "\n", opt_clients, opt_seconds,
		   opt_isolation, opt_crash ? ", crash mode" : "", opt_seed);

	conn = connect_db();
	if (!conn)
		return 1;
	if (opt_replay)
		replay_pending(conn);
	if (all_stats[opt_clients].lost)
	{
		/* The server died during the replays: no clients this time. */
		summary();
		printf("driver: the connection was lost during the replays\n");
		return 0;
	}
	load_population(conn);
	PQfinish(conn);

	for (int i = 0; i < opt_clients; i++)
	{
		pid_t		pid = fork();

		if (pid < 0)
		{
			perror("driver: fork");
			return 1;
		}
		if (pid == 0)
			run_client(i);
	}
	for (int i = 0; i < opt_clients; i++)
	{
		int			status;

		if (wait(&status) < 0)
		{
			perror("driver: wait");
			return 1;
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed = true;
	}
	summary();
	for (int i = 0; i <= opt_clients; i++)
	{
		lost += all_stats[i].lost;
		for (int k = 0; k < all_stats[i].used; k++)
			if (starts(all_stats[i].c[k].key, "unexpected "))
				failed = true;
		if (all_stats[i].failed)
			failed = true;
	}
	if (opt_crash)
		printf("driver: %d of %d client(s) lost the connection\n", lost, opt_clients);
	if (failed)
	{
		fprintf(stderr, "driver: FAILED (see the messages above)\n");
		return 1;
	}
	return 0;
}
