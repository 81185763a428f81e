# fuzz/fuzz.mk: libFuzzer targets for every parser (fuzz/README.md).
# Included by the top Makefile, whose MODULES, WARN, DEFS, PKG_CFLAGS,
# PKG_LIBS and BUILD it reuses.
#
#   make fuzz-build    build/fuzz/fuzz_NAME, one per fuzz/fuzz_NAME.c
#   make fuzz-smoke    each target FUZZ_SMOKE_TIME seconds (make check)
#   make fuzz          each target FUZZ_TIME seconds
#   make fuzz-NAME     one target FUZZ_TIME seconds
#
# A run starts from a copy of fuzz/corpus/NAME in build/fuzz/work/NAME,
# so the seed corpus in the repository never grows; new inputs, crash
# files (crash-*, leak-*, timeout-*) and the log stay there. Any crash,
# leak, sanitizer report, failed check or timeout fails the run.

FUZZ_CC		?= clang
FUZZ_DIR	 = $(BUILD)/fuzz
FUZZ_OBJDIR	 = $(FUZZ_DIR)/obj
FUZZ_WORK	 = $(FUZZ_DIR)/work
FUZZ_TIME	?= 600
FUZZ_SMOKE_TIME	?= 7
# Per input: a hang is a finding too.
FUZZ_TIMEOUT	?= 10
FUZZ_FLAGS	?=

FUZZ_SAN	 = -fsanitize=address,undefined -fno-sanitize-recover=all \
		   -fno-omit-frame-pointer
FUZZ_CFLAGS	 = -std=c17 -O1 -g $(WARN) $(DEFS) $(PKG_CFLAGS) -Isrc \
		   $(FUZZ_SAN)

FUZZ_TARGETS	 = $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
# The aliases target needs alias.c's aliases parser; without it, skip it.
ifeq ($(shell grep -c 'alias_parse_aliases' src/postino.h 2>/dev/null),0)
FUZZ_TARGETS	:= $(filter-out aliases,$(FUZZ_TARGETS))
endif
FUZZ_BINS	 = $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_OBJS	 = $(MODULES:%=$(FUZZ_OBJDIR)/%.o)

# Inputs longer than libFuzzer's default 4096 where the code has limits
# further out: the message reader's 998-octet lines and 64 KiB fields.
FUZZ_MAXLEN_message	= 20000

.PHONY: fuzz-build fuzz-smoke fuzz $(FUZZ_TARGETS:%=fuzz-%) \
	$(FUZZ_TARGETS:%=fuzz-smoke-%)

fuzz-build: $(FUZZ_BINS)

# Objects shared by every target: not intermediate files to delete.
.SECONDARY: $(FUZZ_OBJS)

$(FUZZ_OBJDIR)/%.o: src/%.c src/postino.h src/conn_impl.h
	@mkdir -p $(FUZZ_OBJDIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_OBJS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) \
	    $(PKG_LIBS)

# $(call fuzz_run,NAME,SECONDS): fresh copy of the seeds, run, report.
define fuzz_run
	@set -u; name=$(1); w=$(FUZZ_WORK)/$$name; \
	rm -rf $$w && mkdir -p $$w/corpus $$w/tmp && \
	cp fuzz/corpus/$$name/* $$w/corpus/ && \
	TMPDIR=$$w/tmp \
	ASAN_OPTIONS=detect_leaks=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(FUZZ_DIR)/fuzz_$$name -max_total_time=$(2) \
	    -timeout=$(FUZZ_TIMEOUT) -rss_limit_mb=2048 \
	    $(if $(FUZZ_MAXLEN_$(1)),-max_len=$(FUZZ_MAXLEN_$(1))) \
	    -print_final_stats=1 -artifact_prefix=$$w/ $(FUZZ_FLAGS) \
	    $$w/corpus >$$w/log 2>&1; rc=$$?; \
	execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$w/log); \
	units=$$(ls $$w/corpus | wc -l); \
	printf 'fuzz_%-12s %10s execs in %ss, corpus %s%s\n' $$name \
	    "$${execs:-?}" $(2) $$units \
	    "$$([ $$rc -eq 0 ] || echo ": FAILED (exit $$rc)")"; \
	if [ $$rc -ne 0 ]; then tail -n 60 $$w/log; \
	    ls $$w/crash-* $$w/leak-* $$w/timeout-* $$w/oom-* 2>/dev/null; \
	    exit 1; fi; \
	rmdir $$w/tmp 2>/dev/null || { echo "fuzz_$$name: files left in" \
	    "$$w/tmp"; exit 1; }
endef

$(FUZZ_TARGETS:%=fuzz-smoke-%): fuzz-smoke-%: $(FUZZ_DIR)/fuzz_%
	$(call fuzz_run,$*,$(FUZZ_SMOKE_TIME))

$(FUZZ_TARGETS:%=fuzz-%): fuzz-%: $(FUZZ_DIR)/fuzz_%
	$(call fuzz_run,$*,$(FUZZ_TIME))

# Every target runs even after one fails; the status says if any did.
fuzz-smoke fuzz: fuzz-build
	@failed=; for t in $(FUZZ_TARGETS); do \
	    $(MAKE) --no-print-directory $(if $(filter fuzz-smoke,$@), \
	    fuzz-smoke-$$t,fuzz-$$t) || failed="$$failed $$t"; done; \
	if [ -n "$$failed" ]; then echo "fuzz: FAILED:$$failed"; exit 1; fi
