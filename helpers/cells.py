"""`%%skip_if CONDITION`: a notebook cell that runs only when it should.

    %load_ext helpers.cells        # once, in an early cell

    %%skip_if not TRAIN            # first line of a cell: skip the cell when the condition holds
    trainer.train()

Why a cell magic: a lesson that can go straight to its last section (notebook
04 with a shared checkpoint and no training faces) skips whole cells, and one
readable first line does that without indenting every cell under an `if`.
The condition is evaluated in the notebook's namespace. A skipped cell prints
nothing; the cell that decided says why, once.
"""

from __future__ import annotations


def skip_if(line: str, cell: str) -> None:
    from IPython import get_ipython

    shell = get_ipython()
    if not line.strip():
        raise ValueError("%%skip_if needs a condition, e.g. `%%skip_if not TRAIN`.")
    if eval(line, shell.user_ns):
        return
    result = shell.run_cell(cell)
    if not result.success:  # a failing cell must fail the notebook run, as it would without the magic
        raise result.error_in_exec or result.error_before_exec


def load_ipython_extension(ipython) -> None:
    ipython.register_magic_function(skip_if, "cell", "skip_if")
