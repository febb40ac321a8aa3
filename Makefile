# tollguard: toll-fraud guard for Asterisk.
# `make run` builds tollguard and starts the daemon on ./tollguard.db;
# `make test` runs every test with the race detector.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BIN      := bin/tollguard
# TAGS=odbc adds ODBC for realtime voicemail tables (cgo; needs unixodbc-dev).
TAGS     ?=
# go-sqlite3 is cgo: never build it with CGO_ENABLED=0 (it would compile a stub that fails at run time).
export CGO_ENABLED = 1

# install: DESTDIR stages the whole tree (the unit goes to
# $(DESTDIR)/lib/systemd/system); the state directory is the unit's
# StateDirectory, /var/lib/tollguard.
PREFIX   ?= /usr/local
SYSCONF  ?= /etc/tollguard
# A count, not a duration: -fuzztime=60s can fail with a bare "context
# deadline exceeded" on Go 1.26 (golang/go#75804).
FUZZTIME ?= 300000x

.PHONY: all build run test bench soak fuzz check docs install clean

all: build

build:
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/tollguard

# The daemon on the embedded SQLite default (./tollguard.db), FastAGI on 127.0.0.1:4573.
run: build
	./$(BIN) serve

test:
	$(GO) test -race -count=1 -timeout 15m ./...
	$(GO) test -race -count=1 -tags odbc ./voicemail/

# Performance figures (design.md §6), one stable line per figure.
bench:
	$(GO) run -trimpath ./cmd/tgbench

# The long fault suite (kill -9 under load, connection floods, ARI restarts) and fuzzing.
soak:
	TOLLGUARD_SOAK=1 $(GO) test -race -count=1 -timeout 60m -run 'Soak' ./...
	$(MAKE) fuzz

fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

check:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) mod verify

# Regenerate the CLI reference from the CLI itself (a test checks it is current).
docs:
	$(GO) run ./cmd/tollguard gendocs docs/cli.md

# Install what `make build` built (run that as yourself: sudo's PATH on
# Debian has no Go, and a root build would leave a root-owned bin/).
install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SYSCONF) $(DESTDIR)/lib/systemd/system $(DESTDIR)$(PREFIX)/share/tollguard
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/tollguard
	sed -e 's|/usr/local/|$(PREFIX)/|g' -e 's|/etc/tollguard/|$(SYSCONF)/|g' contrib/tollguard.service > $(DESTDIR)/lib/systemd/system/tollguard.service
	chmod 0644 $(DESTDIR)/lib/systemd/system/tollguard.service
	test -e $(DESTDIR)$(SYSCONF)/tollguard.toml || install -m 0600 contrib/tollguard.toml $(DESTDIR)$(SYSCONF)/tollguard.toml
	test -e $(DESTDIR)$(SYSCONF)/tollguard.env || install -m 0600 contrib/tollguard.env $(DESTDIR)$(SYSCONF)/tollguard.env
	cp -r contrib/. $(DESTDIR)$(PREFIX)/share/tollguard/
	./$(BIN) dialplan > $(DESTDIR)$(PREFIX)/share/tollguard/tollguard.conf
	@echo "installed; next: see README 'Run it under systemd'"

$(BIN):
	@echo "$(BIN) is missing: run 'make build' first (as yourself, not with sudo)"; exit 1

clean:
	rm -rf bin
