# make setup      install Debian packages, .venv with pinned packages, vendored JS (idempotent)
# make test       run the unit tests, nbval on every notebook, nbval again under other CPU kernels, then the
#                 Colab-versions job (tools/test_colab.sh: .venv-colab with colab-versions.txt)
#                 (sets up first if needed)
# make book       build the HTML book into _build/html (sets up first if needed), with the Solutions part
# make book SOLUTIONS=0  the same book without the Solutions part (solutions/ is left out: for a
#                 course that hands out the exercises before the solutions; tools/book_toc.py)
# make notebooks  execute every MyST source (*.md) into its .ipynb twin with outputs, then `make colab`
# make colab      regenerate the PyTorch-only and TensorFlow-only notebooks of every chapter page
#                 (colab/pytorch/, colab/tensorflow/: tools/colab_variants.py; no outputs, no kernel)
# make exercises  regenerate exercises/, solutions/ and hidden tests from the solved masters
# make grade SUBMISSIONS=dir HIDDEN=dir SECRET=text [SET=ch01]  batch-grade notebooks (sandboxed) into scores.csv
# make benchmarks print execution times and quality tables (not bible_stats.py: it needs Debian dict-de-en,
#                 installed by hand; benchmarks/README.md)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
export OMP_NUM_THREADS ?= 2
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# The second nbval run: other CPU kernels (PyTorch's ATen without vector instructions, TensorFlow's
# oneDNN capped at AVX2, one thread), so that a committed output whose last digits depend on the CPU
# fails here rather than on a learner's machine (tests/test_dispatch.py shows the kernels differ).
DISPATCH2 := ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=AVX2 OMP_NUM_THREADS=1
# Both nbval runs give each notebook one thread and run two at a time on pytest-xdist workers
# (--dist loadscope keeps each notebook's cells in order on one worker, as nbval needs): on 2 cores
# that is faster than one notebook at a time on two threads. The unit tests run on two workers too,
# one thread each, a test file per worker at a time (--dist loadfile: a module fixture, such as the
# graded batch of test_grading_sandbox.py, is made once). No test writes into the repository, which
# the book build checks while the other worker runs; test_browser.py builds its own copy of the book
# (~20 s) if it lands on the other worker than test_book.py. (--dist loadgroup would keep them
# together, but pytest-xdist 3.8's groups do nothing under pytest 9.2, whose node ids it cannot edit.)
NOTEBOOK_WORKERS ?= 2
NBVAL := $(PY) -m pytest chapters appendix solutions -p no:cacheprovider -n $(NOTEBOOK_WORKERS) \
	--dist loadscope --durations=10

.PHONY: setup test book notebooks colab exercises grade benchmarks clean

$(STAMP): pyproject.toml constraints.txt tools/setup.sh tools/vendor.sh
	bash tools/setup.sh
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	env OMP_NUM_THREADS=1 $(PY) -m pytest tests -n $(NOTEBOOK_WORKERS) --dist loadfile --durations=25
	env OMP_NUM_THREADS=1 $(NBVAL)
	env $(DISPATCH2) $(NBVAL)
	bash tools/test_colab.sh

# SOLUTIONS=1 (default): the book includes the solved notebooks (they are public in this repository).
# SOLUTIONS=0: build from a _toc.yml without the Solutions part and a _config.yml that excludes solutions/.
SOLUTIONS ?= 1
ifeq ($(SOLUTIONS),0)
BOOK_TOC := _build/no-solutions
BOOK_ARGS := --toc $(BOOK_TOC)/_toc.yml --config $(BOOK_TOC)/_config.yml
endif
book: $(STAMP)
	$(if $(filter $(SOLUTIONS),0 1),,$(error make book: SOLUTIONS must be 1 (the default) or 0, not "$(SOLUTIONS)"))
	bash tools/vendor.sh
	rm -rf _build/.doctrees _build/html
	$(if $(BOOK_TOC),$(PY) tools/book_toc.py --solutions 0 --out $(BOOK_TOC))
	$(VENV)/bin/jupyter-book build . -W -n --keep-going $(BOOK_ARGS)
	@echo "book: open _build/html/index.html in a browser"

notebooks: $(STAMP)
	$(PY) tools/execute.py $(NB)
	$(PY) tools/colab_variants.py

colab: $(STAMP)
	$(PY) tools/colab_variants.py

exercises: $(STAMP)
	$(PY) -m llmbook.grading.build

SET ?= ch01
grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "make grade: set SUBMISSIONS=folder of .ipynb files"; exit 2; }
	@test -n "$(HIDDEN)" || { echo "make grade: set HIDDEN=your private copy of tests/hidden"; exit 2; }
	@test -n "$(SECRET)$$LLMBOOK_GRADING_SECRET" || { echo "make grade: set SECRET=... (or LLMBOOK_GRADING_SECRET)"; exit 2; }
	LLMBOOK_GRADING_SECRET="$${LLMBOOK_GRADING_SECRET:-$(SECRET)}" $(PY) -m llmbook.grading.grade $(SUBMISSIONS) \
		--set $(SET) --hidden $(HIDDEN) --out scores.csv

benchmarks: $(STAMP)
	$(PY) benchmarks/notebook_times.py
	$(PY) benchmarks/ch1_quality.py --skip-train
	$(PY) benchmarks/ch3_quality.py --skip-train
	$(PY) benchmarks/ch4_quality.py --skip-train
	$(PY) benchmarks/ch5_quality.py --skip-train
	$(PY) benchmarks/ch6_quality.py --skip-train
	$(PY) benchmarks/attention_cost.py
	$(PY) benchmarks/quality_table.py

clean:
	rm -rf _build
