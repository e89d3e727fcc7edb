"""Work around an nbclient stall with ipywidgets (nbclient #312): re-arm the shell socket after each send.

nbclient imitates the `Output` widget and echoes captured output to the kernel on the shell channel.
That synchronous send can swallow the edge-triggered wake-up of an `execute_reply` that has just
arrived, so the cell waits for its whole timeout (see ../shared/TOOLCHAIN.md). Reading
`zmq.EVENTS` after the send re-checks the socket and wakes the pending poll.
"""
from __future__ import annotations

import zmq
from nbclient.output_widget import OutputWidget

_original = OutputWidget._publish_msg


def _publish_msg_and_rearm(self, *args, **kwargs):
    """Send as nbclient does, then poke the shell socket so a queued reply is noticed."""
    result = _original(self, *args, **kwargs)
    socket = getattr(self.kernel_client.shell_channel, "socket", None)
    if socket is not None:
        try:
            socket.get(zmq.EVENTS)
        except zmq.ZMQError:
            pass
    return result


def apply() -> None:
    """Install the patch (idempotent)."""
    OutputWidget._publish_msg = _publish_msg_and_rearm
