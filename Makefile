# postino: a drop-in sendmail that relays every message to its mailhub(s).
#
#   make            build ./postino
#   make check      install missing Debian packages (as root), build, run
#                   every test: unit (cmocka), end to end (pytest against a
#                   private Postfix and a fault server), and both again
#                   under ASan+UBSan, plus the man page lint
#   make demo       a throwaway hub on loopback, one cron-like message
#   make bench      figures beside ssmtp and msmtp (not a test)
#   make install    PREFIX, DESTDIR, POSTINO_GROUP, POSTINO_USER
#   make deb        the Debian package, in build/deb/ (debian/)

VERSION		 = 0.1.0
PREFIX		?= /usr
DESTDIR		?=
SBINDIR		?= $(PREFIX)/sbin
BINDIR		?= $(PREFIX)/bin
LIBDIR		?= $(PREFIX)/lib
MANDIR		?= $(PREFIX)/share/man
CONFDIR		?= /etc/ssmtp
QUEUEDIR	?= /var/spool/postino
POSTINO_GROUP	?= postino
POSTINO_USER	?= postino
SYSTEMDDIR	?= $(PREFIX)/lib/systemd/system

BUILD		?= build
CC		?= cc
PKG_CONFIG	?= pkg-config
PYTHON		 = /usr/bin/python3

PKG_CFLAGS	:= $(shell $(PKG_CONFIG) --cflags openssl libbsd-overlay 2>/dev/null)
PKG_LIBS	:= $(shell $(PKG_CONFIG) --libs openssl libbsd-overlay 2>/dev/null)
# postino itself loads OpenSSL at its first TLS hop (src/ossl.c), so it
# is linked without it; unit tests and fuzz targets keep PKG_LIBS.
POSTINO_LIBS	:= $(shell $(PKG_CONFIG) --libs libbsd-overlay 2>/dev/null)

WARN		 = -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wpointer-arith \
		   -Wstrict-prototypes -Wmissing-prototypes
HARDEN		 = -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
DEFS		 = -D_GNU_SOURCE -DPOSTINO_VERSION='"$(VERSION)"' \
		   -DPOSTINO_CONFDIR='"$(CONFDIR)"' \
		   -DPOSTINO_QUEUEDIR='"$(QUEUEDIR)"'
OPT		?= -O2 -g
CFLAGS_ALL	 = -std=c17 $(OPT) $(WARN) $(HARDEN) $(DEFS) $(PKG_CFLAGS) \
		   -Isrc $(CFLAGS)
LDFLAGS_ALL	 = -pie -Wl,-z,relro,-z,now $(LDFLAGS)

# Every module but sendmail.c (which holds main()) links into unit tests.
MODULES		 = log options config addr message alias sender caller submit deliver bounce deadline conn tls auth ossl smtp queue runner showq hubcheck modes ratelimit priv smtpd oauth
MODULE_OBJS	 = $(MODULES:%=$(BUILD)/%.o)
UNIT_TESTS	 = $(wildcard tests/unit/test_*.c)
UNIT_BINS	 = $(UNIT_TESTS:tests/unit/%.c=$(BUILD)/unit/%)

SAN_FLAGS	 = -fsanitize=address,undefined -fno-omit-frame-pointer \
		   -fno-sanitize-recover=all

.PHONY: all clean check deps unit e2e asan lint static demo bench install
.PHONY: deb

all: postino

postino: $(BUILD)/postino
	cp $(BUILD)/postino $@

$(BUILD)/postino: $(MODULE_OBJS) $(BUILD)/sendmail.o
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(POSTINO_LIBS)

$(BUILD)/%.o: src/%.c src/postino.h src/conn_impl.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/tls.o $(BUILD)/auth.o $(BUILD)/ossl.o: src/ossl.h

# Helpers shared by unit tests (tests/unit/stubconn.c: a scripted hub).
UNIT_HELPERS	 = $(BUILD)/unit/stubconn.o
# Objects, not intermediate files for make to delete after linking.
.SECONDARY: $(UNIT_HELPERS)

$(BUILD)/unit/%.o: tests/unit/%.c tests/unit/%.h src/postino.h \
    src/conn_impl.h
	@mkdir -p $(BUILD)/unit
	$(CC) $(CFLAGS_ALL) -Itests/unit -c -o $@ $<

$(BUILD)/unit/%: tests/unit/%.c $(MODULE_OBJS) $(UNIT_HELPERS) \
    tests/unit/unit.h
	@mkdir -p $(BUILD)/unit
	$(CC) $(CFLAGS_ALL) -Itests/unit $(LDFLAGS_ALL) -o $@ $< \
	    $(MODULE_OBJS) $(UNIT_HELPERS) $(PKG_LIBS) -lcmocka

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do \
	    echo "== $$t"; CMOCKA_MESSAGE_OUTPUT=stdout $$t; done

e2e: postino
	POSTINO_BIN=$(CURDIR)/$(BUILD)/postino $(PYTHON) -m pytest -q \
	    -p no:cacheprovider tests/e2e $(PYTEST_ARGS)

# The same tests, built with ASan+UBSan in a separate build directory.
asan:
	$(MAKE) BUILD=build/asan OPT="-O1 -g" CFLAGS="$(SAN_FLAGS)" \
	    LDFLAGS="$(SAN_FLAGS)" build/asan/postino unit
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    POSTINO_BIN=$(CURDIR)/build/asan/postino $(PYTHON) -m pytest -q \
	    -p no:cacheprovider tests/e2e $(PYTEST_ARGS)

lint:
	mandoc -T lint -W warning man/*.[0-9]

# cppcheck and clang-tidy over src/*.c (tests/static/, .clang-tidy).
static: all
	PKG_CFLAGS="$(PKG_CFLAGS)" sh tests/static/static.sh $(DEFS)
	sh tests/static/arrows.sh $(BUILD)

deps:
	@sh tests/install-deps.sh

check: deps
	$(MAKE) all
	$(MAKE) lint
	$(MAKE) static
	$(MAKE) unit
	$(MAKE) e2e
	$(MAKE) asan
	$(MAKE) fuzz-smoke

demo: postino
	@sh tests/demo.sh

# The floor of the figures (bench/refclient.c): without OpenSSL for a
# plain hop, with it for STARTTLS + AUTH.
REF_CFLAGS	 = -std=c17 $(OPT) $(WARN) $(HARDEN) -D_GNU_SOURCE $(CFLAGS)

$(BUILD)/bench/refclient: bench/refclient.c
	@mkdir -p $(BUILD)/bench
	$(CC) $(REF_CFLAGS) $(LDFLAGS_ALL) -o $@ bench/refclient.c

$(BUILD)/bench/refclient-tls: bench/refclient.c
	@mkdir -p $(BUILD)/bench
	$(CC) $(REF_CFLAGS) -DREF_TLS $(LDFLAGS_ALL) -o $@ bench/refclient.c \
	    -lssl -lcrypto

# Each measured run goes through bench/runone.c (see its first comment).
$(BUILD)/bench/runone: bench/runone.c
	@mkdir -p $(BUILD)/bench
	$(CC) $(REF_CFLAGS) $(LDFLAGS_ALL) -o $@ bench/runone.c

bench: postino $(BUILD)/bench/refclient $(BUILD)/bench/refclient-tls \
    $(BUILD)/bench/runone
	@BUILD=$(BUILD) POSTINO_BIN=$(BUILD)/postino sh bench/bench.sh

# The dedicated group, the queue runner's user (postino(8) SECURITY) and
# the loopback SMTP port's session user (postino(8) SMTP ON LOOPBACK):
# created on the system itself only (as root, without DESTDIR); a package
# creates them in its own maintainer scripts. The chown/chgrp lines are
# allowed to fail where the accounts do not exist (a DESTDIR staging).
install: postino
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
	    getent group $(POSTINO_GROUP) >/dev/null || \
	        groupadd --system $(POSTINO_GROUP); \
	    getent passwd $(POSTINO_USER) >/dev/null || \
	        useradd --system --gid $(POSTINO_GROUP) --no-create-home \
	        --home-dir $(QUEUEDIR) --shell /usr/sbin/nologin \
	        --comment "postino queue runner" $(POSTINO_USER); \
	    getent passwd postino-smtpd >/dev/null || \
	        useradd --system --user-group --no-create-home \
	        --home-dir /nonexistent --shell /usr/sbin/nologin \
	        --comment "postino loopback SMTP sessions" postino-smtpd; fi
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) \
	    $(DESTDIR)$(LIBDIR) $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(MANDIR)/man5
	install -m 2755 postino $(DESTDIR)$(SBINDIR)/postino
	-chown root:$(POSTINO_GROUP) $(DESTDIR)$(SBINDIR)/postino
	chmod 2755 $(DESTDIR)$(SBINDIR)/postino
	ln -sf postino $(DESTDIR)$(SBINDIR)/sendmail
	ln -sf postino $(DESTDIR)$(SBINDIR)/newaliases
	ln -sf ../sbin/postino $(DESTDIR)$(LIBDIR)/sendmail
	ln -sf ../sbin/postino $(DESTDIR)$(BINDIR)/mailq
	ln -sf ../sbin/postino $(DESTDIR)$(BINDIR)/newaliases
	install -m 0644 man/postino.8 $(DESTDIR)$(MANDIR)/man8/postino.8
	ln -sf postino.8 $(DESTDIR)$(MANDIR)/man8/sendmail.8
	ln -sf postino.8 $(DESTDIR)$(MANDIR)/man8/mailq.8
	ln -sf postino.8 $(DESTDIR)$(MANDIR)/man8/newaliases.8
	install -m 0644 man/ssmtp.conf.5 man/revaliases.5 \
	    $(DESTDIR)$(MANDIR)/man5/
	install -d -m 2770 $(DESTDIR)$(QUEUEDIR)
	-chown $(POSTINO_USER):$(POSTINO_GROUP) $(DESTDIR)$(QUEUEDIR)
	chmod 2770 $(DESTDIR)$(QUEUEDIR)
	for a in data queue failed rate; do \
	    install -d -m 2770 $(DESTDIR)$(QUEUEDIR)/$$a && \
	    { chown root:$(POSTINO_GROUP) $(DESTDIR)$(QUEUEDIR)/$$a || :; } && \
	    chmod 2770 $(DESTDIR)$(QUEUEDIR)/$$a || exit 1; done
	install -d $(DESTDIR)/etc/cron.d
	install -m 0644 dist/postino.cron $(DESTDIR)/etc/cron.d/postino
	if [ -d /run/systemd/system ] || [ -n "$(WITH_SYSTEMD)" ]; then \
	    install -d $(DESTDIR)$(SYSTEMDDIR) && \
	    install -m 0644 dist/postino-queue.service \
	        dist/postino-queue.timer dist/postino-smtpd.socket \
	        dist/postino-smtpd@.service $(DESTDIR)$(SYSTEMDDIR)/; fi

# The binary package, built from a copy of the tree (dpkg-buildpackage
# cleans its tree and writes to ..): build/deb/postino_*.deb, then
# lintian, which must report no error and no warning.
DEB_SRC		 = $(BUILD)/deb/postino-$(VERSION)
deb:
	rm -rf $(BUILD)/deb
	mkdir -p $(DEB_SRC)
	tar -c --exclude=./build --exclude=./.git --exclude=./postino . | \
	    tar -x -C $(DEB_SRC)
	cd $(DEB_SRC) && dpkg-buildpackage -b -us -uc
	lintian --fail-on error,warning $(BUILD)/deb/postino_*.changes

clean:
	rm -rf build postino

# Fuzz targets (fuzz/README.md): fuzz-build, fuzz-smoke, fuzz.
-include fuzz/fuzz.mk
