# Remora's two front-door commands, plus helpers. See README.md.
.PHONY: demo test packs lint bench vsix clean

demo:            ## set everything up, then run the scripted editor session on the sample project
	bash scripts/demo.sh

test:            ## set everything up, then run every check and test (what CI runs)
	bash scripts/test.sh

packs:           ## train the shipped packs (fastapi, httpx, click) into dist/packs/ with reports
	bash scripts/packs.sh

lint:
	.venv/bin/ruff check remora_lsp tests benchmarks && .venv/bin/ruff format --check remora_lsp tests benchmarks && .venv/bin/mypy

bench:
	.venv/bin/python benchmarks/parse_bench.py
	.venv/bin/python benchmarks/status_latency.py

vsix:
	bash scripts/build-vscode.sh

clean:
	rm -rf .remora-demo build dist *.egg-info editors/vscode/out
