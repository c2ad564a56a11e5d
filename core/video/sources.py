"""The concrete sources and `open_source(spec)`.

A camera never raises while iterating: when it is missing, busy or unplugged its status turns
RECONNECTING and it is re-opened with exponential backoff until it returns (or until
`give_up_after_s`, if set, passes without a frame). Files raise VideoSourceError up front when
they cannot be decoded, so a corrupt video is reported before any work starts.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from .frame import Frame, SourceState, SourceStatus

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


class VideoSourceError(ValueError):
    """A source that cannot deliver frames: unreadable file, no images, camera never available."""


class VideoSource:
    """Iterable of Frame; a context manager; `status` says what it is doing, in words."""

    name: str = ""
    fps: float = 0.0  # nominal rate (0 when unknown)

    def __init__(self) -> None:
        self._status = SourceStatus(SourceState.OPENING)
        self._closed = False
        # cv2.VideoCapture is not thread-safe: a UI closes the source while a worker reads it, and
        # releasing mid-read can deadlock inside FFmpeg. Reads and releases take this lock.
        self._io = threading.Lock()

    @property
    def status(self) -> SourceStatus:
        return self._status

    def _set(self, state: SourceState, message: str = "") -> None:
        self._status = SourceStatus(state, message)

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        self._closed = True
        self._set(SourceState.CLOSED)

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


CaptureFactory = Callable[[int], "cv2.VideoCapture"]


def _default_capture(index: int) -> cv2.VideoCapture:
    return cv2.VideoCapture(index)


class CameraSource(VideoSource):
    """A webcam by index. Reconnects with backoff; timestamps are seconds since open (monotonic).

    `capture_factory` builds the cv2.VideoCapture-like object (tests pass a fake that fails);
    `give_up_after_s` ends iteration with status FAILED after that long without a frame
    (None: keep retrying until close(), which is what a live UI wants).
    """

    def __init__(self, index: int = 0, width: int | None = 640, height: int | None = 480,
                 capture_factory: CaptureFactory = _default_capture,
                 backoff_s: tuple[float, float] = (0.25, 8.0), give_up_after_s: float | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__()
        self.index, self.width, self.height = index, width, height
        self.name = f"camera {index}"
        self._factory, self._backoff, self._give_up = capture_factory, backoff_s, give_up_after_s
        self._sleep = sleep
        self._cap = None
        self._t0 = time.monotonic()
        self.attempts = 0  # failed (re)connection attempts since the last frame

    def _open(self) -> bool:
        self._release()
        try:
            cap = self._factory(self.index)
        except Exception as exc:  # a driver error must not escape into the UI thread
            self._set(SourceState.RECONNECTING, f"{self.name}: could not open ({exc})")
            return False
        if cap is None or not cap.isOpened():
            self._set(SourceState.RECONNECTING,
                      f"{self.name} is not available (missing, unplugged or used by another program)")
            return False
        if self.width and self.height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self._cap = cap
        return True

    def _release(self, timeout: float = -1) -> None:
        # a camera hung in read() keeps the lock: its reader releases it when read() returns
        if not self._io.acquire(timeout=timeout):
            return
        try:
            if self._cap is not None:
                try:
                    self._cap.release()
                except Exception:
                    pass
            self._cap = None
        finally:
            self._io.release()

    def __iter__(self) -> Iterator[Frame]:
        index, last_frame_t = 0, time.monotonic()
        try:
            while not self._closed:
                if self._cap is None and not self._open():
                    if not self._wait_retry(last_frame_t):
                        return
                    continue
                try:
                    with self._io:
                        ok, image = self._cap.read() if self._cap is not None else (False, None)
                except Exception as exc:
                    ok, image = False, None
                    self._set(SourceState.RECONNECTING, f"{self.name}: read failed ({exc})")
                if not ok or image is None:
                    # unplugged or grabbed by another program mid-session: drop it and reconnect
                    if self._status.state != SourceState.RECONNECTING:
                        self._set(SourceState.RECONNECTING, f"{self.name} stopped delivering frames; reconnecting")
                    self._release()
                    if not self._wait_retry(last_frame_t):
                        return
                    continue
                self.attempts = 0
                last_frame_t = time.monotonic()
                if self._status.state != SourceState.LIVE:
                    self._set(SourceState.LIVE, f"{self.name} {image.shape[1]}x{image.shape[0]}")
                yield Frame(_as_bgr(image), index, last_frame_t - self._t0, self.name)
                index += 1
        finally:
            if self._closed:  # closed while this thread was in read(): release it here
                self._release()

    def _wait_retry(self, last_frame_t: float) -> bool:
        """Sleep the backoff for the next attempt; False when it is time to give up."""
        self.attempts += 1
        if self._give_up is not None and time.monotonic() - last_frame_t >= self._give_up:
            self._set(SourceState.FAILED, f"{self._status.message}; gave up after "
                      f"{self._give_up:g} s without a frame")
            return False
        lo, hi = self._backoff
        delay = min(hi, lo * 2 ** (self.attempts - 1))
        self._set(SourceState.RECONNECTING,
                  f"{self._status.message.split('; retry')[0]}; retry {self.attempts} in {delay:.2g} s")
        self._sleep(delay)
        return not self._closed

    def close(self) -> None:
        super().close()
        self._release(timeout=1.0)


class VideoFileSource(VideoSource):
    """A video file decoded by OpenCV's FFmpeg backend; timestamps are media time in seconds."""

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        self.name = self.path.name
        if not self.path.is_file():
            raise FileNotFoundError(f"video file not found: {self.path}")
        self._cap = cv2.VideoCapture(str(self.path))
        ok, first = (self._cap.read() if self._cap.isOpened() else (False, None))
        if not ok or first is None:
            self._cap.release()
            raise VideoSourceError(f"cannot decode video {self.path}: the file is corrupt, truncated or "
                                   f"not a video format FFmpeg can read")
        self._first = first
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.size = (first.shape[1], first.shape[0])
        self._set(SourceState.LIVE, f"{self.name} {self.size[0]}x{self.size[1]} @ {self.fps:.3g} fps")

    def __iter__(self) -> Iterator[Frame]:
        if self._first is None:
            raise VideoSourceError(f"{self.name} can be iterated once; open it again to re-read")
        image, index = self._first, 0
        self._first = None
        while image is not None and not self._closed:
            yield Frame(_as_bgr(image), index, index / self.fps if self.fps > 0 else 0.0, self.name)
            index += 1
            with self._io:
                ok, image = self._cap.read() if not self._closed else (False, None)
            if not ok:
                image = None
        if not self._closed:
            # stopping well short of the header's frame count means the file is damaged
            short = self.frame_count and index < 0.9 * self.frame_count
            self._set(SourceState.FAILED if short else SourceState.ENDED,
                      f"{self.name}: decoding stopped at frame {index} of {self.frame_count} "
                      f"(damaged file)" if short else f"{self.name}: {index} frames")

    def close(self) -> None:
        super().close()
        with self._io:  # waits for a read in progress (milliseconds for a file)
            self._cap.release()


class ImageSource(VideoSource):
    """One image file or a folder of images (sorted by name); timestamps are index / fps."""

    def __init__(self, path: str | Path, fps: float = 1.0):
        super().__init__()
        self.path = Path(path)
        self.name = self.path.name
        self.fps = fps
        if self.path.is_dir():
            self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
            if not self.files:
                raise VideoSourceError(f"no images ({', '.join(sorted(IMAGE_EXTS))}) in folder {self.path}")
        elif self.path.is_file():
            self.files = [self.path]
        else:
            raise FileNotFoundError(f"image file or folder not found: {self.path}")
        self.skipped: list[str] = []
        if len(self.files) == 1:  # a single image must be readable, say so now rather than yield nothing
            self._read(self.files[0], strict=True)
        self._set(SourceState.LIVE, f"{self.name}: {len(self.files)} image(s)")

    def _read(self, path: Path, strict: bool = False) -> np.ndarray | None:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            if strict:
                raise VideoSourceError(f"cannot read image {path}: corrupt or not an image format OpenCV knows")
            self.skipped.append(f"{path.name}: unreadable")
        return image

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        for path in self.files:
            if self._closed:
                return
            image = self._read(path)
            if image is None:
                continue  # one bad file in a folder should not end the run; it is listed in .skipped
            yield Frame(image, index, index / self.fps if self.fps > 0 else 0.0, path.name)
            index += 1
        self._set(SourceState.ENDED, f"{self.name}: {index} image(s)"
                  + (f", skipped {len(self.skipped)} unreadable" if self.skipped else ""))


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def open_source(spec: str | int | Path, **camera_options) -> VideoSource:
    """A camera index ("0", 0), a video file, an image file or a folder of images."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return CameraSource(int(spec), **camera_options)
    path = Path(spec)
    if path.is_dir() or path.suffix.lower() in IMAGE_EXTS:
        return ImageSource(path)
    return VideoFileSource(path)
