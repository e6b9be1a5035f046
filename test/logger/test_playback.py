"""``lwd bag play`` without ROS: the playback schedule (order, rate, offset, loop), topic names, bad input, CLI errors.

The schedule runs on a fake clock that records each wait instead of sleeping, so the due times are
checked exactly.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
from lwd.cli import main
from lwd_interfaces import lwd_typestore, topics
from lwd_interfaces.messages import joint_state
from lwd_logger.errors import BagError, PlaybackError
from lwd_logger.playback import Playback, PlaybackOptions, parse_remaps
from rosbags.rosbag2 import StoragePlugin, Writer

START_NS = 1_700_000_000 * 10**9
MS = 1_000_000
NOTE = "/debug/note"
NOTE_TYPE = "std_msgs/msg/String"
RECORDED = [
    (topics.JOINT_STATES, 0),
    (NOTE, 5),
    (topics.JOINT_STATES, 20),
    (topics.JOINT_STATES, 40),
    (NOTE, 100),
    (topics.JOINT_STATES, 160),
]
"""(topic, ms after the first message) of the test bag, in log-time order."""


class FakeClock:
    """A clock that jumps to each deadline instead of sleeping, remembering the deadlines."""

    def __init__(self, now_ns: int = 7 * 10**9) -> None:
        self.now = now_ns
        self.deadlines: list[int] = []

    def now_ns(self) -> int:
        return self.now

    def sleep_until_ns(self, deadline_ns: int) -> None:
        self.deadlines.append(deadline_ns)
        self.now = max(self.now, deadline_ns)


def write_bag(path: Path, storage: StoragePlugin = StoragePlugin.MCAP) -> dict[int, bytes]:
    """Write RECORDED (a JointState whose position is the index, or a String note); returns log time -> CDR bytes."""
    typestore = lwd_typestore()
    written = {}
    with Writer(path, version=9, storage_plugin=storage) as writer:
        connections = {
            topic: writer.add_connection(topic, msgtype, typestore=typestore)
            for topic, msgtype in ((topics.JOINT_STATES, topics.JOINT_STATE_TYPE), (NOTE, NOTE_TYPE))
        }
        for index, (topic, ms) in enumerate(RECORDED):
            stamp = START_NS + ms * MS
            if topic == NOTE:
                msg, msgtype = typestore.types[NOTE_TYPE](data=f"note {index}"), NOTE_TYPE
            else:
                msg, msgtype = joint_state(stamp, ["j"], [float(index)]), topics.JOINT_STATE_TYPE
            written[stamp] = bytes(typestore.serialize_cdr(msg, msgtype))
            writer.write(connections[topic], stamp, written[stamp])
    return written


@pytest.fixture
def bag(tmp_path: Path) -> Path:
    path = tmp_path / "episode"
    write_bag(path)
    return path


def run(playback: Playback, clock: FakeClock, limit: int | None = None) -> list[tuple[str, int, int]]:
    """(published topic, due ms after the clock's start, recorded ms) of each played message."""
    start = clock.now
    played = []
    for message in itertools.islice(playback.messages(clock), limit):
        assert clock.now == clock.deadlines[-1], "a message was handed out before it was due"
        played.append((message.topic, (clock.now - start) / MS, (message.log_time_ns - START_NS) // MS))
    return played


@pytest.mark.parametrize("storage", [StoragePlugin.MCAP, StoragePlugin.SQLITE3])
def test_plays_every_message_in_order_at_its_recorded_offset_with_its_recorded_bytes(tmp_path, storage):
    written = write_bag(tmp_path / "bag", storage)
    playback = Playback(tmp_path / "bag")
    assert run(playback, FakeClock()) == [(topic, ms, ms) for topic, ms in RECORDED]
    messages = list(playback.messages(FakeClock()))
    assert [m.data for m in messages] == list(written.values())
    assert [m.msgtype for m in messages] == [
        NOTE_TYPE if topic == NOTE else topics.JOINT_STATE_TYPE for topic, _ in RECORDED
    ]


@pytest.mark.parametrize("rate", [2.0, 0.5, 3.0])
def test_rate_scales_every_due_time(bag, rate):
    played = run(Playback(bag, PlaybackOptions(rate=rate)), FakeClock())
    assert [due for _, due, _ in played] == pytest.approx([ms / rate for _, ms in RECORDED], abs=1e-6)


def test_start_offset_skips_the_beginning_and_plays_the_rest_from_there(bag):
    played = run(Playback(bag, PlaybackOptions(start_offset_s=0.03, rate=2.0)), FakeClock())
    assert played == [(topic, (ms - 30) / 2, ms) for topic, ms in RECORDED if ms >= 30]


def test_loop_starts_each_pass_where_the_previous_one_ended(bag):
    clock = FakeClock()
    played = run(Playback(bag, PlaybackOptions(loop=True)), clock, limit=3 * len(RECORDED))
    expected = [(topic, pass_ * 160 + ms, ms) for pass_ in range(3) for topic, ms in RECORDED]
    assert played == expected


def test_loop_ends_when_a_pass_plays_nothing(bag):
    options = PlaybackOptions(topics=(NOTE,), start_offset_s=0.15, loop=True)
    assert run(Playback(bag, options), FakeClock()) == []


def test_topic_filter_namespace_and_remap_name_the_published_topics(bag):
    playback = Playback(bag, PlaybackOptions(topics=(topics.JOINT_STATES,)))
    assert {m.topic for m in playback.messages(FakeClock())} == {topics.JOINT_STATES}
    options = PlaybackOptions(namespace="robot_x", remap={"/robot_x/debug/note": "/notes"})
    playback = Playback(bag, options)
    assert {t.source: t.name for t in playback.topics.values()} == {
        topics.JOINT_STATES: "/robot_x/joint_states",
        NOTE: "/notes",
    }
    assert [m.topic for m in playback.messages(FakeClock())] == [
        "/notes" if topic == NOTE else "/robot_x/joint_states" for topic, _ in RECORDED
    ]
    assert Playback(bag, PlaybackOptions(namespace="/fleet/robot_x/")).topics[NOTE].name == "/fleet/robot_x/debug/note"


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (PlaybackOptions(rate=0), "rate must be a number > 0"),
        (PlaybackOptions(rate=-1.0), "rate must be a number > 0"),
        (PlaybackOptions(rate=math.nan), "rate must be a number > 0"),
        (PlaybackOptions(rate=math.inf), "rate must be a number > 0"),
        (PlaybackOptions(start_offset_s=-0.1), "start offset must be within"),
        (PlaybackOptions(start_offset_s=0.2), "start offset must be within"),
        (PlaybackOptions(topics=("/nope",)), r"topics \['/nope'\] are not in"),
        (PlaybackOptions(remap={"/nope": "/b"}), r"remaps of \['/nope'\] name no played topic"),
        (PlaybackOptions(namespace="r", remap={NOTE: "/b"}), "remap the published names"),
        (PlaybackOptions(topics=(NOTE,), remap={topics.JOINT_STATES: "/b"}), "name no played topic"),
        (PlaybackOptions(remap={NOTE: "relative"}), "is not an absolute ROS 2 topic name"),
        (PlaybackOptions(remap={NOTE: "/a//b"}), "is not an absolute ROS 2 topic name"),
        (PlaybackOptions(remap={NOTE: topics.JOINT_STATES}), "publish on the same name"),
        (PlaybackOptions(namespace="1robot"), "not a valid ROS 2 namespace"),
        (PlaybackOptions(namespace="a b"), "not a valid ROS 2 namespace"),
    ],
)
def test_bad_options_raise_playback_error(bag, options, match):
    with pytest.raises(PlaybackError, match=match):
        Playback(bag, options)


def test_a_folder_that_is_no_bag_raises_bag_error(tmp_path):
    with pytest.raises(BagError, match=r"no metadata\.yaml"):
        Playback(tmp_path)
    with pytest.raises(BagError, match="not a rosbag2 folder"):
        Playback(tmp_path / "missing")


def test_parse_remaps():
    assert parse_remaps(["/a:=/b", "/c:=/d/e"]) == {"/a": "/b", "/c": "/d/e"}
    for rules in (["/a"], ["/a:="], [":=/b"], ["/a:=/b", "/a:=/c"]):
        with pytest.raises(PlaybackError):
            parse_remaps(rules)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate", "0"], "argument --rate: must be > 0"),
        (["--rate", "fast"], "argument --rate: not a number"),
        (["--delay", "-1"], "argument --delay: must be >= 0"),
        (["--remap", "/joint_states"], "is not FROM:=TO"),
        (["--topics", "/nope"], "are not in"),
        (["--start-offset", "5"], "start offset must be within"),
    ],
)
def test_bag_play_reports_bad_input_in_one_line_with_exit_code_2(bag, capsys, argv, message):
    try:
        rc = main(["bag", "play", str(bag), *argv])
    except SystemExit as exit_:  # argparse rejects the value itself
        rc = exit_.code
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bag_info_and_render_report_bad_input_with_exit_code_2(tmp_path, bag, capsys):
    assert main(["bag", "info", str(tmp_path / "missing")]) == 2
    assert "lwd bag info:" in capsys.readouterr().err
    assert main(["bag", "render", str(bag)]) == 2  # no camera topics
    assert "has no camera topics" in capsys.readouterr().err
    for option in ("--fps", "--stride"):
        with pytest.raises(SystemExit) as exit_:
            main(["bag", "render", str(bag), option, "0"])
        assert exit_.value.code == 2
        assert f"argument {option}: must be > 0" in capsys.readouterr().err
