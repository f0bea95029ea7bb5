# Shortcuts; dev.py does the work and needs nothing but Python 3.11+.
.PHONY: run test lint bench
run:
	python3 dev.py run
test:
	python3 dev.py test
lint:
	.venv/bin/ruff check .
	.venv/bin/mypy --strict matcher/engine
bench:
	.venv/bin/python bench/engine.py
