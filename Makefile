# Thin targets: the work lives in scripts/.
.PHONY: test lint generate fuzz bench soak

test:      ## everything CI runs: lint, generate-check, race tests, interop, brief fuzz
	bash scripts/test.sh

lint:      ## gofmt, go vet, buf lint
	bash scripts/lint.sh

generate:  ## regenerate gen/ with the pinned buf and our plugin
	bash scripts/generate.sh

fuzz:      ## run every fuzz target for FUZZTIME each (default 30s)
	bash scripts/fuzz.sh $(or $(FUZZTIME),30s)

bench:     ## microbenchmarks and the cross-library comparison in bench/
	bash scripts/bench.sh

soak:      ## load and soak (docs/reliability.md): DURATION (10m), N WebSocket clients (10000), SSE subscribers (1000)
	bash scripts/soak.sh
