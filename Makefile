# central_hub: PGXS build of the extension, plus the test and run commands.
#
#   make            build the extension
#   make install    install it into PostgreSQL 15 (needs root)
#   make test       install missing packages, build with -Werror, run every suite
#   make start      run a local hub (PostgreSQL + extension) under $HUB_HOME
#   make stop       stop it
#   make bench      run the benchmarks in bench/

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config

MODULE_big = central_hub
OBJS = \
	src/central_hub.o \
	src/config_store.o \
	src/config_functions.o \
	src/json_merge.o \
	src/semver.o \
	src/outbox.o \
	src/hub_catalog.o \
	src/hub_spi.o \
	src/relay_worker.o \
	src/nats_client.o \
	src/registry.o \
	src/health_check.o \
	src/health_worker.o \
	src/http_probe.o \
	src/api_keys.o

EXTENSION = central_hub
DATA = sql/central_hub--1.0.sql

# Regression suites: sql/<name>.sql is compared with expected/<name>.out.
REGRESS = config_store config_functions config_rules
REGRESS_OPTS = --inputdir=.

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
	-Wno-missing-field-initializers
SHLIB_LINK = -lnats -lcurl

# No LLVM bitcode: it needs clang and buys nothing for this extension.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# hubd: the HTTP frontend, a program of its own (libmicrohttpd + libpq).
HUBD_BINDIR ?= /usr/local/bin
HUBD_OBJS = \
	src/hubd/main.o \
	src/hubd/server.o \
	src/hubd/router.o \
	src/hubd/routes_common.o \
	src/hubd/routes_config.o \
	src/hubd/routes_discovery.o \
	src/hubd/routes_status.o \
	src/hubd/longpoll.o \
	src/hubd/cache.o \
	src/hubd/db.o \
	src/hubd/json.o \
	src/hubd/metrics.o \
	src/hubd/log.o
HUBD_CFLAGS = -O2 -g -std=gnu11 -pthread -Wall -Wextra -Wno-unused-parameter \
	-Wno-sign-compare -Wno-missing-field-initializers \
	-I$(shell $(PG_CONFIG) --includedir)
HUBD_LIBS = -pthread -lmicrohttpd -L$(shell $(PG_CONFIG) --libdir) -lpq

all: src/hubd/hubd

src/hubd/hubd: $(HUBD_OBJS)
	$(CC) -o $@ $(HUBD_OBJS) $(HUBD_LIBS)

src/hubd/%.o: src/hubd/%.c $(wildcard src/hubd/*.h)
	$(CC) $(HUBD_CFLAGS) $(COPT) -c -o $@ $<

# The fuzz target of hubd's request router and JSON checker (libFuzzer).
HUBD_FUZZ = test/fuzz/hubd_fuzz
$(HUBD_FUZZ): test/fuzz/hubd_fuzz.c src/hubd/router.c src/hubd/json.c \
		src/hubd/router.h src/hubd/json.h
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-Isrc/hubd -o $@ test/fuzz/hubd_fuzz.c src/hubd/router.c src/hubd/json.c

hubd-fuzz: $(HUBD_FUZZ)

install: install-hubd

install-hubd: src/hubd/hubd
	install -D -m 755 src/hubd/hubd $(DESTDIR)$(HUBD_BINDIR)/hubd

clean: clean-hubd

clean-hubd:
	rm -f src/hubd/*.o src/hubd/hubd $(HUBD_FUZZ)

.PHONY: install-hubd clean-hubd hubd-fuzz

.PHONY: test start stop bench deps

deps:
	bash scripts/deps.sh

test:
	bash test/run

start:
	bash scripts/hub start

stop:
	bash scripts/hub stop

bench:
	bash bench/run

# hub-sub: a tiny NATS subscriber to watch the relay's messages (Debian
# ships no NATS command-line client).  Installed on PATH by `make install`.
HUB_BINDIR ?= /usr/local/bin

all: bin/hub-sub

bin/hub-sub: src/tools/hub_sub.c
	@mkdir -p bin
	$(CC) -O2 -g -Wall -Wextra $(COPT) -o $@ $< -lnats -lpthread

install: install-hub-sub

.PHONY: install-hub-sub
install-hub-sub: bin/hub-sub
	install -d '$(DESTDIR)$(HUB_BINDIR)'
	install -m 755 bin/hub-sub '$(DESTDIR)$(HUB_BINDIR)/hub-sub'

clean: clean-hub-sub

.PHONY: clean-hub-sub
clean-hub-sub:
	rm -f bin/hub-sub
