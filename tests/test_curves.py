"""agent.instruments.curves / compare against real SQLite logs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.errors import LogError
from agent.instruments.compare import align, comparable_turns
from agent.instruments.curves import NoCurves, load_curves, runs, think_spans, token_regions
from agent.llm.base import LOWER_BOUND, TokenStep, TopAlternative
from agent.log import DialogueLog, TelemetryError
from agent.records import AssistantTurnRecord, UserTurnRecord

THINK = ["<think>", "Cats", " purr", ".", "</think>", "\n\n", "Yes", ",", " cats", " purr", "."]


def token_id(piece: str) -> int:
    return sum(map(ord, piece))  # the same piece, the same id


def steps_of(pieces: list[str], *, entropy0: float = 0.5) -> list[TokenStep]:
    return [
        TokenStep(i, token_id(p), p, -0.1 * (i + 1), entropy0 + 0.25 * i,
                  (TopAlternative(token_id(p), p, -0.1 * (i + 1)), TopAlternative(7, " dog", -2.5 - i)))
        for i, p in enumerate(pieces)
    ]


def reply(conversation: int, parent: int | None, pieces: list[str], **overrides: object) -> AssistantTurnRecord:
    raw = "".join(pieces)
    fields: dict = dict(
        conversation_id=conversation, parent_id=parent, text=raw, reasoning="", raw_text=raw,
        prompt_text="p", prompt_tokens=3, backend="llama_cpp", model_id="SmolLM2-135M-Instruct",
        model_path="/m.gguf", model_hash="00", persona="assistant", adapters=[], sampler={"temperature": 0.7},
        timings={}, stop_reason="eos", interrupted=False, steps=steps_of(pieces),
    )
    fields.update(overrides)
    return AssistantTurnRecord(**fields)


@pytest.fixture
def log(tmp_path: Path):
    with DialogueLog(tmp_path / "dialogues.sqlite3") as opened:
        yield opened


@pytest.fixture
def turns(log: DialogueLog) -> dict[str, int]:
    """A reply with reasoning, its regenerated alternative, the same prompt under the pirate
    persona with an adapter in another conversation, and an unrelated reply without telemetry."""
    first = log.new_conversation(persona="assistant")
    user = log.add_user_turn(UserTurnRecord(first, "Do cats purr?"))
    think = log.add_assistant_turn(reply(first, user, THINK))
    again = log.add_assistant_turn(reply(first, user, ["Yes", ".", " Always", "."], alternative_of=think,
                                         steps=steps_of(["Yes", ".", " Always", "."], entropy0=2.0)))
    second = log.new_conversation(persona="pirate")
    user2 = log.add_user_turn(UserTurnRecord(second, "Do cats purr?"))
    pirate = log.add_assistant_turn(reply(second, user2, ["Arr", "!"], persona="pirate",
                                          adapters=[{"id": "pirate", "scale": 0.8}]))
    bare = log.add_assistant_turn(reply(second, user2, ["Hm"], steps=[]))
    other_user = log.add_user_turn(UserTurnRecord(second, "Something else"))
    other = log.add_assistant_turn(reply(second, other_user, ["No"]))
    return {"user": user, "think": think, "again": again, "pirate": pirate, "bare": bare, "other": other}


def test_think_blocks_are_found_like_the_splitter_finds_them() -> None:
    assert think_spans("a<think>b</think>c<think>d") == [(1, 17), (18, 26)]
    assert think_spans("no tags") == []
    assert token_regions(THINK) == ["reasoning"] * 5 + ["answer"] * 6
    # tags split over pieces, an empty piece after the close, most characters decide a mixed piece
    assert token_regions(["Hi", "<th", "ink>", "x", "", "</th", "ink>\n", "", "A"]) == \
        ["answer"] + ["reasoning"] * 6 + ["answer"] * 2
    assert token_regions(["So</think>", "A", "<think>x", "y"]) == ["answer", "answer", "reasoning", "reasoning"]
    assert token_regions(["<think>", "never closed"]) == ["reasoning", "reasoning"]
    assert runs(["answer", "reasoning", "reasoning", "answer", "reasoning"]) == [(1, 3), (4, 5)]


def test_a_turn_s_curves_are_its_decoded_telemetry(log: DialogueLog, turns: dict[str, int]) -> None:
    curves = load_curves(log, turns["think"])
    stored = log.token_steps(turns["think"])
    assert curves.entropy == [s.entropy for s in stored] and len(curves) == len(THINK)
    assert curves.logprob == pytest.approx([-0.1 * (i + 1) for i in range(len(THINK))], rel=1e-6)
    assert curves.pieces == THINK and curves.steps[3].top[1].text == " dog"
    assert curves.reasoning_runs == [(0, 5)] and curves.answer_start == 5
    assert curves.mean_entropy("reasoning") == pytest.approx(0.5 + 0.25 * 2)
    assert curves.mean_entropy("answer") == pytest.approx(0.5 + 0.25 * 7.5)
    assert curves.prompt == "Do cats purr?" and not curves.lower_bound
    assert curves.label == f"#{turns['think']} assistant · SmolLM2-135M-Instruct"
    pirate = load_curves(log, turns["pirate"])
    assert pirate.label == f"#{turns['pirate']} pirate · SmolLM2-135M-Instruct · pirate×0.8"
    assert pirate.reasoning_runs == [] and pirate.answer_start == 0


def test_remote_top_k_entropy_is_marked_a_lower_bound(log: DialogueLog) -> None:
    conversation = log.new_conversation(persona="assistant")
    turn = log.add_assistant_turn(reply(conversation, None, ["Hi"], extra={"entropy": LOWER_BOUND}))
    assert load_curves(log, turn).lower_bound


def test_turns_without_curves_say_why(log: DialogueLog, turns: dict[str, int]) -> None:
    with pytest.raises(LogError, match="no turn 999"):
        load_curves(log, 999)
    with pytest.raises(NoCurves, match=f"turn {turns['user']} is a user turn"):
        load_curves(log, turns["user"])
    with pytest.raises(NoCurves, match="no token telemetry"):
        load_curves(log, turns["bare"])
    raw = sqlite3.connect(log.path)
    raw.execute("UPDATE token_telemetry SET data = x'01deadbeef' WHERE turn_id = ?", (turns["other"],))
    raw.commit()
    raw.close()
    with pytest.raises(TelemetryError, match=f"turn {turns['other']}"):
        load_curves(log, turns["other"])


def test_comparable_turns_are_alternatives_then_the_same_prompt_elsewhere(log: DialogueLog, turns: dict[str, int]) -> None:
    found = comparable_turns(log, load_curves(log, turns["think"]))
    assert [(c.turn_id, c.kind) for c in found] == [(turns["again"], "alternative"), (turns["pirate"], "same prompt")]
    assert found[1].label == "same prompt · persona pirate · adapter pirate×0.8"  # bare (no telemetry) is left out
    from_alternative = comparable_turns(log, load_curves(log, turns["again"]))
    assert [c.turn_id for c in from_alternative] == [turns["think"], turns["pirate"]]
    assert comparable_turns(log, load_curves(log, turns["other"])) == []
    third = log.new_conversation(persona="assistant")  # the same prompt, persona and model again
    rerun = log.add_assistant_turn(reply(third, log.add_user_turn(UserTurnRecord(third, "Do cats purr?")), ["Mm"]))
    latest = comparable_turns(log, load_curves(log, turns["think"]))[1]
    assert (latest.turn_id, latest.label) == (rerun, f"same prompt (conversation {third})")


def test_alignment_pads_the_shorter_turn_and_finds_the_divergence(log: DialogueLog, turns: dict[str, int]) -> None:
    think, again = load_curves(log, turns["think"]), load_curves(log, turns["again"])
    by_start = align(think, again)
    a, b = by_start.series(think.entropy, again.entropy)
    assert by_start.length == len(THINK) == len(a) == len(b)
    assert b == [2.0, 2.25, 2.5, 2.75] + [None] * (len(THINK) - 4) and a == think.entropy
    assert by_start.diverged_at == 0  # "<think>" vs "Yes"
    by_answer = align(think, again, anchor="answer")
    assert (by_answer.offset_a, by_answer.offset_b) == (0, 5)
    pieces_a, pieces_b = by_answer.series(think.pieces, again.pieces)
    assert pieces_b[5:9] == ["Yes", ".", " Always", "."] and pieces_b[:5] == [None] * 5
    assert pieces_a[5] == "\n\n" and by_answer.length == len(THINK)
    assert by_answer.diverged_at == 5  # "\n\n" vs "Yes": compared only where both have begun
    assert align(think, think).diverged_at is None
    conversation = log.new_conversation(persona="assistant")
    never = load_curves(log, log.add_assistant_turn(reply(conversation, None, ["Yes", ".", " Never", "."])))
    assert align(again, never).diverged_at == 2
    longer = load_curves(log, log.add_assistant_turn(reply(conversation, None, ["Yes", ".", " Always", ".", "!"])))
    assert align(again, longer).diverged_at == 4  # one ran on where the other stopped
