.PHONY: setup serve test

setup:
	bash scripts/setup.sh

serve: setup
	.venv/bin/shopray serve

test: setup
	bash scripts/test.sh
