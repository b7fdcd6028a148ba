# btl: build, test, install, benchmark.
GO      ?= go
PREFIX  ?= $(HOME)/.local
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build test install bench clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/btl ./cmd/btl

# Runs every check and test; as root it also installs and starts what the
# tests need (see scripts/test).
test:
	scripts/test

install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 bin/btl $(DESTDIR)$(PREFIX)/bin/btl
	@echo "installed $(DESTDIR)$(PREFIX)/bin/btl"
	@case ":$$PATH:" in *":$(PREFIX)/bin:"*) ;; *) \
	  echo "note: $(PREFIX)/bin is not on your PATH; add this line to your shell's startup file (~/.bashrc, ~/.zshrc):"; \
	  echo "  export PATH=\"$(PREFIX)/bin:\$$PATH\"";; esac

bench:
	GO=$(GO) scripts/bench $(BENCHFLAGS)

clean:
	rm -rf bin
