"""Ctrl-C for batch jobs that commit in batches: noted first, at once the second time."""

import os
import signal

import pytest

from complaintcore.cli.common import StopAtCommit


def interrupt() -> None:
    os.kill(os.getpid(), signal.SIGINT)  # Python runs the handler before the next bytecode


def test_the_first_ctrl_c_stops_the_job_at_its_next_report_not_where_it_is() -> None:
    with StopAtCommit() as stop:
        stop.raise_if_asked()  # nothing asked yet
        interrupt()
        assert stop.asked
        with pytest.raises(KeyboardInterrupt):
            stop.raise_if_asked()


def test_a_second_ctrl_c_stops_it_at_once() -> None:
    with StopAtCommit(), pytest.raises(KeyboardInterrupt):
        interrupt()
        interrupt()


def test_the_previous_handler_is_back_afterwards() -> None:
    before = signal.getsignal(signal.SIGINT)
    with StopAtCommit():
        assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before
