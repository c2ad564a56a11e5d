"""A private Xvfb display for running the studio (and GUI tests) on a headless machine."""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys


class VirtualDisplay:
    """Start Xvfb on a free display number (Xvfb picks it via -displayfd); stop() kills it."""

    def __init__(self, size: str = "1600x1000x24") -> None:
        self.size = size
        self.proc: subprocess.Popen | None = None
        self.display: str | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("Xvfb") is not None

    def start(self, timeout: float = 10.0) -> str:
        r, w = os.pipe()
        self.proc = subprocess.Popen(
            ["Xvfb", "-displayfd", str(w), "-screen", "0", self.size, "-nolisten", "tcp"],
            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(w)
        import select
        ready, _, _ = select.select([r], [], [], timeout)
        number = os.read(r, 64).decode().strip() if ready else ""
        self._fd = r  # kept open: Xvfb may still write its newline, and a closed pipe kills it
        if not number:
            self.stop()
            raise RuntimeError("Xvfb did not start (no display number reported)")
        self.display = f":{number}"
        atexit.register(self.stop)
        self._wait_ready(number, timeout)
        return self.display

    def _wait_ready(self, number: str, timeout: float) -> None:
        """Xvfb reports its number a moment before it serves clients; a client that connects
        in that window fails, so wait until the socket accepts and the server is settled."""
        import socket
        import time

        path = f"/tmp/.X11-unix/X{number}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(path)
                break
            except OSError:
                time.sleep(0.05)

    def stop(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


def ensure_display(announce: bool = True) -> VirtualDisplay | None:
    """On Linux without DISPLAY, start a private Xvfb and point DISPLAY at it.

    Returns the VirtualDisplay (caller stops it) or None when a display already exists.
    Raises SystemExit(2) with a clear message when there is no display and no Xvfb.
    """
    if not sys.platform.startswith("linux") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    if os.environ.get("QT_QPA_PLATFORM", "").startswith("offscreen"):
        return None
    if not VirtualDisplay.available():
        print("error: no display (DISPLAY is not set) and Xvfb is not installed; run Likeness in a "
              "desktop session, or install Xvfb (apt install xvfb) to run it on a virtual display.",
              file=sys.stderr)
        raise SystemExit(2)
    vd = VirtualDisplay()
    display = vd.start()
    os.environ["DISPLAY"] = display
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    if announce:
        print(f"No display found: running on a private virtual display {display} (Xvfb).", file=sys.stderr)
    return vd
