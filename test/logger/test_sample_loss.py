"""Lost-sample counting from publication sequence numbers, and where the recorder reports it."""

from __future__ import annotations

from lwd_interfaces import topics
from lwd_logger.bag_reader import BagReader
from lwd_logger.sample_loss import SampleLossCounter, format_losses


def test_gaps_in_the_sequence_count_as_lost_samples_per_topic():
    counter = SampleLossCounter()
    assert [counter.observe("/joint_states", n) for n in (5, 6, 9, 10, 14)] == [0, 0, 2, 0, 3]
    counter.observe("/camera/top/image_raw", 1)
    counter.observe("/camera/top/image_raw", 3)
    assert counter.take() == {"/camera/top/image_raw": 1, "/joint_states": 5}
    assert counter.take() == {}
    assert format_losses({"/b": 2, "/a": 1}) == "/a=1,/b=2" and format_losses({}) == ""


def test_a_restarted_publisher_sets_a_new_baseline_instead_of_a_loss():
    counter = SampleLossCounter()
    for n in (100, 101, 1, 2, 4):
        counter.observe("/joint_states", n)
    assert counter.take() == {"/joint_states": 1}


def test_the_episode_bag_records_only_the_losses_during_the_episode(make_recorder, steps, episode_info):
    recorder = make_recorder()
    raw = steps.typestore.serialize_cdr(steps.joint_state(5, 0.25), topics.JOINT_STATE_TYPE)
    recorder.record(topics.JOINT_STATES, topics.JOINT_STATE_TYPE, raw, 1, sequence=1)
    recorder.record(topics.JOINT_STATES, topics.JOINT_STATE_TYPE, raw, 2, sequence=4)  # before the episode
    recorder.start_episode(episode_info)
    for time_ns, sequence in enumerate((5, 6, 8, 9, 13), start=3):
        recorder.record(topics.JOINT_STATES, topics.JOINT_STATE_TYPE, raw, time_ns, sequence=sequence)
    folder = recorder.end_episode()
    assert BagReader(folder).info.custom_data["lwd.lost_samples"] == "/joint_states=4"


def test_only_topics_with_one_publisher_are_counted_and_a_second_publisher_resets_the_baseline():
    """rclpy does not say which publisher sent a sample: two publishers' numbers interleave and are no gaps."""
    counter = SampleLossCounter()
    counter.set_publishers({"/joint_states": 1, "/teleop/command": 2})
    counter.observe("/joint_states", 1)
    counter.observe("/joint_states", 3)
    for n in (1, 7, 2, 8):
        counter.observe("/teleop/command", n)
    counter.set_publishers({"/joint_states": 2})
    counter.set_publishers({"/joint_states": 1})
    counter.observe("/joint_states", 40)  # the remaining publisher's number: a new baseline, not 36 lost
    counter.observe("/joint_states", 41)
    assert counter.take() == {"/joint_states": 1}
