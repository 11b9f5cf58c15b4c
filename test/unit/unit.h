/*
 * unit.h
 *		The few lines every C unit test shares: a CHECK that counts, the
 *		closing line, and a fixed-seed generator (so each run tests the
 *		same cases).
 */
#ifndef PAYEXT_UNIT_H
#define PAYEXT_UNIT_H

#include <stdint.h>
#include <stdio.h>

static int	unit_passed;
static int	unit_failed;

#define CHECK(cond, ...) \
	do { \
		if (cond) \
			unit_passed++; \
		else \
		{ \
			unit_failed++; \
			printf("not ok: %s:%d: ", __FILE__, __LINE__); \
			printf(__VA_ARGS__); \
			printf("\n"); \
		} \
	} while (0)

/* Prints "unit: N passed, M failed"; the exit status of main(). */
static inline int
unit_finish(void)
{
	printf("unit: %d passed, %d failed\n", unit_passed, unit_failed);
	return unit_failed == 0 ? 0 : 1;
}

static uint64_t unit_rng_state = 0x9E3779B97F4A7C15u;

/* xorshift64: fast, fixed, good enough to pick test cases. */
static inline uint64_t
next_random(void)
{
	unit_rng_state ^= unit_rng_state << 13;
	unit_rng_state ^= unit_rng_state >> 7;
	unit_rng_state ^= unit_rng_state << 17;
	return unit_rng_state;
}

#endif							/* PAYEXT_UNIT_H */
