# payext: PGXS build.  `make && make install`, then see README.md for tests.

EXTENSION = payext
EXTVERSION = $(shell grep default_version $(EXTENSION).control | sed -e "s/default_version[[:space:]]*=[[:space:]]*'\([^']*\)'/\1/")

MODULE_big = payext
OBJS = \
	src/payext.o \
	src/assoc_window.o \
	src/association.o \
	src/code_format.o \
	src/codes.o \
	src/currency.o \
	src/money.o \
	src/parking.o \
	src/plate.o \
	src/roles.o \
	src/spi_util.o \
	src/tariff.o \
	src/ledger.o

DATA = $(wildcard payext--*.sql)

# pg_regress: one story per concern, the extension created by pg_regress.
REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --load-extension=payext

# Isolation specs live in test/specs, their outputs in test/expected.
ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --load-extension=payext

PG_CPPFLAGS = -Isrc
PG_CFLAGS += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
SHLIB_LINK += -lcrypto

# `make PAYEXT_DEV=1` (used by the test suite) also runs Assert() against
# Debian's non-assert server and turns every warning into an error.
ifdef PAYEXT_DEV
PG_CFLAGS += -DUSE_ASSERT_CHECKING -Werror
endif

EXTRA_CLEAN = output_iso results regression.diffs regression.out test/unit/build test/fuzz/build test/load/build

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

.PHONY: demo pgtap dumptest load unit fuzz test-all

# Each of these runs against the server that PGHOST/PGPORT point at; wrap
# them in scripts/with_cluster.sh for a throwaway one.
demo:
	psql -X -q -v ON_ERROR_STOP=1 -d postgres -f demo/demo.sql

pgtap:
	test/pgtap/run.sh

dumptest:
	test/dump/roundtrip.sh

load:
	test/load/run.sh

# Pure C units, no server: unit tests and a short fuzzing run.
unit:
	test/unit/run.sh

fuzz:
	test/fuzz/run.sh

# Every suite, in a throwaway cluster (what CI runs).
test-all:
	scripts/test_all.sh
