"""gc_paused: the collector is off inside the block and exactly as before after it, even when the block raises."""

import gc

import pytest

from filmkit.jsonfiles import gc_paused


def test_the_collector_comes_back_after_a_block_that_raises():
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off_and_nesting_keeps_it_off():
    gc.disable()
    try:
        with gc_paused():
            with gc_paused():
                pass
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_as_a_decorator_it_pauses_each_call():
    @gc_paused()
    def state() -> bool:
        return gc.isenabled()

    assert state() is False and state() is False
    assert gc.isenabled()
