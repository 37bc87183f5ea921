# Image the deploy target runs.
IMG ?= kinto-operator:dev
# The operator's version string (`manager --version`, its first log line).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# One Kubernetes minor for the client libraries (go.mod: k8s.io/* v0.36.x) and the binaries the
# tests run (built from source by hack/build-kube-binaries.sh).
KUBE_VERSION ?= v1.36.5
CONTROLLER_TOOLS_VERSION ?= v0.21.0
STATICCHECK_VERSION ?= v0.8.2
# The Helm CLI the chart's tests render charts/kinto-operator with (go install'ed).
HELM_VERSION ?= v4.3.2
# The Kinto releases the real-server tests install: the operator's default, and the release
# before it, from which the upgrade tests start.
KINTO_VERSION ?= $(shell sed -n 's/^const DefaultKintoVersion = "\(.*\)"/\1/p' api/v1alpha1/kintoinstance_types.go)
KINTO_PREVIOUS_VERSION ?= 26.4.0
# kinto-wizard, Kinto's YAML dump and load tool, which reads and writes the portable exports.
KINTO_WIZARD_VERSION ?= 6.0.1
# The S3-compatible server the object-storage tests start (Versity Gateway, Apache-2.0; built from
# source by hack/build-s3-server.sh).
VERSITYGW_VERSION ?= v1.8.0

LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
STATICCHECK ?= $(LOCALBIN)/staticcheck-$(STATICCHECK_VERSION)
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)
KUBE_ASSETS ?= $(LOCALBIN)/k8s/$(KUBE_VERSION)
KUBECTL ?= $(KUBE_ASSETS)/kubectl
VERSITYGW ?= $(LOCALBIN)/versitygw-$(VERSITYGW_VERSION)/versitygw
# The local single-node cluster of `make demo`, `make cluster-up` and the end-to-end tests.
LOCAL_CLUSTER ?= $(CURDIR)/.local-cluster

# go test prints every test by name as it runs, so a CI log shows what ran.
GOTEST ?= go test -v -count=1

.PHONY: all
all: build

##@ Development

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_0-9-]+:.*##/ {printf "  %-18s %s\n", $$1, $$2} /^##@/ {printf "\n%s\n", substr($$0, 5)}' $(MAKEFILE_LIST)

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRD and RBAC manifests from the kubebuilder markers (the namespaced install's Role and ClusterRole, and the Helm chart's copies of them and of config/monitoring).
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases
	go run ./hack/namespacedrbac
	cp config/crd/bases/*.yaml charts/kinto-operator/crds/
	cp config/rbac/role.yaml charts/kinto-operator/files/manager-role.yaml
	cp config/namespaced/watched/role.yaml charts/kinto-operator/files/namespaced-role.yaml
	cp config/namespaced/operator/rbac/cluster_role.yaml charts/kinto-operator/files/cluster-role.yaml
	cp config/portal/member_role.yaml charts/kinto-operator/files/portal-member-role.yaml
	cp config/monitoring/service_monitor.yaml config/monitoring/prometheus_rule.yaml config/monitoring/grafana_dashboard.json charts/kinto-operator/files/

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate the deepcopy methods of the API types.
	$(CONTROLLER_GEN) object paths="./api/..."

.PHONY: fmt
fmt: ## Format the Go code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet (the operator's module, hack/imagepack's and hack/monitoringcheck's).
	go vet -tags kinto,e2e,s3,fleet,browser ./...
	cd hack/imagepack && go vet ./...
	cd hack/monitoringcheck && go vet ./...

.PHONY: verify
verify: host-packages $(CONTROLLER_GEN) $(STATICCHECK) vet ## Fail when generated files are stale, go.mod untidy, or the code not gofmt-, staticcheck- or shellcheck-clean.
	hack/verify-generated.sh
	go mod tidy -diff
	cd hack/imagepack && go mod tidy -diff
	cd hack/monitoringcheck && go mod tidy -diff
	$(STATICCHECK) -tags kinto,e2e,s3,fleet,browser ./...
	cd hack/imagepack && $(STATICCHECK) ./...
	cd hack/monitoringcheck && $(STATICCHECK) ./...
	shellcheck hack/*.sh .ci/run

##@ Tests

.PHONY: test
test: verify test-unit test-envtest test-browser fuzz-short test-kinto test-s3 test-e2e ## Run every test suite: unit, API server, the members' page in a browser, a short fuzzing run, real Kinto, S3, end to end.

.PHONY: test-unit
test-unit: ## Unit tests of the pure builders and renderers (no API server), of the image definitions (Dockerfile and hack/build-images.sh agree), of hack/namespacedrbac, of hack/imagepack, and of config/monitoring's rules and dashboard (hack/monitoringcheck).
	$(GOTEST) . ./internal/... ./hack/namespacedrbac/...
	cd hack/imagepack && $(GOTEST) ./...
	cd hack/monitoringcheck && $(GOTEST) ./...

.PHONY: test-envtest
test-envtest: kube-binaries s3-server $(HELM) $(CONTROLLER_GEN) ## Tests against a real kube-apiserver and etcd (envtest), the install bundles, the Helm chart, the kubectl plugin and the members' page included (its downloads from a real S3 server, versitygw).
	HELM=$(HELM) KUBEBUILDER_ASSETS=$(KUBE_ASSETS) CONTROLLER_GEN=$(CONTROLLER_GEN) VERSITYGW_BIN=$(VERSITYGW) $(GOTEST) ./api/... ./controllers/... ./test/install/... ./test/plugin/... ./test/portal/... ./test/fuzz/...

.PHONY: test-browser
test-browser: host-packages kube-binaries s3-server ## The members' page in headless Chromium (Debian's chromium, driven by chromedp) on the tests' API server, with a local OpenID provider and a real S3 server the backups are downloaded from (PORTAL_SCREENSHOT=docs/members-page.png retakes the README's screenshot).
	KUBEBUILDER_ASSETS=$(KUBE_ASSETS) VERSITYGW_BIN=$(VERSITYGW) CHROMIUM_BIN=/usr/bin/chromium $(GOTEST) -tags browser -run '^TestBrowser' ./test/portal/...

# How long `make fuzz` runs each fuzz target. `make fuzz-short` (part of `make test`) runs a fixed
# number of inputs per target instead of a time: Go 1.26's fuzzing coordinator can report its own
# -fuzztime deadline as a failure ("context deadline exceeded", go.dev/issue/75804) when a loaded
# machine starves its workers, and a count has no deadline. An input that fails is written under
# the package's testdata/fuzz, where it becomes a seed that every later `go test` runs: commit it
# with its fix.
FUZZTIME ?= 10m
FUZZ_INI_TIME ?= $(FUZZTIME)
FUZZ_CHILDREN_TIME ?= $(FUZZTIME)

.PHONY: fuzz
fuzz: kube-binaries ## Fuzz for FUZZTIME each: the rendered kinto.ini, and the children of any spec the API server accepts.
	go test -run '^$$' -fuzz '^FuzzRenderedIniHoldsTheOperatorsKeysAndTheAllowedSettings$$' -fuzztime $(FUZZ_INI_TIME) ./internal/kintoconfig/
	KUBEBUILDER_ASSETS=$(KUBE_ASSETS) go test -run '^$$' -fuzz '^FuzzAcceptedSpecYieldsAcceptedRestrictedChildren$$' -fuzztime $(FUZZ_CHILDREN_TIME) ./test/fuzz/

.PHONY: fuzz-short
fuzz-short: ## The fuzz targets for a fixed number of inputs each, about 15 s on 2 cores (part of make test).
	$(MAKE) fuzz FUZZ_INI_TIME=60000x FUZZ_CHILDREN_TIME=600x

.PHONY: test-kinto
test-kinto: host-packages kinto-server ## Tests that boot the real Kinto server on a real PostgreSQL.
	KINTO_BIN=$(LOCALBIN)/kinto-$(KINTO_VERSION)/bin/kinto \
	KINTO_PREVIOUS_BIN=$(LOCALBIN)/kinto-$(KINTO_PREVIOUS_VERSION)/bin/kinto \
	KINTO_WIZARD_BIN=$(LOCALBIN)/kinto-wizard-$(KINTO_WIZARD_VERSION)/bin/kinto-wizard \
	$(GOTEST) -tags kinto ./test/kinto/...

.PHONY: test-s3
test-s3: s3-server ## Backup object storage against a real S3-compatible server (versitygw) the tests start.
	VERSITYGW_BIN=$(VERSITYGW) $(GOTEST) -tags s3 ./internal/backup/objectstore/... ./internal/backup/backuptool/...

.PHONY: test-e2e
test-e2e: host-packages kube-binaries build images previous-operator-image s3-server $(HELM) ## End to end on the local cluster: the operator in-cluster from the Helm chart, Kinto and PostgreSQL in pods.
	KUBE_ASSETS=$(KUBE_ASSETS) LOCAL_CLUSTER=$(LOCAL_CLUSTER) IMG=$(IMG) PREVIOUS_IMG=$(PREVIOUS_IMG) HELM=$(HELM) VERSITYGW_BIN=$(VERSITYGW) hack/e2e.sh

.PHONY: test-crash
test-crash: host-packages kube-binaries build images s3-server $(HELM) ## Kill the operator 20 times while 30 instances (10 at a time) are provisioned, backed up, restored, upgraded and deleted (not in `test`).
	E2E_CRASH=1 KUBE_ASSETS=$(KUBE_ASSETS) LOCAL_CLUSTER=$(LOCAL_CLUSTER) IMG=$(IMG) HELM=$(HELM) VERSITYGW_BIN=$(VERSITYGW) \
	hack/e2e.sh -run TestOperatorSurvivesKills -timeout 90m -parallel 10

.PHONY: bench
bench: kube-binaries s3-server ## Benchmarks of the builders and of a full reconcile against the real API server.
	go test -run '^$$' -bench . -benchmem ./internal/...
	KUBEBUILDER_ASSETS=$(KUBE_ASSETS) go test -run '^$$' -bench . -benchmem -benchtime 50x ./controllers/...
	VERSITYGW_BIN=$(VERSITYGW) go test -tags s3 -run '^$$' -bench . -benchmem ./internal/backup/objectstore/...

.PHONY: bench-fleet
bench-fleet: kube-binaries build ## The operator at fleet scale (#14) on the tests' API server: prints a table, writes bin/bench-fleet.json (N=500; not part of `make test`).
	KUBEBUILDER_ASSETS=$(KUBE_ASSETS) MANAGER_BIN=$(LOCALBIN)/manager BENCH_FLEET_OUT=$(LOCALBIN)/bench-fleet.json \
		go test -tags fleet -count=1 -timeout 3h -v -run TestFleet ./test/fleet/

.PHONY: bench-cluster
bench-cluster: host-packages kube-binaries build images $(HELM) ## The operator's overhead on the local cluster (#14): the smallest sample to Kinto's heartbeat against the same children applied directly, 5 runs each; prints a table, writes bin/bench-cluster.json (not part of `make test`).
	E2E_BENCH_OUT=$(LOCALBIN)/bench-cluster.json KUBE_ASSETS=$(KUBE_ASSETS) LOCAL_CLUSTER=$(LOCAL_CLUSTER) IMG=$(IMG) HELM=$(HELM) \
		hack/e2e.sh -run '^TestOperatorOverhead$$'

##@ Build

.PHONY: build
build: ## Build the operator binary (as the Dockerfile does: image_test.go checks they agree).
	CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=$(VERSION)" -o $(LOCALBIN)/manager .

.PHONY: plugin
plugin: ## Build the kubectl plugin, bin/kubectl-kinto (put bin/ on PATH for `kubectl kinto`).
	CGO_ENABLED=0 go build -trimpath -o $(LOCALBIN)/kubectl-kinto ./cmd/kubectl-kinto

.PHONY: plugin-release
plugin-release: ## Build the plugin's release archives and krew manifest into dist/ (VERSION=v0.1.0).
	hack/plugin-release.sh $(VERSION)

.PHONY: run
run: manifests generate ## Run the operator against the cluster of $KUBECONFIG.
	go run . --leader-elect=false --operator-image=$(IMG)

.PHONY: docker-build
docker-build: ## Build the operator image (needs a container engine).
	docker build -t $(IMG) .

##@ Deployment (against the cluster of $KUBECONFIG)

.PHONY: install
install: manifests kube-binaries ## Install the CRDs.
	$(KUBECTL) apply --server-side -k config/crd

.PHONY: uninstall
uninstall: kube-binaries ## Remove the CRDs (and with them every KintoInstance).
	$(KUBECTL) delete --ignore-not-found -k config/crd

.PHONY: deploy
deploy: manifests kube-binaries $(if $(filter chart,$(DEPLOY_WITH)),$(HELM)) ## Deploy the operator (image $(IMG)) with its CRD and RBAC, and wait until it runs (DEPLOY_WITH=chart: from the Helm chart).
	KUBECTL=$(KUBECTL) HELM=$(HELM) DEPLOY_WITH=$(DEPLOY_WITH) hack/deploy-operator.sh $(IMG)

.PHONY: build-installer
build-installer: manifests kube-binaries ## Write dist/install.yaml (what `make deploy` applies, image $(IMG)) dist/install-namespaced.yaml (config/namespaced) and dist/install-monitoring.yaml (config/default-monitoring).
	KUBECTL=$(KUBECTL) hack/build-installer.sh dist $(IMG)

# Every object of config/default but the CRDs, whose deletion would delete every instance.
.PHONY: undeploy
undeploy: kube-binaries ## Remove the operator (its namespace, RBAC, Deployment), not the CRDs: the instances and their data stay.
	$(KUBECTL) kustomize config/default | awk 'BEGIN { RS = "\n---\n"; ORS = "\n---\n" } !/(^|\n)kind: CustomResourceDefinition\n/' | \
		$(KUBECTL) delete --ignore-not-found -f -

.PHONY: demo
demo: host-packages kube-binaries build images ## Start the local cluster, deploy the operator, run a Kinto instance and talk to it.
	KUBE_ASSETS=$(KUBE_ASSETS) LOCAL_CLUSTER=$(LOCAL_CLUSTER) IMG=$(IMG) hack/demo.sh

.PHONY: cluster-up
cluster-up: host-packages kube-binaries images ## Start the local single-node cluster (root; KUBECONFIG=.local-cluster/kubeconfig).
	KUBE_ASSETS=$(KUBE_ASSETS) hack/local-cluster.sh up $(LOCAL_CLUSTER)

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and remove everything it made (volumes included).
	KUBE_ASSETS=$(KUBE_ASSETS) hack/local-cluster.sh down $(LOCAL_CLUSTER)

##@ Tools

$(CONTROLLER_GEN):
	GOBIN=$(LOCALBIN)/tmp-controller-gen go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/tmp-controller-gen/controller-gen $@ && rmdir $(LOCALBIN)/tmp-controller-gen

$(HELM):
	GOBIN=$(LOCALBIN)/tmp-helm go install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
	mv $(LOCALBIN)/tmp-helm/helm $@ && rmdir $(LOCALBIN)/tmp-helm

$(STATICCHECK):
	GOBIN=$(LOCALBIN)/tmp-staticcheck go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(LOCALBIN)/tmp-staticcheck/staticcheck $@ && rmdir $(LOCALBIN)/tmp-staticcheck

# Every target that needs a host package names this one first: a fresh machine gets them in the
# first seconds rather than failing minutes later.
.PHONY: host-packages
host-packages: ## Install the Debian packages the tests and the local cluster need (root).
	hack/install-host-packages.sh

.PHONY: images
images: host-packages build ## Build the images the local cluster runs (Kinto, PostgreSQL, the operator, ...) into bin/images.
	KINTO_VERSIONS="$(KINTO_VERSION) $(KINTO_PREVIOUS_VERSION)" hack/build-images.sh $(LOCALBIN)/images

# The e2e upgrade test's operator before the upgrade: this tree built under another version
# string, as image $(PREVIOUS_IMG).
PREVIOUS_IMG ?= kinto-operator:e2e-previous

.PHONY: previous-operator-image
previous-operator-image: host-packages ## The operator built again as version e2e-previous, image $(PREVIOUS_IMG) (bin/images/kinto-operator-previous.tar): the e2e upgrade test's previous operator.
	CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=e2e-previous" -o $(LOCALBIN)/manager-previous .
	OPERATOR_BIN=$(LOCALBIN)/manager-previous OPERATOR_FILE=kinto-operator-previous.tar OPERATOR_REF=docker.io/library/$(PREVIOUS_IMG) \
		IMAGES=operator hack/build-images.sh $(LOCALBIN)/images

.PHONY: kube-binaries
kube-binaries: ## Build kube-apiserver, kubelet, etcd, kubectl, ... from source into bin/k8s/$(KUBE_VERSION).
	KUBE_VERSION=$(KUBE_VERSION) hack/build-kube-binaries.sh $(KUBE_ASSETS)

.PHONY: kinto-server
kinto-server: ## Install the real Kinto server (default and previous release) into bin/kinto-<version>, and kinto-wizard.
	hack/install-kinto.sh $(KINTO_VERSION) $(LOCALBIN)/kinto-$(KINTO_VERSION)
	hack/install-kinto.sh $(KINTO_PREVIOUS_VERSION) $(LOCALBIN)/kinto-$(KINTO_PREVIOUS_VERSION)
	hack/install-kinto-wizard.sh $(KINTO_WIZARD_VERSION) $(LOCALBIN)/kinto-wizard-$(KINTO_WIZARD_VERSION)

.PHONY: s3-server
s3-server: ## Build versitygw, the S3-compatible server of test-s3 and test-e2e, from source into bin/versitygw-<version>.
	VERSITYGW_VERSION=$(VERSITYGW_VERSION) hack/build-s3-server.sh $(dir $(VERSITYGW))
