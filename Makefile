# gpufed — the two commands that matter: `make demo` and `make test`.
# Everything heavy is cached outside the repo in $(GPUFED_CACHE) (default ~/.cache/gpufed),
# keyed by the pinned versions, so only the first run on a machine is slow.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

NODE_BIN := $(shell tools/node.sh)
export PATH := $(NODE_BIN):$(PATH)
JEST := node --experimental-vm-modules node_modules/jest/bin/jest.js

.PHONY: help
help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# Not `npm ci`: the registry mirror here answers 404 for other platforms' optional binaries (e.g.
# @unrs/resolver-binding-darwin-arm64 under Jest 30), so npm leaves them out of the lockfile and
# `npm ci` then rejects it. `npm install` honours the lockfile; in CI the lockfile must not change.
node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund
	@if [ -n "$${CI:-}" ] && ! git diff --quiet -- package-lock.json; then echo "package-lock.json is out of date: run npm install and commit it" >&2; exit 1; fi
	@touch $@

.PHONY: deps
deps: node_modules/.installed ## Install Node dependencies (Node $(shell cat .node-version) from the cache)

.PHONY: tools
tools: ## Build (or reuse from the cache) etcd, kube-*, KWOK, kube-state-metrics, Helm and the chain; install Prometheus from Debian
	tools/debian.sh
	tools/build.sh

.PHONY: build
build: deps ## Compile TypeScript to dist/
	npx tsc -p tsconfig.build.json
	@# Executable, as npm makes a package's bin entries: gpufed and the kubectl plugin kubectl-gpufed.
	chmod +x dist/cli/src/gpufed.js

.PHONY: check
check: build ## Lint, type-check, and check that generated code matches crds/
	npx tsc -p tsconfig.json --noEmit
	npx eslint .
	node dist/tools/gen-api-types.js --check
	h=$${GPUFED_BIN_DIR:-$${GPUFED_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/gpufed}/bin}/helm; for c in charts/*/; do $$h lint --strict "$$c" -f "$$c/ci/lint-values.yaml"; done

.PHONY: test-unit
test-unit: deps ## Unit tests (pure logic, no processes)
	$(JEST) --selectProjects unit

.PHONY: test-integration
test-integration: build tools ## Integration tests against the real local federation
	$(JEST) --selectProjects integration --runInBand

.PHONY: test
test: build tools check ## Everything but the fault matrix: checks, unit and integration tests
	$(JEST) --selectProjects unit integration --runInBand

.PHONY: test-faults
test-faults: build tools ## The fault matrix (docs/fault-matrix.md): agents frozen and killed, on the real federation
	$(JEST) --selectProjects faults --runInBand

.PHONY: bench
bench: build tools ## Benchmarks (numbers go to bench/RESULTS.md, never into test assertions)
	node dist/bench/federation-startup.js 3 2
	node dist/bench/settlement-gas.js

.PHONY: demo
demo: build tools ## Start the local federation, run the main job (apply → Succeeded → paid on chain), leave it running
	node dist/cli/src/gpufed.js dev up
	@# Renter carol grants each provider a budget, applies examples/computejob-train.yaml, follows it to
	@# Succeeded, reads its log, and waits until it is paid: records, transaction, balances, one summary line.
	node dist/cli/src/gpufed.js dev demo
	@echo
	@echo "The federation keeps running. Try:"
	@echo "  . .gpufed/dev/env      # kubectl contexts gpufed-registry, gpufed-alice, gpufed-bob; Node 26 on PATH"
	@echo "  npx gpufed dev status                                                                                        # components, chain height"
	@echo "  kubectl --kubeconfig .gpufed/dev/tenant-carol.kubeconfig get computejobs                                     # as renter carol: PHASE PROVIDER COST"
	@echo "  kubectl --kubeconfig .gpufed/dev/tenant-carol.kubeconfig apply -f crds/samples/computejob-train-rtx4090.yaml   # submit another"
	@echo "  npx gpufed jobs list --kubeconfig .gpufed/dev/tenant-carol.kubeconfig                                        # then: gpufed jobs logs <name>"
	@echo "  kubectl --context gpufed-registry get usagerecords -A                                                          # metered every 10 s, paid on chain"
	@echo "  npx gpufed budget show --dev-key carol --kubeconfig .gpufed/dev/tenant-carol.kubeconfig                       # what carol's grants have left"
	@echo "  npx gpufed dev demo                                                                                          # the main job again (a new name)"
	@echo "Stop it with: make down (or npx gpufed dev down)"

.PHONY: status
status: ## Show the local federation's components and their health
	node dist/cli/src/gpufed.js dev status

.PHONY: down
down: ## Stop the local federation started by `make demo`
	node dist/cli/src/gpufed.js dev down

.PHONY: clean
clean: ## Remove build output (the tool cache stays)
	rm -rf dist node_modules/.installed
