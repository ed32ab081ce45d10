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
	src/registry.o \
	src/health_check.o \
	src/health_worker.o \
	src/http_probe.o

EXTENSION = central_hub
DATA = sql/central_hub--1.0.sql

# Regression suites: sql/<name>.sql is compared with expected/<name>.out.
REGRESS = config_store config_functions config_rules
REGRESS_OPTS = --inputdir=. --outputdir=results --load-extension=central_hub

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
	-Wno-missing-field-initializers
SHLIB_LINK = -lcurl

# No LLVM bitcode: it needs clang and buys nothing for this extension.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

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
