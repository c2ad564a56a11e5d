"""Listener dock: the avatar listens to a speaker.

- From a file (speaker audio or video): the listener model generates a clip on a worker thread
  (tracking the speaker's face when a video is given; progress and Cancel in the status bar); the
  clip, with the speaker's sound, joins the project's clips so the Timeline plays, edits and
  exports it.
- Live: the microphone (sounddevice) as the speaker, through the causal model, one frame per
  40 ms; without a microphone the panel says so and a file can play the speaker's part in real
  time instead. The live loop runs on its own thread and hands frames to the GUI thread, which
  writes them through the document's setters (the viewport follows).
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox,
                               QVBoxLayout, QWidget)

from core.avatar import Avatar

log = logging.getLogger(__name__)
MEDIA_FILTER = "Speaker audio or video (*.wav *.mp3 *.m4a *.flac *.ogg *.mp4 *.mov *.avi *.mkv *.webm)"
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm")


def listener_clip_from_file(path: str, attitude: str, seed: int, progress, cancelled):
    """(clip, notices) for a speaker file: the work of 'Listen to a file' (and of `main.py listen`)."""
    from core.animation.audio import read_audio
    from core.animation.clip import AudioTrack
    from core.listener.attitude import attitude_weights
    from core.listener.data import make_speaker, motion_to_clip, speaker_condition
    from core.listener.generate import Listener

    notices = []
    listener = Listener.load()
    att, described = attitude_weights(attitude)
    audio = read_audio(path, required=False)
    clip = None
    if Path(path).suffix.lower() in VIDEO_SUFFIXES:
        from core.animation.track import NoFaceError, track_video
        try:
            clip, _ = track_video(path, with_audio=False, progress=lambda f, s: progress(0.5 * f, s),
                                  cancelled=cancelled)
        except NoFaceError:
            notices.append("no face in the speaker's video: the listener follows the audio alone")
    if audio is None:
        if clip is None:
            raise ValueError(f"{Path(path).name} has neither sound nor a face")
        notices.append("the speaker's video has no sound: the listener follows the face alone")
        audio = AudioTrack(np.zeros(int(clip.duration * 16000), np.float32), 16000)
    speaker = make_speaker(Path(path).stem, audio.samples, clip)
    if speaker.feat.silent:
        notices.append("the speaker's audio is silent: the listener idles")
    cond = speaker_condition(speaker, listener.mean, listener.std, use_video=clip is not None)
    motion, _ = listener.generate(cond, att, seed=seed, progress=lambda f, s: progress(0.5 + 0.5 * f, s),
                                  cancelled=cancelled)
    out = motion_to_clip(motion, name=f"Listening to {Path(path).stem} ({described.split(',')[0]})",
                         audio=audio, source=str(path), meta={"attitude": described, "seed": seed})
    return out, notices


class LiveWorker(QObject):
    """The live loop on its own thread: audio chunks (microphone or a file in real time) ->
    LiveListener -> `frame` signals."""

    frame = Signal(object)           # (56,) listener motion
    stopped = Signal(str)            # why it ended

    def __init__(self, attitude: np.ndarray, file: str | None):
        super().__init__()
        self.attitude = attitude
        self.file = file
        self._stop = threading.Event()
        self.latencies: list[float] = []

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        import torch

        from core.listener.features import HOP, RATE
        from core.listener.generate import Listener, LiveListener
        torch.set_num_threads(1)
        try:
            live = LiveListener(Listener.load(), self.attitude)
            if self.file:
                from core.animation.audio import read_audio
                samples = read_audio(self.file).samples
                t0 = time.perf_counter()
                for k in range(len(samples) // HOP):
                    if self._stop.is_set():
                        break
                    wait = t0 + k * HOP / RATE - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                    a = time.perf_counter()
                    self.frame.emit(live.push(samples[k * HOP:(k + 1) * HOP]))
                    self.latencies.append(time.perf_counter() - a)
                self.stopped.emit("the speaker's file ended" if not self._stop.is_set() else "stopped")
            else:
                import sounddevice as sd
                with sd.InputStream(samplerate=RATE, channels=1, blocksize=HOP, dtype="float32") as stream:
                    while not self._stop.is_set():
                        chunk, _ = stream.read(HOP)
                        a = time.perf_counter()
                        self.frame.emit(live.push(chunk[:, 0]))
                        self.latencies.append(time.perf_counter() - a)
                self.stopped.emit("stopped")
        except Exception as exc:   # a device that vanished, damaged weights or file
            self.stopped.emit(f"error: {exc}")


class ListenPanel(QWidget):
    status_changed = Signal(str)

    def __init__(self, avatar: Avatar, runner=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.avatar = avatar
        self.runner = runner
        self.task = None
        self.thread: QThread | None = None
        self.worker: LiveWorker | None = None
        self.frames_shown = 0
        self.attitude_edit = QLineEdit("attentive", toolTip="attentive, amused, sceptical, bored, or a sentence")
        self.seed_spin = QSpinBox(minimum=0, maximum=10 ** 6)
        self.file_button = QPushButton("Listen to a file…", clicked=lambda: self.listen_to_file())
        self.live_button = QPushButton("Live (microphone)", checkable=True)
        self.live_button.toggled.connect(self.set_live)
        self.notice = QLabel("", wordWrap=True)
        self.notice.setStyleSheet("color: #d9b45a")
        row = QHBoxLayout()
        for w in (QLabel("Attitude"), self.attitude_edit, QLabel("Seed"), self.seed_spin):
            row.addWidget(w)
        row2 = QHBoxLayout()
        row2.addWidget(self.file_button)
        row2.addWidget(self.live_button)
        v = QVBoxLayout(self)
        v.addLayout(row)
        v.addLayout(row2)
        v.addWidget(self.notice)
        v.addStretch(1)

    # --- from a file --------------------------------------------------------------------------
    def listen_to_file(self, path: str | None = None, on_done=None):
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Speaker audio or video", "", MEDIA_FILTER)
            if not path:
                return None
        attitude, seed = self.attitude_edit.text(), self.seed_spin.value()

        def work(ctx):
            return listener_clip_from_file(path, attitude, seed, ctx.progress, lambda: ctx.cancelled)

        def done(result):
            clip, notices = result
            self.avatar.add_clip(clip)
            self._say("; ".join(notices) if notices else f"added '{clip.name}' ({clip.duration:.1f} s) to the clips")
            if on_done:
                on_done(clip)

        if self.runner is None:
            from app.workers import TaskRunner
            self.runner = TaskRunner(self)
        self.file_button.setEnabled(False)
        self.task = self.runner.start(f"Listening to {Path(path).name}", work, on_done=done,
                                      on_error=lambda m: self._say(f"error: {m}"),
                                      on_cancel=lambda: self._say("cancelled"))
        self.task.signals.done.connect(lambda: self.file_button.setEnabled(True))
        return self.task

    # --- live ---------------------------------------------------------------------------------
    def set_live(self, on: bool, file: str | None = None) -> None:
        if self.live_button.isChecked() != on:
            self.live_button.blockSignals(True)
            self.live_button.setChecked(on)
            self.live_button.blockSignals(False)
        if not on:
            self._stop_live()
            return
        from core.animation.audio import input_device_status
        from core.listener.attitude import attitude_weights
        if file is None:
            ok, why = input_device_status()
            if not ok:
                self._say(f"{why} Choose a file to play the speaker's part instead.")
                file, _ = QFileDialog.getOpenFileName(self, "Speaker's part (no microphone)", "", MEDIA_FILTER) \
                    if self.isVisible() else ("", "")
                if not file:
                    self.set_live(False)
                    return
        att, described = attitude_weights(self.attitude_edit.text())
        self.worker = LiveWorker(att, file)
        self.thread = QThread(self)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.worker.frame.connect(self._show_frame)
        self.worker.stopped.connect(self._live_ended)
        self.frames_shown = 0
        self.thread.start()
        self._say(f"live listening ({described}) to {'the microphone' if file is None else Path(file).name}")

    def _show_frame(self, m: np.ndarray) -> None:
        self.avatar.set_expression(m[:53])
        self.avatar.set_head_pose(m[53:56])
        self.frames_shown += 1

    def _live_ended(self, why: str) -> None:
        lat = self.worker.latencies if self.worker else []
        if lat:
            why += f" ({len(lat)} frames, median {1000 * float(np.median(lat)):.0f} ms per frame)"
        self._stop_live()
        self.set_live(False)
        self._say(f"live listening: {why}")

    def _stop_live(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        if self.thread is not None:
            self.thread.quit()
            self.thread.wait(5000)
        self.worker = self.thread = None

    @property
    def live(self) -> bool:
        return self.thread is not None

    def _say(self, text: str) -> None:
        self.notice.setText(text)
        self.status_changed.emit(text)

    def shutdown(self) -> None:
        self._stop_live()
