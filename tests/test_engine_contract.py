"""The one engine contract (ubpkt.engine): state tables and the stack's engines."""
import enum

import pytest

from ubpkt.engine import Engine, IllegalTransition, StateChanged, Transitions
from ubpkt.stack import engine as stack_engine


class S(enum.Enum):
    DOWN = 0
    TRAINING = 1
    UP = 2


TABLE = {S.DOWN: {S.TRAINING}, S.TRAINING: {S.UP, S.DOWN}, S.UP: {S.DOWN}}


def test_a_listed_move_gives_its_event_and_an_unlisted_one_raises():
    t = Transitions("toy", S, TABLE)
    ev = t.move(S.DOWN, S.TRAINING, 5, "start")
    assert ev == StateChanged(5, "toy", "DOWN", "TRAINING", "start")
    with pytest.raises(IllegalTransition, match="DOWN -> UP"):
        t.move(S.DOWN, S.UP, 6)
    assert t.reachable(S.DOWN) == set(S)


def test_every_state_needs_an_entry():
    with pytest.raises(ValueError, match="UP"):
        Transitions("toy", S, {S.DOWN: {S.TRAINING}, S.TRAINING: set()})


def test_the_stack_shares_the_contract():
    assert stack_engine.Engine is Engine
    assert issubclass(stack_engine.Retransmitted, stack_engine.Event)
