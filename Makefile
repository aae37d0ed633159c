# The two commands a fresh clone needs:
#   make demo   run paasd (process runtime) with a demo service
#   make test   run the whole test suite (ruff, mypy, import contracts, pytest), as
#               .ci/run does (which adds PAASD_CLUSTER=1 for the kubernetes tier)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	@echo "paasd demo: try, in another terminal:"
	@echo "  . $(VENV)/bin/activate"
	@echo "  paasctl tls ca > /tmp/paasd-ca.pem"
	@echo "  curl --cacert /tmp/paasd-ca.pem https://welcome.default.localhost:8443/"
	@echo "  paasctl apply -f examples/hello/hello.yaml && paasctl service list"
	$(BIN)/paasd --config examples/demo.toml

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# PAASD_CLUSTER=1 (as root) also builds/starts the local Kubernetes test cluster
# (tests/cluster/up) for the kubernetes tier, and stops it afterwards.
test: lint
	@if [ "$(PAASD_CLUSTER)" = 1 ]; then \
	  trap 'tests/cluster/down' EXIT; \
	  tests/cluster/up >/dev/null || exit 1; \
	  KUBECONFIG=/var/lib/paasd-k8s/admin.kubeconfig $(BIN)/pytest; \
	else \
	  $(BIN)/pytest; \
	fi

clean:
	rm -rf $(VENV) .paasd-demo .pytest_cache .mypy_cache .ruff_cache
