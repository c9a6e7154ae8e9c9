"""A fast SMTP sink for benchmarks: one asyncio loop of raw protocols, PIPELINING, DATA discarded.

`python bench/_smtp_sink.py` prints its port, then answers each "stats" line on stdin with one
JSON line: messages, recipients, distinct recipients, duplicates, DATA bytes and the sink's own
CPU seconds so far. It parses only what a sink must (command verbs, RCPT addresses, the
end-of-data line, RFC 5321 §4.1.1.4) and answers each pipelined group (RFC 2920) in one write,
so its ceiling is well above what the channel sends; `bench/smtp.py` measures that ceiling.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time

EHLO = (b"250-sink.bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
        b"250 SIZE 100000000\r\n")
END = b"\r\n.\r\n"


class Counts:
    """What arrived: exact counts, shared by every session of the one loop."""

    def __init__(self) -> None:
        self.messages = 0
        self.recipients = 0
        self.duplicates = 0
        self.bytes = 0
        self.seen: set[bytes] = set()

    def stats(self) -> dict[str, float]:
        """The counts and the sink's own CPU time (all threads) as one JSON-ready dict."""
        return {"messages": self.messages, "recipients": self.recipients,
                "distinct": len(self.seen), "duplicates": self.duplicates,
                "bytes": self.bytes, "cpu": time.process_time()}


class Session(asyncio.Protocol):
    """One SMTP session: commands line by line, DATA skipped to its end line."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.buf = bytearray()
        self.rcpts: list[bytes] = []
        self.in_data = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Greet."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 sink.bench ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        """Answer every complete command (and message) in the buffer, in one write."""
        self.buf += data
        out: list[bytes] = []
        del self.buf[:self._consume(out)]
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    def _consume(self, out: list[bytes]) -> int:
        """Handle what the buffer holds; the offset of the first byte still needed."""
        buf, pos = self.buf, 0
        while True:
            if self.in_data:  # the buffer from pos starts with the DATA line's own CRLF
                end = buf.find(END, pos)
                if end < 0:
                    keep = max(pos, len(buf) - len(END) + 1)  # a split end line stays
                    self.counts.bytes += keep - pos
                    return keep
                self.counts.bytes += end - pos
                pos = end + len(END)
                self.in_data = False
                out.append(self._delivered())
                continue
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return pos
            reply = self._command(bytes(buf[pos:eol]))
            out.append(reply)
            pos = eol if self.in_data else eol + 2
            if reply.startswith(b"221") and self.transport is not None:
                self.transport.write(b"".join(out))
                out.clear()
                self.transport.close()
                return len(buf)

    def _command(self, line: bytes) -> bytes:
        """The reply to one command line."""
        verb = line[:4].upper()
        if verb == b"RCPT":
            start, end = line.find(b"<"), line.rfind(b">")
            self.rcpts.append(line[start + 1:end].lower())
            return b"250 2.1.5 OK\r\n"
        if verb == b"MAIL":
            self.rcpts = []
            return b"250 2.1.0 OK\r\n"
        if verb == b"DATA":
            if not self.rcpts:
                return b"503 5.5.1 no valid recipients\r\n"
            self.in_data = True
            return b"354 end with <CRLF>.<CRLF>\r\n"
        if verb == b"EHLO":
            return EHLO
        if verb in (b"HELO", b"RSET", b"NOOP"):
            self.rcpts = [] if verb != b"NOOP" else self.rcpts
            return b"250 OK\r\n"
        if verb == b"QUIT":
            return b"221 bye\r\n"
        return b"502 5.5.2 not implemented\r\n"

    def _delivered(self) -> bytes:
        """Count one accepted message and its recipients."""
        counts = self.counts
        counts.messages += 1
        counts.recipients += len(self.rcpts)
        for rcpt in self.rcpts:
            if rcpt in counts.seen:
                counts.duplicates += 1
            counts.seen.add(rcpt)
        self.rcpts = []
        return b"250 2.0.0 queued\r\n"


def answer_stats(loop: asyncio.AbstractEventLoop, counts: Counts) -> None:
    """One JSON line per "stats" line on stdin (read inside the loop, so counts are consistent)."""
    for _ in sys.stdin:
        future = asyncio.run_coroutine_threadsafe(_stats(counts), loop)
        print(json.dumps(future.result()), flush=True)
    loop.call_soon_threadsafe(loop.stop)


async def _stats(counts: Counts) -> dict[str, float]:
    """The counts, read on the loop's thread."""
    return counts.stats()


def main() -> None:
    """Serve on a free port of 127.0.0.1 until stdin closes."""
    loop = asyncio.new_event_loop()
    counts = Counts()
    server = loop.run_until_complete(
        loop.create_server(lambda: Session(counts), "127.0.0.1", 0, backlog=64))
    print(server.sockets[0].getsockname()[1], flush=True)
    threading.Thread(target=answer_stats, args=(loop, counts), daemon=True).start()
    loop.run_forever()


if __name__ == "__main__":
    main()
