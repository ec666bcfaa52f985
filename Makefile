# Octopus workspace webhook. `make help` lists the targets.
SHELL := /usr/bin/env bash -o pipefail
.DEFAULT_GOAL := help

GO            ?= go
BIN           := $(CURDIR)/bin
KUBERNETES_VERSION ?= v1.36.3
CONTROLPLANE  := $(BIN)/k8s/$(KUBERNETES_VERSION)
HELM_VERSION  ?= v3.22.0
HELM_BIN      := $(or $(HELM),$(BIN)/helm/$(HELM_VERSION)/helm)
IMAGE         ?= workspace-webhook:dev
PLATFORMS     ?= linux/amd64,linux/arm64
TEST_TIMEOUT  ?= 45m
BENCH_COUNT   ?= 6
FUZZTIME      ?= 60s
# make test's fuzzing is a count of executions, not a duration: with a duration, Go 1.26's
# coordinator can fail a target with "context deadline exceeded" when the time runs out on a
# busy machine (go.dev/issue/75804, fixed in Go 1.27); a count has no deadline to race.
FUZZ_SMOKE    ?= 2000x
export KUBERNETES_VERSION HELM_VERSION

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the webhook binary into bin/.
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/workspace-webhook ./cmd/workspace-webhook

.PHONY: fmt
fmt: ## Format the code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Vet the code and check formatting.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

.PHONY: controlplane
controlplane: ## Build kube-apiserver, etcd, scheduler, controller manager and kwok from the Go module proxy into bin/ (cached).
	@bash e2e/controlplane/build.sh $(CONTROLPLANE)

.PHONY: helm
helm: ## Build helm from the Go module proxy into bin/helm/ (cached; HELM=/path/to/helm uses yours instead).
	@bash e2e/helm/build.sh $(BIN)/helm/$(HELM_VERSION)/helm

.PHONY: unit
unit: ## Unit and golden tests only (no control plane).
	$(GO) test -count=1 ./webhook/... ./certs/... ./cmd/...

.PHONY: test
test: vet controlplane helm ## All tests: unit, golden, end-to-end against a real control plane, and every fuzz target for FUZZ_SMOKE.
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	@bash hack/fuzz.sh $(FUZZ_SMOKE)

.PHONY: e2e
e2e: controlplane helm ## End-to-end tests only.
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -v ./e2e/...

.PHONY: fuzz
fuzz: ## Run every fuzz target (HTTP handlers, review decoding, decisions, claim judgement...) for FUZZTIME each (default 60s), one at a time.
	@bash hack/fuzz.sh $(FUZZTIME)

.PHONY: demo
demo: controlplane ## Run a local control plane with fake nodes and the webhook, create an agent and a script pod, keep running.
	@# Built, not `go run`: go run exits 1 when Ctrl-C reaches it, even after a clean stop.
	$(GO) build -o $(BIN)/demo ./cmd/demo
	$(BIN)/demo

.PHONY: bench
bench: controlplane ## Benchmarks, each next to its baseline in the same run; results in .bench/.
	@bash e2e/bench/run.sh $(BENCH_COUNT)

.PHONY: reliability
reliability: controlplane ## Reliability scenarios at full size (burst, scale, faults, hostile input, posture, least privilege) and every fuzz target for FUZZTIME (default 2m); rewrites RELIABILITY.md.
	@bash e2e/reliability/run.sh

.PHONY: manifests
manifests: ## Render the kustomizations to stdout (FLAVOUR=cert-manager (default), self-managed or service-ca).
	$(GO) run ./manifests/render $(or $(FLAVOUR),cert-manager)

.PHONY: chart
chart: helm ## Render the Helm chart to stdout (SET=key=value,... for values; namespace octopus-workspace-webhook).
	@$(HELM_BIN) template workspace-webhook manifests/chart/workspace-webhook \
		--namespace octopus-workspace-webhook $(if $(SET),--set '$(SET)')

.PHONY: image
image: ## Build the multi-arch image (needs a Docker engine with buildx; not available on our build machines).
	docker buildx build --platform $(PLATFORMS) -t $(IMAGE) .

.PHONY: clean
clean: ## Remove built binaries (keeps the cached control plane and helm unless CLEAN_CONTROLPLANE=1).
	rm -f $(BIN)/workspace-webhook
	@if [ "$(CLEAN_CONTROLPLANE)" = 1 ]; then rm -rf $(BIN)/k8s $(BIN)/helm $(BIN)/src; fi
