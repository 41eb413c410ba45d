# keyferry: every developer and CI entry point. `make sandbox` and `make test`
# each pull in `make deps`, so a fresh machine needs nothing else first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
FUZZTIME  ?= 5s
TESTFLAGS ?= -timeout 20m
# The engine's test seam (Engine.AfterStep, the crash-injection hook) and the
# tests that use it compile only with this tag: test-go and vet pass it;
# build-lambdas (the bootstraps the CDK app bundles) never does
# (TestReleaseBuildCarriesNoTestSeam).
TESTTAGS  := keyferrytest,hsmfault
LAMBDA_DIR := build/lambda
AGENT_BIN  := build/keyferry-agent
# Lambda functions: one main per directory under functions/cmd.
FUNCTIONS := $(notdir $(patsubst %/,%,$(wildcard functions/cmd/*/)))
APT_PACKAGES := softhsm2 opensc opencryptoki openssl libnss3 libnss3-tools p11-kit
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: lint-template help deps test test-go test-nocgo fuzz-short fuzz sandbox bench synth build build-agent build-lambdas fmt vet soak soak-short

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

deps: ## install system packages (only if missing), the pinned CDK CLI and Go modules
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "deps: system packages present ($(APT_PACKAGES))"; fi
	@command -v moto_server >/dev/null || { echo "deps: moto_server not found (pip install 'moto[server]==5.2.1')"; exit 1; }
	@if [ ! -x node_modules/.bin/cdk ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then \
	  npm ci --no-audit --no-fund --loglevel=error; else echo "deps: CDK CLI $$(node_modules/.bin/cdk --version | cut -d' ' -f1) present"; fi
	@# aws-cdk ships Go init templates; a go.mod fences node_modules off from ./...
	@printf 'module node_modules.invalid\n' > node_modules/go.mod
	@$(GO) mod download && echo "deps: Go modules downloaded"

test: deps vet lint-template test-go test-nocgo soak-short fuzz-short ## everything CI runs: vet, the template's outside validators, all Go tests (HSM, emulators, e2e), the short soak, short fuzzing

# Every package but the soak, which runs on its own next (its 40 s of
# faults and the audit are timing-bound; sharing 2 cores with every other
# package's tests only slows it).
test-go:
	$(GO) test -tags $(TESTTAGS) $(TESTFLAGS) $$($(GO) list ./... | grep -v '/test/soak$$')

# The agent's daemon and the plain-Go part of agent/hsm build and test with
# CGO_ENABLED=0: cgo is only in agent/hsm's PKCS#11 files and the agent
# binary (their real-token tests run with cgo in test-go).
test-nocgo:
	CGO_ENABLED=0 $(GO) vet ./agent/daemon/... ./agent/hsm/...
	CGO_ENABLED=0 $(GO) test $(TESTFLAGS) ./agent/daemon/... ./agent/hsm/...

# Every fuzz target in the module, each for FUZZTIME (short in `make test`, long in `make fuzz`).
# A run that ends in a bare "context deadline exceeded" with no failing input
# written is Go's fuzz-coordinator race at the -fuzztime boundary
# (golang/go#75804, fixed in Go 1.27), not a finding: it is reported and
# the target runs once more. A real finding writes testdata/fuzz/<target>/
# and fails the build.
fuzz-short:
	@grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' $$(ls -d agent functions shared test 2>/dev/null) | sort | \
	while IFS=: read -r file fn; do \
	  f=$${fn#func }; pkg=./$$(dirname $$file); \
	  echo "fuzz: $$pkg $$f ($(FUZZTIME))"; \
	  for try in 1 2; do \
	    if $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5x $$pkg >/tmp/keyferry-fuzz.log 2>&1; then break; fi; \
	    if [ $$try = 1 ] && grep -q 'context deadline exceeded' /tmp/keyferry-fuzz.log && ! grep -q 'Failing input written' /tmp/keyferry-fuzz.log; then \
	      echo "  Go fuzz-coordinator deadline race (golang/go#75804), no failing input: running again"; continue; fi; \
	    cat /tmp/keyferry-fuzz.log; exit 1; \
	  done; \
	  grep -E '^fuzz: elapsed' /tmp/keyferry-fuzz.log | tail -1 | sed 's/^/  /'; \
	done

fuzz: deps ## longer fuzzing of every decoder: 16 targets x FUZZTIME (40s by default, about 13 min)
	$(MAKE) fuzz-short FUZZTIME=$${FUZZTIME:-40s}

sandbox: deps ## run the whole system on this machine (pass flags with ARGS="--once --json")
	@[ -d test/cmd/sandbox ] || { echo "make sandbox: not yet built (test/cmd/sandbox is issue 'Sandbox')"; exit 2; }
	$(GO) run ./test/cmd/sandbox $(ARGS)

bench: deps ## side-by-side figures (agent vs HSM, fleet vs quota, CLI vs keyferry, latency, RSS); BENCH_JSON=FILE writes them
	@mkdir -p build
	$(GO) test -run '^$$' -bench 'DirectWrap' -benchtime 50x ./test/bench
	$(GO) test -run '^$$' -bench 'WriteByTableSize' -benchtime 20x ./test/motoserver
	$(GO) run ./test/cmd/bench $${BENCH_JSON:+--json "$$BENCH_JSON"} --cpuprofile build/bench.cpu.pprof $(ARGS)

soak: deps ## bounded fault-injection soak run
	@[ -d test/cmd/soak ] || { echo "make soak: not yet built (issue 'Reliability and security suite')"; exit 2; }
	$(GO) run ./test/cmd/soak $(ARGS)

soak-short: ## the short soak (40 s of faults, then the full audit) as a Go test; part of make test
	$(GO) test -count=1 -timeout 10m ./test/soak

# The synthesized templates against AWS's own rules: cfn-lint (the AWS
# CloudFormation linter, with the resource specifications and the IAM action
# catalogue) with no error and no warning but those .cfnlintrc explains; then
# cdk-nag's AwsSolutions and PCI DSS 3.2.1 packs, applied to the app at synth
# (infra/stack/nag.go): infra/nagreport prints their summary and fails on any
# finding neither fixed nor suppressed with its reason in the code.
lint-template: synth ## cfn-lint every synthesized template (no errors, no unexplained warnings); cdk-nag AwsSolutions + PCI DSS 3.2.1 (no open finding)
	@command -v cfn-lint >/dev/null || { echo "lint-template: cfn-lint not found (it comes with the pyenv Python on these machines; elsewhere: pip install cfn-lint==1.51.0)"; exit 1; }
	cfn-lint --version
	cfn-lint
	$(GO) run ./infra/nagreport/cmd cdk.out

synth: deps build-lambdas ## cdk synth (no network) into cdk.out
	@[ -d infra ] && ls infra/*.go >/dev/null 2>&1 || { echo "make synth: not yet built (infra/ is issue 'Infrastructure as code')"; exit 2; }
	npx cdk synth --quiet

build: build-agent build-lambdas ## agent binary and every Lambda bootstrap (arm64)

build-agent:
	@[ -d agent/cmd/keyferry-agent ] || { echo "make build: agent not yet built (agent/cmd/keyferry-agent)"; exit 2; }
	CGO_ENABLED=1 $(GO) build -trimpath -o $(AGENT_BIN) ./agent/cmd/keyferry-agent

build-lambdas:
	@[ -n "$(FUNCTIONS)" ] || { echo "make build: no Lambda functions yet (functions/cmd/*)"; exit 2; }
	@for f in $(FUNCTIONS); do \
	  mkdir -p $(LAMBDA_DIR)/$$f; \
	  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -buildvcs=false \
	    -ldflags '-s -w -buildid=' -o $(LAMBDA_DIR)/$$f/bootstrap ./functions/cmd/$$f; \
	  echo "built $(LAMBDA_DIR)/$$f/bootstrap"; \
	done

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')

vet: ## go vet (the release build and the tests' -tags $(TESTTAGS)), and fail on unformatted files
	$(GO) vet ./...
	$(GO) vet -tags $(TESTTAGS) ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
