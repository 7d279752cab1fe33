# The only entry points: deps, all (build), run, test, bench, fuzz, fmt, clean.
# See README.md.  `make SAN=1 ...` builds core/, the daemons and the unit
# tests with AddressSanitizer and UndefinedBehaviorSanitizer into build/san/.

SHELL      := /bin/bash
CC         ?= cc
NGINX_SRC  ?= /usr/share/nginx/src
BUILD      := build
SAN        ?= 0

ifeq ($(SAN),1)
O          := $(BUILD)/san
OPT        := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined
SAN_LD     := -fsanitize=address,undefined
else
O          := $(BUILD)
OPT        := -O2
SAN_LD     :=
endif

CFLAGS     := -std=gnu11 -g $(OPT) -Wall -Wextra -fPIC \
              -D_GNU_SOURCE -Icore -Iworkers -I$(BUILD)/gen $(EXTRA_CFLAGS)
LDLIBS     := -lhiredis -lsodium -lyajl -lcrypto -lm
LDFLAGS    := $(SAN_LD) $(EXTRA_LDFLAGS)

CORE_SRCS  := $(sort $(wildcard core/*.c))
CORE_HDRS  := $(wildcard core/*.h)
CORE_OBJS  := $(CORE_SRCS:core/%.c=$(O)/core/%.o)
LIBCORE    := $(O)/libmxcore.a

# workers/: mxw_*.c is the daemon runtime; NAME.c (no '_' in NAME) is a
# program, and NAME_*.c are the other parts of it
WRT_SRCS   := $(sort $(wildcard workers/mxw_*.c))
WRT_HDRS   := $(wildcard workers/*.h)
WRT_OBJS   := $(WRT_SRCS:workers/%.c=$(O)/workers/%.o)
LIBWRT     := $(O)/libmxworker.a
PROG_SRCS  := $(foreach f,$(wildcard workers/*.c),$(if $(findstring _,$(notdir $(f))),,$(f)))
PROGS      := $(PROG_SRCS:workers/%.c=$(O)/bin/%)
DAEMONS    := roomserver syncer fedsender

LUA_SRCS   := lua/lib.lua $(filter-out lua/lib.lua,$(sort $(wildcard lua/*.lua)))
GEN        := $(BUILD)/gen/mx_lua_version.h $(BUILD)/gen/mx_lua_lib.c

# C unit tests (cmocka) and test-only programs in t/c/
UNIT_SRCS  := $(sort $(wildcard t/c/test_*.c))
UNITS      := $(UNIT_SRCS:t/c/%.c=$(O)/t/%)
TPROG_SRCS := $(filter-out $(UNIT_SRCS),$(wildcard t/c/*.c))
TPROGS     := $(TPROG_SRCS:t/c/%.c=$(O)/t/%)

# fuzz targets (libFuzzer, clang) in t/fuzz/fuzz_*.c, seeds in t/fuzz/seeds/NAME/
FUZZ_SRCS  := $(sort $(wildcard t/fuzz/fuzz_*.c))
FUZZERS    := $(FUZZ_SRCS:t/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_TIME  ?= 300

# benchmark programs in bench/*.c
BENCH_SRCS := $(sort $(wildcard bench/*.c))
BENCHES    := $(BENCH_SRCS:bench/%.c=$(O)/bench/%)

MODULE     := $(BUILD)/nginx/objs/ngx_matrix_module.so
MOD_SRCS   := $(wildcard ngx_matrix_module/*.c ngx_matrix_module/*.h)

.PHONY: all deps module core workers units run test test-unit test-t \
        bench benches fuzz fuzzers fuzz-smoke fmt clean san

all: module core workers units benches

deps:
	@scripts/deps.sh

core: $(LIBCORE)
workers: $(PROGS) $(TPROGS)
units: $(UNITS)

# --- generated: the Redis function library and its version ---------------

$(GEN) &: $(LUA_SRCS) scripts/gen-lua.sh
	@mkdir -p $(BUILD)/gen
	scripts/gen-lua.sh $(BUILD)/gen $(LUA_SRCS)

# --- core/ -----------------------------------------------------------------

$(O)/core/%.o: core/%.c $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIBCORE): $(CORE_OBJS)
	rm -f $@
	ar rcs $@ $^

# --- workers/ ----------------------------------------------------------------

$(O)/workers/%.o: workers/%.c $(CORE_HDRS) $(WRT_HDRS) $(GEN)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(O)/gen/mx_lua_lib.o: $(BUILD)/gen/mx_lua_lib.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIBWRT): $(WRT_OBJS) $(O)/gen/mx_lua_lib.o
	rm -f $@
	ar rcs $@ $^

.SECONDEXPANSION:

$(O)/bin/%: $(O)/workers/%.o \
            $$(addprefix $(O)/,$$(subst .c,.o,$$(wildcard workers/$$*_*.c))) \
            $(LIBWRT) $(LIBCORE)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcurl -lssl -lresolv

# --- t/c: unit tests and test programs --------------------------------------

$(O)/t/%.o: t/c/%.c $(CORE_HDRS) $(WRT_HDRS) $(wildcard t/c/*.h) $(GEN)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -It/c -c -o $@ $<

$(O)/t/%: $(O)/t/%.o $(LIBWRT) $(LIBCORE)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcurl -lssl -lresolv -lcmocka

# --- bench/ -----------------------------------------------------------------

$(O)/bench/%: bench/%.c $(LIBWRT) $(LIBCORE) $(CORE_HDRS) $(WRT_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBWRT) $(LIBCORE) $(LDLIBS)

benches: $(BENCHES)

# --- t/fuzz: libFuzzer targets, built with clang over core/ -------------------

$(BUILD)/fuzz/%: t/fuzz/%.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(@D)
	clang -std=gnu11 -g -O1 -D_GNU_SOURCE -Icore \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    -o $@ $< $(CORE_SRCS) -lsodium -lyajl -lcrypto -lm

fuzzers: $(FUZZERS)

# every target for FUZZ_TIME seconds (default 300), corpus kept in build/fuzz/
fuzz: fuzzers
	@FUZZ_OUT=$(BUILD)/fuzz scripts/fuzz.sh $(FUZZ_TIME) $(FUZZERS)

# what make test runs: each target briefly, so a crash fails CI
fuzz-smoke: fuzzers
	@FUZZ_OUT=$(BUILD)/fuzz scripts/fuzz.sh 30 $(FUZZERS)

# --- the nginx module --------------------------------------------------------
#
# Debian's nginx-dev ships the nginx build tree with the flags the packaged
# nginx was configured with; a module configured the same way (--with-compat)
# loads into the packaged binary.

$(BUILD)/nginx/.configured: config $(NGINX_SRC)/conf_flags
	rm -rf $(BUILD)/nginx
	mkdir -p $(BUILD)
	cp -r $(NGINX_SRC) $(BUILD)/nginx
	cd $(BUILD)/nginx && . ./conf_flags && \
	    MX_GEN_DIR=$(abspath $(BUILD))/gen ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt='-fPIC -D_GNU_SOURCE' \
	        --add-dynamic-module=$(CURDIR) > configure.log 2>&1 \
	    || { tail -30 configure.log; exit 1; }
	touch $@

# a new or removed source file changes the object list: configure again
$(BUILD)/nginx/.sources: FORCE
	@mkdir -p $(BUILD)/nginx
	@ls core/*.c ngx_matrix_module/*.c | sort > $@.new
	@cmp -s $@.new $@ && rm $@.new || { mv $@.new $@; rm -f $(BUILD)/nginx/.configured; }

$(MODULE): $(BUILD)/nginx/.sources $(BUILD)/nginx/.configured \
           $(MOD_SRCS) $(CORE_SRCS) $(CORE_HDRS) $(GEN)
	@[ -f $(BUILD)/nginx/.configured ] || $(MAKE) $(BUILD)/nginx/.configured
	$(MAKE) -s -C $(BUILD)/nginx -f objs/Makefile modules

module: $(MODULE)

FORCE:

# objects of programs are intermediate files: keep them, so nothing rebuilds
.SECONDARY:

# --- running -------------------------------------------------------------------

run: deps all
	MATRIX_BUILD=$(abspath $(BUILD)) scripts/mx-run

# --- tests -------------------------------------------------------------------

test: deps all
	@MATRIX_BUILD=$(abspath $(BUILD)) scripts/test.sh

test-unit: units
	@for t in $(UNITS); do $$t || exit 1; done

san:
	$(MAKE) SAN=1 core workers units

bench: deps all
	@MATRIX_BUILD=$(abspath $(BUILD)) scripts/bench.sh

fmt:
	clang-format -i core/*.c core/*.h workers/*.c workers/*.h t/c/*.c

clean:
	rm -rf $(BUILD)
