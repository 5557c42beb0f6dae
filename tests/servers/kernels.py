"""Running cells in a kernel over jupyter_client and reading what they produced."""

from __future__ import annotations


class Cell:
    """What one execution produced."""

    def __init__(self, reply: dict, messages: list[dict]):
        self.reply = reply["content"]
        self.messages = messages

    @property
    def ok(self) -> bool:
        return self.reply["status"] == "ok"

    @property
    def stdout(self) -> str:
        return "".join(
            m["content"]["text"]
            for m in self.messages
            if m["msg_type"] == "stream" and m["content"]["name"] == "stdout"
        )

    def data(self, mime: str = "text/plain") -> list[str]:
        return [
            m["content"]["data"][mime]
            for m in self.messages
            if m["msg_type"] in ("execute_result", "display_data", "update_display_data")
            and mime in m["content"]["data"]
        ]

    @property
    def result(self) -> str | None:
        results = [
            m["content"]["data"]["text/plain"] for m in self.messages if m["msg_type"] == "execute_result"
        ]
        return results[-1] if results else None

    @property
    def error(self) -> dict | None:
        errors = [m["content"] for m in self.messages if m["msg_type"] == "error"]
        return errors[-1] if errors else None

    @property
    def failure(self) -> str:
        """Everything the failed cell said: the reply, stderr and any traceback."""
        stderr = "".join(
            m["content"]["text"]
            for m in self.messages
            if m["msg_type"] == "stream" and m["content"]["name"] == "stderr"
        )
        traceback = "\n".join(self.error["traceback"]) if self.error else ""
        return f"{self.reply.get('ename')}: {self.reply.get('evalue')}\n{stderr}\n{traceback}"


def execute(client, code: str, timeout: float = 120) -> Cell:
    messages: list[dict] = []
    reply = client.execute_interactive(code, timeout=timeout, output_hook=messages.append)
    return Cell(reply, messages)
