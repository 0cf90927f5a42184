"""A run directory's programs compile on worker threads, side by side (XLA releases the GIL while
compiling): the first chunk is started before ``init`` is waited for, each program is the one the
main thread would have compiled, and ``compile_seconds`` adds up every program's own time."""

from __future__ import annotations

import re
import threading
import time

import jax
import pytest

from train.config import PPOConfig
from train.placement import Placement, compile_program
from train.ppo import make_train

pytestmark = pytest.mark.timeout(600)

TINY = PPOConfig(seeds=(0, 1), total_timesteps=8 * 16 * 4, num_envs=8, num_steps=16, num_eval_envs=4)


def test_build_program__compiles_on_worker_threads_the_programs_of_the_main_thread():
    from train import runs

    program = runs._build_program(TINY, num_devices=1)
    threads = []
    make = program.make_run_updates

    def make_and_record(n):
        threads.append(threading.current_thread().name)
        time.sleep(0.5)
        return make(n)

    program.make_run_updates = make_and_record
    program.prefetch(2)
    assert not program.compiled  # nothing waited for yet: init, evaluate and the chunk compile meanwhile
    chunk, init, evaluate = program.chunk(2), program.init, program.evaluate
    assert threads == [threads[0]] and threads[0].startswith("compile")
    assert program.compile_seconds >= 0.5  # the chunk's own time (its sleep) is counted
    program.close()

    # The same programs compiled one after another on this thread.
    trainer = make_train(TINY, Placement.build(TINY, 1, False))
    keys, hparams = Placement.build(TINY, 1, False).keys(), Placement.build(TINY, 1, False).hparams()
    init_main = compile_program(trainer.init, keys)
    state = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                         jax.eval_shape(trainer.init, keys), init_main.output_shardings)
    chunk_main = compile_program(lambda s, h: trainer.run_updates(s, h, 2), state, hparams)
    evaluate_main = compile_program(trainer.evaluate, state)
    for threaded, main in ((init, init_main), (chunk, chunk_main), (evaluate, evaluate_main)):
        assert "ENTRY" in hlo_ops(main.as_text())
        assert hlo_ops(threaded.as_text()) == hlo_ops(main.as_text())


def hlo_ops(text: str) -> str:
    """An optimised HLO module's computations without source metadata (file names, lines)."""
    # The source-location tables (FileNames ... StackFrames) come before the computations when
    # jax records stack frames, after them otherwise: drop each table, keep the computations.
    text = re.sub(r"\n\n(FileNames|FunctionNames|FileLocations|StackFrames)\n.*?(?=\n\n|\Z)", "", text, flags=re.S)
    return re.sub(r", metadata=\{[^}]*\}", "", text)
