"""One virtual user's conversation (--turns N): which turn the next request is, what it carries of
the earlier turns, and the user it speaks as (`--user` with a `{thread}` placeholder).

How a conversation goes on is the flavour's (`Flavor.conversation`): "id" sends back the
conversation id the server gave (Dify), "history" sends the earlier turns again, the real
answers included (OpenAI chat: 1, 3, 5 ... messages). After N turns, or a failed turn, the next
request starts a new conversation.

Pure; imports flavors.base (the request settings). One per tester, so one per thread: no lock.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from .flavors.base import RequestSettings


class Conversation:
    def __init__(self, turns: int, mode: str):
        self.turns = turns if mode else 1
        self.mode = mode
        self._turn = 0  # turns done in the conversation now held
        self._id = ""
        self._history: list[tuple[str, str]] = []

    def settings(self, base: RequestSettings, thread_id: int) -> tuple[RequestSettings, Optional[int]]:
        """The settings of this thread's next request, and its turn (None without --turns)."""
        user = base.user.replace("{thread}", str(thread_id))
        if self.turns <= 1:
            return (base if user == base.user else replace(base, user=user)), None
        return replace(base, user=user, conversation_id=self._id or base.conversation_id,
                       history=tuple(self._history)), self._turn + 1

    def after(self, ok: bool, question: str, answer: str, conversation_id: Optional[str]) -> None:
        """A turn ended: keep what the next one needs, or start over after the last or a failure."""
        if self.turns <= 1:
            return
        self._turn += 1
        if not ok or self._turn >= self.turns or (self.mode == "id" and not conversation_id):
            self._turn, self._id, self._history = 0, "", []
            return
        if self.mode == "id":
            self._id = conversation_id or ""
        else:
            self._history += [("user", question), ("assistant", answer)]
