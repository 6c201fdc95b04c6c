"""CSI feedback over real ZeroMQ sockets on 127.0.0.1: freshness, fallback, drops, conflation, CurveZMQ."""
from __future__ import annotations

import time

import pytest
import zmq

from common import ConfigError
from radio.feedback import (MAX_MESSAGE_BYTES, Condition, CsiPublisher, CsiReport, CsiSubscriber, CsiValid,
                            FeedbackConfig, FeedbackTimeout, FixedCondition, encode_report, free_tcp_endpoint,
                            generate_curve_keys, publisher_from_config, subscriber_from_config)

FALLBACK = Condition(10.0, 100e-9)


@pytest.fixture
def link():
    ep = free_tcp_endpoint()
    pub = CsiPublisher(ep)
    sub = CsiSubscriber(ep, max_age_s=0.2, fallback=FALLBACK, timeout_s=1.0)
    yield pub, sub
    sub.close()
    pub.close()


def _poll_until(sub, pred, timeout_s=3.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sub.poll(0.02)
        if pred():
            return True
    return False


def test_fallback_before_any_report_then_feedback(link):
    pub, sub = link
    first = sub.condition()
    assert (first.source, first.condition, first.age_s, first.seq) == ("fallback", FALLBACK, None, None)
    sent = pub.publish_until_received(sub, frame_id=4, snr_db=3.5, delay_spread_s=900e-9)
    res = sub.condition()
    assert res.source == "feedback"
    assert res.condition == Condition(3.5, 900e-9)
    assert res.seq == sent.seq and res.frame_id == 4
    assert 0 <= res.age_s < 0.2
    assert sub.counters.fallbacks == 1


def test_below_resolution_flag_reaches_the_edge_and_a_forged_one_is_counted_malformed(link):
    pub, sub = link
    sent = pub.publish_until_received(sub, frame_id=5, snr_db=12.0, delay_spread_s=28e-9,
                                      delay_spread_below_resolution=True)
    assert sent.flags & CsiValid.DELAY_SPREAD_BELOW_RESOLUTION
    assert sub.condition().condition == Condition(12.0, 28e-9, delay_spread_below_resolution=True)
    forged = encode_report(sent)[:-1] + bytes([int(CsiValid.SNR | CsiValid.DELAY_SPREAD_BELOW_RESOLUTION)])
    pub.send_raw(forged)  # the flag without DELAY_SPREAD: refused, the last good report stays
    assert _poll_until(sub, lambda: sub.counters.malformed == 1)
    assert sub.condition().condition.delay_spread_below_resolution and sub.latest.seq == sent.seq


def test_stale_report_falls_back_and_says_so(link):
    pub, sub = link
    pub.publish_until_received(sub, frame_id=1, snr_db=3.0, delay_spread_s=50e-9)
    sub.latest_received_at -= 1.0  # as if received a second ago
    res = sub.condition()
    assert res.source == "fallback" and res.condition == FALLBACK
    assert res.age_s > 0.2 and res.seq is not None


def test_conflate_keeps_only_newest(link):
    pub, sub = link
    pub.publish_until_received(sub, frame_id=0, snr_db=1.0, delay_spread_s=1e-7)
    received_before = sub.counters.received
    for k in range(1, 200):
        pub.publish(frame_id=k, snr_db=float(k % 40), delay_spread_s=1e-7)
    assert _poll_until(sub, lambda: sub.latest.frame_id == 199)
    # conflation: far fewer messages were delivered than sent
    assert sub.counters.received - received_before < 199


def test_malformed_replayed_and_out_of_order_are_counted_and_dropped(link):
    pub, sub = link
    pub.publish(frame_id=9, snr_db=1.0, delay_spread_s=1e-7)  # so that good.seq >= 1
    good = pub.publish_until_received(sub, frame_id=10, snr_db=12.0, delay_spread_s=2e-7)
    older = CsiReport(seq=good.seq - 1, timestamp_s=good.timestamp_s, frame_id=9, snr_db=0.0,
                      delay_spread_s=1e-7, session_id=good.session_id)
    snr_only = CsiReport(seq=good.seq + 5, timestamp_s=time.monotonic(), frame_id=11, snr_db=1.0,
                         delay_spread_s=1e-7, flags=int(CsiValid.SNR), session_id=good.session_id)
    for payload in [b"garbage", encode_report(good), encode_report(older), encode_report(snr_only)]:
        received = sub.counters.received
        pub.send_raw(payload)
        assert _poll_until(sub, lambda: sub.counters.received == received + 1), payload
    c = sub.counters
    assert (c.malformed, c.duplicate, c.out_of_order, c.unusable) == (1, 1, 1, 1)
    assert sub.latest == good  # nothing replaced the good report
    assert sub.condition().condition == Condition(12.0, 2e-7)


def test_restarted_publisher_is_accepted_but_old_session_replay_is_not(link):
    pub, sub = link
    for _ in range(100):  # push the old session's seq well above where a new one starts
        pub.publish(frame_id=0, snr_db=5.0, delay_spread_s=1e-7)
    first = pub.publish_until_received(sub, frame_id=1, snr_db=5.0, delay_spread_s=1e-7)
    pub.close()
    # the restarted user binds a fresh port (re-binding the just-closed one races ZeroMQ's I/O thread)
    second_endpoint = free_tcp_endpoint()
    sub._sock.connect(second_endpoint)
    with CsiPublisher(second_endpoint) as pub2:  # new session, seq starts again at 0
        second = pub2.publish_until_received(sub, frame_id=2, snr_db=6.0, delay_spread_s=1e-7)
        assert second.seq < first.seq and second.session_id != first.session_id
        before = sub.counters.out_of_order
        pub2.send_raw(encode_report(first))  # replay from the old session
        assert _poll_until(sub, lambda: sub.counters.out_of_order == before + 1)
        assert sub.latest == second


def _forged(session_id, seq, timestamp_s, frame_id=0):
    return encode_report(CsiReport(seq=seq, timestamp_s=timestamp_s, frame_id=frame_id, snr_db=0.0,
                                   delay_spread_s=1e-7, session_id=session_id))


def _accepted_of(pub, sub, reports):
    """Send ``reports`` (payloads) one by one, each polled; returns how many the subscriber accepted."""
    accepted = 0
    for payload in reports:
        received = sub.counters.received
        pub.send_raw(payload)
        assert _poll_until(sub, lambda received=received: sub.counters.received == received + 1)
        accepted += sub.latest is not None and encode_report(sub.latest) == payload
    return accepted


@pytest.mark.parametrize("poison", ["future_timestamp", "seq_jump"])
def test_one_poisoned_report_does_not_lock_the_edge_out(poison):
    ep = free_tcp_endpoint()
    with CsiPublisher(ep) as pub, CsiSubscriber(ep, max_age_s=5.0, fallback=FALLBACK, conflate=False) as sub:
        good = pub.publish_until_received(sub, frame_id=0, snr_db=9.0, delay_spread_s=1e-7)
        bad = (_forged(good.session_id ^ 1, 0, good.timestamp_s + 1e9) if poison == "future_timestamp"
               else _forged(good.session_id, 2**62, good.timestamp_s))
        pub.send_raw(bad)
        assert _poll_until(sub, lambda: sub.counters.received >= 2)
        assert sub.latest == good
        reports = [pub.publish(frame_id=k, snr_db=9.0, delay_spread_s=1e-7) for k in range(1, 39)]
        assert _poll_until(sub, lambda: sub.latest.frame_id == 38)
        assert sub.counters.accepted == 1 + len(reports)
        assert getattr(sub.counters, "session_pending" if poison == "future_timestamp" else poison) == 1


def test_user_restarted_on_another_host_with_an_earlier_clock_is_admitted(link):
    pub, sub = link
    good = pub.publish_until_received(sub, frame_id=0, snr_db=9.0, delay_spread_s=1e-7)
    # the new host's monotonic clock started recently: its timestamps are far below the old host's
    restarted = [_forged(good.session_id ^ 7, k, 3.0 + 0.01 * k, frame_id=k) for k in range(38)]
    time.sleep(0.25)  # the old session is stale (max_age_s 0.2 s)
    assert _accepted_of(pub, sub, restarted) == 38
    assert sub.counters.sessions == 2


def test_oversized_message_is_dropped_unread():
    ep = free_tcp_endpoint()
    with CsiPublisher(ep) as pub, CsiSubscriber(ep, max_age_s=0.2, fallback=FALLBACK, reconnect_after_s=0.5) as sub:
        _oversized_then_back(pub, sub)


def _oversized_then_back(pub, sub):
    good = pub.publish_until_received(sub, frame_id=0, snr_db=9.0, delay_spread_s=1e-7)
    assert sub._sock.getsockopt(zmq.MAXMSGSIZE) == MAX_MESSAGE_BYTES
    pub.send_raw(b"x" * (MAX_MESSAGE_BYTES + 1))  # ZeroMQ drops it and the connection (which comes back)
    pub.publish_until_received(sub, frame_id=1, snr_db=9.0, delay_spread_s=1e-7)
    assert sub.counters.malformed == 0 and sub.counters.reconnects >= 1  # never read; the link came back
    assert good.session_id == sub.latest.session_id


def test_wait_for_report_times_out_with_specific_error():
    ep = free_tcp_endpoint()
    with CsiSubscriber(ep, max_age_s=1.0, fallback=FALLBACK, timeout_s=0.05) as sub:
        with pytest.raises(FeedbackTimeout, match=ep):
            sub.wait_for_report()


def test_sockets_are_configured_as_specified(link):
    pub, sub = link
    assert sub._sock.getsockopt(zmq.LINGER) == 0 and pub._sock.getsockopt(zmq.LINGER) == 0
    assert sub._sock.getsockopt(zmq.RCVTIMEO) == 1000
    assert FeedbackConfig().endpoint.startswith("tcp://127.0.0.1:")


def test_fixed_condition_source():
    res = FixedCondition(Condition(4.0, 3e-7)).condition()
    assert res.source == "fallback" and res.condition.snr_db == 4.0


def test_config_round_trip_and_validation(tmp_path):
    cfg = FeedbackConfig(endpoint=free_tcp_endpoint(), max_age_s=0.05, fallback_snr_db=3.0)
    assert FeedbackConfig.load(cfg.save(tmp_path / "fb.toml")) == cfg
    with pytest.raises(ConfigError):
        FeedbackConfig(endpoint="127.0.0.1:5557")
    with pytest.raises(ConfigError):
        FeedbackConfig(max_age_s=0)
    with pytest.raises(ConfigError, match="key file"):
        FeedbackConfig(curve_keys_dir=str(tmp_path / "nokeys")).curve_keys().apply_client(
            zmq.Context.instance().socket(zmq.SUB))


def test_curve_authenticated_link(tmp_path):
    keys = generate_curve_keys(tmp_path / "keys")
    cfg = FeedbackConfig(endpoint=free_tcp_endpoint(), curve_keys_dir=str(keys.directory), max_age_s=1.0)
    with publisher_from_config(cfg) as pub, subscriber_from_config(cfg) as sub:
        pub.publish_until_received(sub, frame_id=3, snr_db=8.0, delay_spread_s=1e-7)
        assert sub.condition().source == "feedback"
        # a client with an unknown key pair is refused by the authenticator
        rogue_dir = tmp_path / "rogue"
        generate_curve_keys(rogue_dir)
        (rogue_dir / "server.key").write_bytes((keys.directory / "server.key").read_bytes())
        rogue_cfg = FeedbackConfig(endpoint=cfg.endpoint, curve_keys_dir=str(rogue_dir), max_age_s=1.0)
        with subscriber_from_config(rogue_cfg) as rogue:
            for k in range(20):
                pub.publish(frame_id=10 + k, snr_db=8.0, delay_spread_s=1e-7)
                rogue.poll(0.02)
            assert rogue.counters.received == 0
        # and a plain (no CURVE) subscriber hears nothing either
        with CsiSubscriber(cfg.endpoint, max_age_s=1.0, fallback=FALLBACK) as plain:
            for k in range(10):
                pub.publish(frame_id=40 + k, snr_db=8.0, delay_spread_s=1e-7)
                plain.poll(0.02)
            assert plain.counters.received == 0


def test_unauthorised_publisher_is_not_heard(tmp_path):
    """With CurveZMQ on, a publisher without the server's secret key (plain, or with a key pair of its own)
    reaches the subscriber with nothing, even at an address the subscriber connects to."""
    keys = generate_curve_keys(tmp_path / "keys")
    cfg = FeedbackConfig(endpoint=free_tcp_endpoint(), curve_keys_dir=str(keys.directory), max_age_s=1.0)
    rogue_keys = generate_curve_keys(tmp_path / "rogue")
    with subscriber_from_config(cfg) as sub:
        for curve in (None, rogue_keys):
            endpoint = free_tcp_endpoint()
            sub._sock.connect(endpoint)
            with CsiPublisher(endpoint, curve=curve) as rogue:
                for k in range(20):
                    rogue.publish(frame_id=k, snr_db=8.0, delay_spread_s=1e-7)
                    sub.poll(0.02)
        assert sub.counters.received == 0


def test_secret_keys_are_private(tmp_path):
    keys = generate_curve_keys(tmp_path / "keys")
    for name in ("server.key_secret", "client.key_secret"):
        assert (keys.directory / name).stat().st_mode & 0o777 == 0o600, name


def test_failed_key_loading_leaks_no_authenticator_thread(tmp_path):
    import threading
    (tmp_path / "keys").mkdir()
    before = threading.active_count()
    for _ in range(3):
        with pytest.raises(ConfigError, match="key file"):
            CsiPublisher(free_tcp_endpoint(), curve=FeedbackConfig(curve_keys_dir=str(tmp_path / "keys")).curve_keys())
    assert threading.active_count() == before
