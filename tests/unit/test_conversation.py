"""conversation.py: one virtual user's conversation (--turns), and the options that set it."""

from __future__ import annotations

from sse_perf_tool import cli
from sse_perf_tool.conversation import Conversation
from sse_perf_tool.flavors.base import RequestSettings


def test_a_failed_turn_starts_a_new_conversation():
    talk = Conversation(3, "history")
    base = RequestSettings(user="u-{thread}")
    settings, turn = talk.settings(base, 4)
    assert (turn, settings.user, settings.history) == (1, "u-4", ())
    talk.after(True, "q1", "a1", None)
    settings, turn = talk.settings(base, 4)
    assert (turn, settings.history) == (2, (("user", "q1"), ("assistant", "a1")))
    talk.after(False, "q2", "", None)
    assert talk.settings(base, 4)[1] == 1 and talk.settings(base, 4)[0].history == ()


def test_a_dify_turn_without_a_conversation_id_starts_over_and_one_turn_changes_nothing_but_the_user():
    talk = Conversation(3, "id")
    talk.after(True, "q", "a", None)  # the server named no conversation: nothing to go on with
    assert talk.settings(RequestSettings(), 1)[1] == 1
    single = Conversation(1, "id")
    settings, turn = single.settings(RequestSettings(user="fixed"), 9)
    assert turn is None and settings == RequestSettings(user="fixed")
    assert Conversation(5, "").settings(RequestSettings(), 1)[1] is None, "a flavour that cannot converse"


def test_turns_on_a_flavour_without_conversations_is_a_usage_error(capsys):
    code = cli.main(["--api", "openai-completions", "--base-url", "http://127.0.0.1:9/v1", "--turns", "3"])
    assert code == 2
    assert "--turns needs a flavour that holds a conversation" in capsys.readouterr().err
    assert cli.main(["--base-url", "http://127.0.0.1:9/v1", "--turns", "0"]) == 2
    assert "--turns must be at least 1" in capsys.readouterr().err
