"""An SMTP server on 127.0.0.1 that keeps what it receives: the demo's (and the tests') stand-in for a mail server.

Each message is kept in memory with its recipients and, given a folder, written there as ``<n>.eml`` and, for
reading in a browser, ``<n>.html`` (its HTML part). Development only: ``aiosmtpd`` is in requirements-dev.txt.
"""

from __future__ import annotations

import html
from email import message_from_bytes
from email.message import Message
from pathlib import Path


class Mailbox:
    """aiosmtpd's handler: every message the server accepted, with its envelope's recipients."""

    def __init__(self, folder: Path | None = None):
        self.folder = folder
        self.received: list[tuple[tuple[str, ...], Message]] = []
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        message = message_from_bytes(envelope.content)
        self.received.append((tuple(envelope.rcpt_tos), message))
        if self.folder is not None:
            number = len(list(self.folder.glob("*.eml"))) + 1
            (self.folder / f"{number:03d}.eml").write_bytes(envelope.content)
            heading = f"To: {', '.join(envelope.rcpt_tos)}, subject: {message['Subject']}"
            (self.folder / f"{number:03d}.html").write_text(f"<p>{html.escape(heading)}</p>\n{html_part(message)}",
                                                            encoding="utf-8")
        return "250 Message accepted for delivery"

    def take(self) -> list[tuple[tuple[str, ...], Message]]:
        """What arrived since the last call."""
        taken, self.received = self.received, []
        return taken


def html_part(message: Message) -> str:
    [part] = [part for part in message.walk() if part.get_content_type() == "text/html"]
    return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")


def start_mailbox(port: int, folder: Path | None = None):
    """The server on 127.0.0.1:``port``, started; its ``handler`` is the Mailbox, ``stop()`` ends it."""
    from aiosmtpd.controller import Controller

    controller = Controller(Mailbox(folder), hostname="127.0.0.1", port=port)
    controller.start()
    return controller
