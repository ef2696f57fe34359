# Parley's everyday commands. `make help` lists them.
PG_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable

.PHONY: help build run test test-postgres lint bench fuzz

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'
	@echo
	@echo 'Variables (override with make VAR=value):'
	@echo '  PG_URL = $(PG_URL)'

build: ## build bin/parley (pure Go, CGO_ENABLED=0)
	CGO_ENABLED=0 go build -o bin/parley ./cmd/parley

run: ## run Parley on SQLite with the sandbox
	go run ./cmd/parley serve

test: ## run the test suite on SQLite
	go test ./...

test-postgres: ## run the test suite on PostgreSQL at PG_URL
	PARLEY_TEST_POSTGRES_URL='$(PG_URL)' go test ./...

lint: ## gofmt, go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	go vet ./...

fuzz: ## fuzz the Meta webhook parser for 30 s
	go test ./internal/whatsapp -run '^$$' -fuzz FuzzParseWebhook -fuzztime 30s
