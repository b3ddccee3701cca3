# roomrelay build. Plain make: `make` builds the binaries into build/,
# `make test` runs every suite CI runs, `make run` starts a local cluster.

CC      ?= cc
BUILD   := build
LLHTTP_DIR ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-missing-field-initializers
CSTD    := -std=c11 -D_GNU_SOURCE
INCS    := -I. -I$(LLHTTP_INC)
RELEASE := -O2 -g
SANITIZE := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LIBS    := -lev -ljansson -lhiredis -lssl -lcrypto -lz -lpthread -lm
# libjwt signs tokens in unit tests (a second implementation beside python3-jwt);
# the binaries verify with OpenSSL directly (docs/spoa.md, "Libraries").
TEST_LIBS := -ljwt -lcmocka

# Sources: every .c of a part is a module; main.c is the binary's entry point.
LIB_SRC     := $(wildcard lib/*.c)
SPOA_SRC    := $(filter-out spoa/main.c,$(wildcard spoa/*.c))
BACKEND_SRC := $(filter-out backend/main.c,$(wildcard backend/*.c))
LLHTTP_SRC  := $(addprefix $(LLHTTP_DIR)/,api.c http.c llhttp.c)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
BENCH_SRC   := $(wildcard bench/*.c)

obj = $(patsubst %.c,$(BUILD)/$(1)/%.o,$(2))
LLHTTP_OBJ  = $(patsubst $(LLHTTP_DIR)/%.c,$(BUILD)/$(1)/llhttp/%.o,$(LLHTTP_SRC))

BINS := $(BUILD)/roomrelay-spoa
ifneq ($(wildcard backend/main.c),)
BINS += $(BUILD)/roomrelay-backend
endif
ifneq ($(wildcard tools/roomrelayctl.c),)
BINS += $(BUILD)/roomrelayctl
endif
# bench/roomrelay-bench.c is one of the shipped binaries, build/roomrelay-bench.
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(filter-out bench/roomrelay-bench.c,$(BENCH_SRC)))
ifneq ($(wildcard bench/roomrelay-bench.c),)
BINS += $(BUILD)/roomrelay-bench
endif
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/asan/tests/%,$(UNIT_SRC))

.SECONDARY:

.PHONY: all deps test unit integration conformance run bench bench-spoa bench-backend bench-cluster bench-peers fmt lint clean fuzz

all: $(BINS) $(BENCH_BINS)

# Packages are installed once per build tree; `make deps` forces a check.
$(BUILD)/.deps: scripts/deps.sh
	@mkdir -p $(BUILD)
	@scripts/deps.sh
	@touch $@

deps:
	@scripts/deps.sh

$(BUILD)/rel/%.o: %.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(RELEASE) $(INCS) -MMD -MP -c $< -o $@

$(BUILD)/asan/%.o: %.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(SANITIZE) $(INCS) -MMD -MP -c $< -o $@

# llhttp is generated C from Debian's node-llhttp, compiled as is (not our warnings).
$(BUILD)/rel/llhttp/%.o: $(LLHTTP_DIR)/%.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -I$(LLHTTP_INC) -c $< -o $@

$(BUILD)/asan/llhttp/%.o: $(LLHTTP_DIR)/%.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(SANITIZE) -I$(LLHTTP_INC) -c $< -o $@

$(BUILD)/roomrelay-spoa: $(call obj,rel,spoa/main.c $(SPOA_SRC) $(LIB_SRC)) $(call LLHTTP_OBJ,rel)
	$(CC) $(RELEASE) -o $@ $^ $(LIBS)

# The binaries again with ASan + UBSan: the integration tests run these.
$(BUILD)/asan/roomrelay-spoa: $(call obj,asan,spoa/main.c $(SPOA_SRC) $(LIB_SRC)) $(call LLHTTP_OBJ,asan)
	$(CC) $(SANITIZE) -o $@ $^ $(LIBS)

$(BUILD)/asan/roomrelay-backend: $(call obj,asan,backend/main.c $(BACKEND_SRC) $(LIB_SRC)) $(call LLHTTP_OBJ,asan)
	$(CC) $(SANITIZE) -o $@ $^ $(LIBS)

$(BUILD)/roomrelay-backend: $(call obj,rel,backend/main.c $(BACKEND_SRC) $(LIB_SRC)) $(call LLHTTP_OBJ,rel)
	$(CC) $(RELEASE) -o $@ $^ $(LIBS)

$(BUILD)/roomrelayctl: $(call obj,rel,tools/roomrelayctl.c $(LIB_SRC))
	$(CC) $(RELEASE) -o $@ $^ $(LIBS)

# Each bench/X.c is one program; it may use lib/, the SPOP codec and the
# backend's modules (WebSocket framing and handshake, output queues).
BENCH_DEPS = $(call obj,rel,$(SPOA_SRC) $(BACKEND_SRC) $(LIB_SRC)) $(call LLHTTP_OBJ,rel)
$(BUILD)/bench/%: $(call obj,rel,bench/%.c) $(BENCH_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(RELEASE) -o $@ $^ $(LIBS)

$(BUILD)/roomrelay-bench: $(call obj,rel,bench/roomrelay-bench.c) $(BENCH_DEPS)
	$(CC) $(RELEASE) -o $@ $^ $(LIBS)

# Unit tests: one cmocka program per module, built with ASan + UBSan.
UNIT_DEPS = $(call obj,asan,$(SPOA_SRC) $(BACKEND_SRC) $(LIB_SRC)) $(call LLHTTP_OBJ,asan)
$(BUILD)/asan/tests/%: $(BUILD)/asan/tests/unit/%.o $(UNIT_DEPS)
	$(CC) $(SANITIZE) -o $@ $^ $(LIBS) $(TEST_LIBS)

ASAN_BINS := $(BUILD)/asan/roomrelay-spoa $(BUILD)/asan/roomrelay-backend

test: all $(UNIT_BINS) $(ASAN_BINS)
	@tests/run.sh

unit: $(UNIT_BINS)
	@tests/run.sh unit

integration: all $(ASAN_BINS)
	@tests/run.sh integration

conformance: all $(ASAN_BINS)
	@tests/run.sh conformance

run: all
	@scripts/run.sh

bench: bench-spoa bench-backend bench-cluster

bench-spoa: all
	@bench/spoa.sh

bench-backend: all
	@bench/backend.sh

bench-cluster: all
	@/usr/bin/python3 bench/cluster.py

bench-peers: all
	@bench/backend.sh peers

fmt:
	clang-format -i $$(git ls-files '*.c' '*.h')

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
		--suppress=missingIncludeSystem -I. $$(git ls-files '*.c')
	clang-tidy --quiet $$(git ls-files '*.c') -- $(CSTD) $(INCS)

clean:
	rm -rf $(BUILD)

# Fuzzing (not part of `make test`): each tests/fuzz/fuzz_X.c is a libFuzzer
# target, run for RR_FUZZ_SECONDS (default 60) from its seed corpus
# tests/fuzz/corpus/fuzz_X/. The modules go into an archive so that a target
# links only what it uses.
FUZZ_CC      ?= clang
RR_FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
                -fno-sanitize-recover=all
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS    := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
FUZZ_LIB     := $(BUILD)/fuzz/libmodules.a

$(BUILD)/fuzz/obj/%.o: %.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CSTD) $(WARN) $(FUZZ_CFLAGS) $(INCS) -MMD -MP -c $< -o $@

$(FUZZ_LIB): $(call obj,fuzz/obj,$(SPOA_SRC) $(LIB_SRC))
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/fuzz/%: $(BUILD)/fuzz/obj/tests/fuzz/%.o $(FUZZ_LIB)
	$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LIBS)

fuzz: $(FUZZ_BINS)
	@RR_FUZZ_SECONDS=$(RR_FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_BINS)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
