"""The one watchdog thread behind every SMTP stage's and HTTPS exchange's deadline: a
deadline that passes acts, a cancelled one never does, and many at once keep their order.
(The deadlines' effect on real connections is tested with the transport and OAuth.)"""

from __future__ import annotations

import threading

from smtp_settings.mail import watchdog


def test_a_deadline_that_passes_acts_and_a_cancelled_one_never_does() -> None:
    fired = threading.Event()
    cancelled_fired = threading.Event()
    kept = watchdog.after(0.05, fired.set)
    dropped = watchdog.after(0.05, cancelled_fired.set)
    dropped.cancel()
    assert fired.wait(5)
    kept.cancel()  # after it acted: nothing left to stop, no error
    assert not cancelled_fired.wait(0.2)


def test_deadlines_act_in_their_order_whatever_the_order_they_were_set_in() -> None:
    order: list[int] = []
    done = threading.Event()

    def act(n: int) -> None:
        order.append(n)
        if len(order) == 3:
            done.set()

    watchdog.after(0.3, lambda: act(3))
    watchdog.after(0.1, lambda: act(1))
    watchdog.after(0.2, lambda: act(2))
    assert done.wait(5)
    assert order == [1, 2, 3]


def test_thousands_of_cancelled_deadlines_are_dropped_and_a_later_one_still_acts() -> None:
    for _ in range(5000):
        watchdog.after(60, lambda: None).cancel()
    assert len(watchdog._watchdog._heap) < 5000
    fired = threading.Event()
    watchdog.after(0.01, fired.set)
    assert fired.wait(5)


def test_an_action_that_fails_does_not_stop_the_watchdog() -> None:
    def fail() -> None:
        raise RuntimeError("an action's own fault")

    watchdog.after(0.01, fail)
    fired = threading.Event()
    watchdog.after(0.05, fired.set)
    assert fired.wait(5)
