#!/usr/bin/env bash
# The Colab-versions job: the course under a Colab runtime's own library versions (colab-versions.txt).
#   1. .venv-colab (idempotent; rebuilt when colab-versions.txt, pyproject.toml, constraints.txt or this
#      script change):
#      the Colab versions + the project's torch + llmbook (editable) + the test tools, where the
#      project's pins (constraints.txt) apply only to packages Colab does not ship itself
#   2. the unit tests of the TensorFlow layers, the attention modules, the widgets and the grading
#      (checks, messages, solutions and wrong answers of every set: what a learner's notebook runs; not
#      the batch grader, which an instructor runs in the main environment), in .venv-colab, two test
#      files at a time on pytest-xdist workers (one thread each), as the main run
#   3. three chapter pages executed top to bottom in .venv-colab (into a temporary folder, not the
#      committed twins); each page's parity cells must print what the committed twin prints
#   4. the Colab simulation (tools/colab_sim.py): the llmbook wheel built and installed alone, every
#      PyTorch-only notebook (colab/pytorch/) run from it in an empty folder, the repository not
#      importable and TensorFlow hidden, two notebooks at a time (--jobs 2, one thread each); the
#      TensorFlow-only notebooks take ~10 min more on the 2-core machine, so
#      `python tools/colab_sim.py --framework tensorflow --jobs 2` is run by hand)
# Run from anywhere: bash tools/test_colab.sh  (make test runs it after the main pytest)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-colab
PY=$VENV/bin/python
STAMP=$VENV/.colab-stamp
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} PYDEVD_DISABLE_FILE_VALIDATION=1 TF_CPP_MIN_LOG_LEVEL=2
start=$SECONDS

want=$(cat colab-versions.txt pyproject.toml constraints.txt tools/test_colab.sh | sha256sum | cut -d' ' -f1)
if [ ! -x $PY ] || [ "$(cat $STAMP 2>/dev/null)" != "$want" ]; then
    echo "test_colab: building $VENV with the versions in colab-versions.txt"
    rm -rf $VENV
    ${PYTHON:-python3} -m venv $VENV
    pins=$(mktemp)
    grep -v '^\s*#' colab-versions.txt | grep -v '^\s*$' > "$pins"
    # the project's pins for everything Colab does not ship (test tools, data packages); never for
    # a package named in colab-versions.txt
    names=$(sed 's/[=<>!~].*//' "$pins" | tr '\n' '|' | sed 's/|$//')
    cons=$(mktemp)
    grep -v -i -E "^($names|keras|tensorflow|tensorflow-cpu)==" constraints.txt > "$cons"
    $PY -m pip install -q --upgrade pip
    # one resolver run: if pyproject.toml's lower bounds exclude a Colab version, this fails
    log=$(mktemp)
    if ! $PY -m pip install -q -r "$pins" -c "$cons" torch==2.13.0 -e . pytest pytest-xdist nbval nbclient nbformat jupytext \
            > "$log" 2>&1; then
        grep -v -E "^WARNING: Location .* is ignored" "$log" >&2
        echo "test_colab: pip could not install the Colab versions with llmbook (see above): is a lower bound in" \
             "pyproject.toml above a version in colab-versions.txt?" >&2
        exit 1
    fi
    rm -f "$pins" "$cons" "$log"
    echo "$want" > $STAMP
    echo "test_colab: $VENV built in $((SECONDS - start)) s"
fi
$PY - <<'EOF'
from importlib.metadata import version
pins = [l.split("==") for l in open("colab-versions.txt") if l.strip() and not l.startswith("#")]
wrong = [f"{n} {version(n)} (want {v.strip()})" for n, v in pins if version(n) != v.strip()]
if wrong:
    raise SystemExit("test_colab: .venv-colab drifted from colab-versions.txt: " + ", ".join(wrong)
                     + "; delete .venv-colab and run again")
print("test_colab: .venv-colab has", ", ".join(f"{n} {v.strip()}" for n, v in pins))
EOF

# 2. unit tests (no nbval here: the committed twins hold the pinned versions' outputs)
t0=$SECONDS
OMP_NUM_THREADS=1 PYTHONPATH=$PWD $PY -m pytest -q -p no:cacheprovider -o addopts="" -W ignore::DeprecationWarning \
    -n 2 --dist loadfile -k "not batch_grader" \
    tests/test_tf_rank4.py tests/test_widgets.py tests/test_colab_note.py tests/test_attention.py \
    tests/test_transformer.py tests/test_grading.py tests/test_grading_sets.py
echo "test_colab: unit tests in $((SECONDS - t0)) s"

# 3. three pages executed top to bottom under the Colab versions
t0=$SECONDS
PATH=$PWD/$VENV/bin:$PATH PYTHONPATH=$PWD $PY tools/colab_pages.py \
    chapters/05_attention/02_attention_dates.md chapters/03_lstm_gru/01_gates.md \
    chapters/06_transformer/01_attention.md
echo "test_colab: pages in $((SECONDS - t0)) s"

# 4. the wheel alone: what a learner's Colab runtime has after the notebook's install cell
t0=$SECONDS
PATH=$PWD/$VENV/bin:$PATH $PY tools/colab_sim.py --framework pytorch --jobs 2
echo "test_colab: Colab simulation in $((SECONDS - t0)) s"
echo "test_colab: passed in $((SECONDS - start)) s"
