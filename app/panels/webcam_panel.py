"""Webcam panel: live face tracking + expression recognition, recording, and avatar puppeteering.

Threads: a `CaptureWorker` (a QObject moved to its own QThread) opens the core.video source,
runs core.fer's FerPipeline, draws the overlay, writes the recording, and emits one `frame`
signal per processed frame. The GUI thread only displays: while it has not shown the last
frame, new frames are dropped (not queued), so a slow GUI never builds a backlog. The recorder
runs in the worker thread, so recordings keep every processed frame even when display drops.

A video file stands in for a camera: it plays at its own frame rate and loops.
Puppeteering writes the primary face's 53 weights and head pose through the document's
setters (`avatar.set_expression`, `avatar.set_head_pose`); the expression panel and the
viewport follow its events. Calibrating neutral stores both the resting weights and the resting
head pose, so a camera that sees the user from an angle still gives a front-facing avatar.
"""
from __future__ import annotations

import csv
import logging
import os
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton,
                               QSizePolicy, QSlider, QVBoxLayout, QWidget)

from core.avatar import Avatar
from core.tracking.puppet import Puppet

log = logging.getLogger(__name__)

TIMELINE_S = 10.0
CAMERAS = 4
VIDEO_ITEM = "Video file…"
FILE_FILTER = "Videos (*.mp4 *.mov *.avi *.mkv *.webm);;All files (*)"


# --- recording (worker thread writes, GUI thread closes; a lock keeps them apart) -------------
class Recorder:
    """Annotated frames to MP4 (H.264 via imageio-ffmpeg) + one CSV row per frame and face.

    Both files are written under temporary names beside the target and renamed on close(),
    so a crash never leaves a half-written file under the chosen name."""

    def __init__(self, mp4_path: str | Path, fps: float) -> None:
        from core.fer.pipeline import CSV_COLUMNS

        self.mp4_path = Path(mp4_path)
        self.csv_path = self.mp4_path.with_suffix(".csv")
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self._tmp_mp4 = self.mp4_path.with_name(f".{self.mp4_path.name}.part")
        self._tmp_csv = self.csv_path.with_name(f".{self.csv_path.name}.part")
        self._lock = threading.Lock()
        self._csv_file = open(self._tmp_csv, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._csv_file)
        self._csv.writerow(CSV_COLUMNS)
        self._video = None
        self._size: tuple[int, int] | None = None
        self._t0: float | None = None
        self.frames = 0
        self.rows = 0
        self.closed = False

    def write(self, image: np.ndarray, results, timestamp_s: float) -> None:
        import cv2

        with self._lock:
            if self.closed:
                return
            if self._video is None:
                import imageio_ffmpeg

                h, w = image.shape[:2]
                self._size = (w, h)
                self._video = imageio_ffmpeg.write_frames(
                    str(self._tmp_mp4), (w, h), pix_fmt_in="bgr24", fps=self.fps, codec="libx264",
                    quality=7, macro_block_size=2, output_params=["-f", "mp4"],
                    ffmpeg_log_level="error")
                self._video.send(None)
                self._t0 = timestamp_s
            if (image.shape[1], image.shape[0]) != self._size:  # a camera came back at another size
                image = cv2.resize(image, self._size)
            self._video.send(np.ascontiguousarray(image))
            t = timestamp_s - self._t0
            for r in sorted(results, key=lambda r: r.face.face_id):
                self._csv.writerow(r.csv_row(self.frames, t))
                self.rows += 1
            self.frames += 1

    def close(self) -> str:
        """Finish both files; returns a one-line summary for the status line."""
        with self._lock:
            if self.closed:
                return ""
            self.closed = True
            if self._video is not None:
                self._video.close()
            self._csv_file.close()
            if self.frames == 0:
                for p in (self._tmp_mp4, self._tmp_csv):
                    p.unlink(missing_ok=True)
                return "recording stopped: no frames were recorded"
            os.replace(self._tmp_mp4, self.mp4_path)
            os.replace(self._tmp_csv, self.csv_path)
            return f"recorded {self.frames} frames to {self.mp4_path.name} and {self.csv_path.name}"


# --- capture + analysis worker ---------------------------------------------------------------
class CaptureWorker(QObject):
    """Loops over a source in its own thread: track, classify, draw, record, emit."""

    frame = Signal(object, object, float, object)  # annotated BGR image, list[FaceResult], time_s, Frame
    status = Signal(str)
    finished = Signal()

    def __init__(self, spec: str, landmarks: bool = False, heatmap: bool = False,
                 loop: bool = True, realtime: bool = True, aus: bool = False, engine: str = "two-stage") -> None:
        super().__init__()
        self.spec = spec
        self.engine = engine    # "two-stage" (MediaPipe + classifier) or "one-stage" (the detector)
        # read every frame: toggles apply live
        self.landmarks, self.heatmap, self.aus = landmarks, heatmap, aus
        self.loop, self.realtime = loop, realtime
        self.recorder: Recorder | None = None
        self.fps = 0.0
        self.processed = 0
        self.dropped = 0
        self._stop = threading.Event()
        self._gui_free = threading.Event()  # set when the GUI has shown the last frame
        self._gui_free.set()
        self._source = None

    def stop(self) -> None:
        self._stop.set()
        src = self._source
        if src is not None:
            try:
                src.close()  # a camera waiting to reconnect wakes up through the stop event
            except Exception:
                pass

    def frame_shown(self) -> None:
        self._gui_free.set()

    def _open(self):
        from core.video import open_source

        is_camera = self.spec.strip().isdigit()
        if not is_camera:
            return open_source(self.spec)

        def sleep(delay: float) -> None:  # reconnect backoff: report why, wake up on stop
            src = self._source
            if src is not None:
                self.status.emit(str(src.status))
            self._stop.wait(delay)

        return open_source(self.spec, sleep=sleep)

    @Slot()
    def run(self) -> None:
        pipe = None
        try:
            self.status.emit(f"opening {self._describe()}…")
            try:
                self._source = self._open()
            except (OSError, ValueError) as exc:  # FileNotFoundError, VideoSourceError
                self.status.emit(f"error: {exc}")
                return
            one_stage = self.engine == "one-stage"
            self.status.emit("loading the one-stage face + expression detector…" if one_stage
                             else "loading face tracker and expression model…")
            from core.fer.overlay import draw_results
            from core.fer.pipeline import FerPipeline
            from core.video import Frame

            try:
                if one_stage:
                    from core.fer.onestage import OneStagePipeline
                    pipe = OneStagePipeline()
                else:
                    pipe = FerPipeline(heatmap=self.heatmap)
            except Exception as exc:
                self.status.emit(f"error: cannot start the face pipeline: {exc}")
                return
            offset, t_last, t_start = 0.0, 0.0, time.monotonic()
            while not self._stop.is_set():
                src = self._source
                self.fps = float(getattr(src, "fps", 0.0) or 0.0)
                last_status = None
                for fr in src:
                    if self._stop.is_set():
                        break
                    st = str(src.status)
                    if st != last_status:
                        last_status = st
                        self.status.emit(st)
                    ts = fr.timestamp_s + offset
                    if self.realtime and not self.spec.strip().isdigit():
                        delay = t_start + ts - time.monotonic()  # play a file at its own speed
                        if delay > 0 and self._stop.wait(delay):
                            break
                    t_last = ts
                    pipe.heatmap = self.heatmap and not one_stage
                    results = pipe.process(Frame(fr.image, fr.index, ts, fr.source))
                    # the detector has no landmarks or crop classifier: no AU map or Grad-CAM
                    image = draw_results(fr.image, results, landmarks=self.landmarks and not one_stage,
                                         heatmap=self.heatmap and not one_stage, aus=self.aus and not one_stage)
                    rec = self.recorder
                    if rec is not None:
                        try:
                            rec.write(image, results, ts)
                        except Exception as exc:
                            self.recorder = None
                            self.status.emit(f"error: recording failed: {exc}")
                    self.processed += 1
                    if self._gui_free.is_set():
                        self._gui_free.clear()
                        self.frame.emit(image, results, ts, fr)
                    else:
                        self.dropped += 1
                if self._stop.is_set():
                    break
                st = src.status
                self.status.emit(str(st))
                if not (self.loop and st.state.value == "ended"):
                    break
                # a video file stands in for a camera: start it over, time keeps increasing
                offset = t_last + (1.0 / self.fps if self.fps > 0 else 0.04)
                src.close()
                try:
                    self._source = self._open()
                except (OSError, ValueError) as exc:
                    self.status.emit(f"error: {exc}")
                    break
        except Exception as exc:  # never let the worker die silently
            log.exception("webcam worker failed")
            self.status.emit(f"error: {exc}")
        finally:
            rec, self.recorder = self.recorder, None
            if rec is not None:
                try:
                    self.status.emit(rec.close())
                except Exception as exc:
                    self.status.emit(f"error: could not finish the recording: {exc}")
            if self._source is not None:
                try:
                    self._source.close()
                except Exception:
                    pass
            if pipe is not None:
                pipe.close()
            self.finished.emit()

    def _describe(self) -> str:
        return f"camera {self.spec}" if self.spec.strip().isdigit() else Path(self.spec).name


# --- the panel --------------------------------------------------------------------------------
class WebcamPanel(QWidget):
    status_changed = Signal(str)
    running_changed = Signal(bool)

    def __init__(self, avatar: Avatar, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        import pyqtgraph as pg

        from core.fer.model import FER_CLASSES
        from core.fer.overlay import COLORS

        self.avatar = avatar
        self.classes = FER_CLASSES
        self.video_path: str | None = None
        self.worker: CaptureWorker | None = None
        self.thread: QThread | None = None
        self.frames_shown = 0
        self.last_image: np.ndarray | None = None
        self.last_results: list = []
        self.puppet = Puppet()   # primary face -> avatar: calibration, smoothing
        self._times: deque[float] = deque()
        self._probs: deque[np.ndarray] = deque()
        self._t0 = time.monotonic()

        # source row
        self.source_combo = QComboBox(toolTip="Camera index, or a video file played as a camera")
        self.source_combo.addItems([f"Camera {i}" for i in range(CAMERAS)] + [VIDEO_ITEM])
        self.source_combo.activated.connect(self._source_chosen)
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop", enabled=False)
        self.record_button = QPushButton("Record…", checkable=True, enabled=False,
                                         toolTip="Record the annotated video (MP4) and the results (CSV)")
        self.start_button.clicked.connect(lambda: self.start())
        self.stop_button.clicked.connect(self.stop)
        self.record_button.clicked.connect(self._record_clicked)
        row = QHBoxLayout()
        row.addWidget(self.source_combo, 1)
        for b in (self.start_button, self.stop_button, self.record_button):
            row.addWidget(b)
        self.status_label = QLabel("stopped", wordWrap=True)
        self.status_label.setTextInteractionFlags(Qt.TextSelectableByMouse)

        # video
        self.video_label = QLabel("no video", alignment=Qt.AlignCenter)
        self.video_label.setMinimumSize(160, 120)
        self.video_label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Ignored)
        self.video_label.setStyleSheet("background: #111; color: #888;")

        # overlay options
        self.landmarks_check = QCheckBox("Landmarks")
        self.heatmap_check = QCheckBox("Explanation heatmap", toolTip="Grad-CAM of the expression classifier")
        self.au_check = QCheckBox("Action units", toolTip="Where the predicted expression's action units act "
                                  "(FACS codebook over the landmarks), weighted and named by how strongly "
                                  "the tracked face shows them")
        self.landmarks_check.toggled.connect(self._options_changed)
        self.heatmap_check.toggled.connect(self._options_changed)
        self.au_check.toggled.connect(self._options_changed)
        self.engine_combo = QComboBox(toolTip="Two-stage: MediaPipe landmarks + the expression classifier "
                                      "(drives the avatar). One-stage: the face + expression detector in one "
                                      "pass (boxes and expressions only: no landmarks, pose or explanations)")
        self.engine_combo.addItem("Two-stage (landmarks)", "two-stage")
        self.engine_combo.addItem("One-stage detector", "one-stage")
        opts = QHBoxLayout()
        opts.addWidget(self.engine_combo)
        opts.addWidget(self.landmarks_check)
        opts.addWidget(self.heatmap_check)
        opts.addWidget(self.au_check)
        opts.addStretch(1)

        # timeline
        self.plot = pg.PlotWidget(background="#1e1f22")
        self.plot.setMinimumHeight(120)
        self.plot.setYRange(0, 1, padding=0.02)
        self.plot.setMouseEnabled(False, False)
        self.plot.setLabel("bottom", "s")
        self.curves = {}
        self._legend_colours = {}
        for name in FER_CLASSES:
            b, g, r = COLORS[name]
            self._legend_colours[name] = f"#{r:02x}{g:02x}{b:02x}"
            self.curves[name] = self.plot.plot([], [], name=name, pen=pg.mkPen((r, g, b), width=2),
                                               connect="finite")
        # The legend sits under the plot, not over the curves (a narrow dock leaves no free corner),
        # and carries the primary face's current probabilities.
        self.legend_label = QLabel(wordWrap=True, textFormat=Qt.RichText)
        self._set_legend(None)

        # puppeteering
        self.drive_check = QCheckBox("Drive avatar", toolTip="The primary face's 53 weights and head pose drive the avatar")
        # Letting go of the puppet faces the avatar forward again (the pose is live state only).
        self.drive_check.toggled.connect(lambda on: on or self.avatar.set_head_pose((0.0, 0.0, 0.0)))
        self.calibrate_button = QPushButton("Calibrate neutral",
                                            toolTip="Treat the current face as neutral (its weights become 0)")
        self.calibrate_button.clicked.connect(self.calibrate_neutral)
        self.smoothing_slider = QSlider(Qt.Horizontal, minimum=0, maximum=95,
                                        value=round(self.puppet.smoothing * 100),
                                        toolTip="Exponential smoothing of the weights (0 … 0.95)")
        self.smoothing_value = QLabel(f"{self.puppet.smoothing:.2f}", minimumWidth=30)
        self.smoothing_slider.valueChanged.connect(self._smoothing_changed)
        self.pose_label = QLabel("head: —")
        self.pose_label.setToolTip("Tracked head rotation (degrees); with Drive avatar on it turns the avatar's head")
        pup = QHBoxLayout()
        pup.addWidget(self.drive_check)
        pup.addWidget(self.calibrate_button)
        pup.addWidget(QLabel("Smoothing"))
        pup.addWidget(self.smoothing_slider, 1)
        pup.addWidget(self.smoothing_value)

        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.status_label)
        layout.addWidget(self.video_label, 3)
        layout.addLayout(opts)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.legend_label)
        layout.addLayout(pup)
        layout.addWidget(self.pose_label)

    # --- source control -----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.thread is not None

    def _smoothing_changed(self, value: int) -> None:
        self.smoothing_value.setText(f"{value / 100:.2f}")
        self.puppet.smoothing = value / 100.0

    def _source_chosen(self, index: int) -> None:
        if self.source_combo.itemText(index) == VIDEO_ITEM:
            name, _ = QFileDialog.getOpenFileName(self, "Play a video file as the camera", "", FILE_FILTER)
            if name:
                self.set_video_file(name)
            elif not self.video_path:
                self.source_combo.setCurrentIndex(0)

    def set_video_file(self, path: str | Path) -> None:
        self.video_path = str(path)
        i = self.source_combo.findText(VIDEO_ITEM)
        self.source_combo.setItemText(i, f"Video: {Path(path).name}")
        self.source_combo.setItemData(i, str(path))
        self.source_combo.setItemData(i, str(path), Qt.ToolTipRole)  # the item elides in a narrow dock
        self.source_combo.setCurrentIndex(i)

    def source_spec(self) -> str:
        data = self.source_combo.currentData()
        if data:
            return str(data)
        return str(self.source_combo.currentIndex())  # "Camera i" items are at index i

    def start(self, spec: str | None = None, realtime: bool = True) -> None:
        if self.running:
            self.stop(wait_ms=3000)
        spec = spec if spec is not None else self.source_spec()
        self.frames_shown = 0
        self.puppet.reset()
        self._times.clear()
        self._probs.clear()
        self._t0 = time.monotonic()
        worker = CaptureWorker(spec, self.landmarks_check.isChecked(), self.heatmap_check.isChecked(),
                               realtime=realtime, aus=self.au_check.isChecked(),
                               engine=self.engine_combo.currentData())
        thread = QThread(self)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.frame.connect(self._on_frame)          # queued: emitted from the worker thread
        worker.status.connect(self._set_status)
        worker.finished.connect(thread.quit)
        thread.finished.connect(lambda w=worker, t=thread: self._thread_done(w, t))
        self.worker, self.thread = worker, thread
        thread.start()
        self._sync_buttons()

    def stop(self, wait_ms: int = 0) -> None:
        """Ask the worker to stop; the recording is finished by the worker as it exits."""
        if self.worker is None:
            return
        self.worker.stop()
        if wait_ms and self.thread is not None:
            self.thread.wait(wait_ms)
            from PySide6.QtCore import QCoreApplication
            QCoreApplication.sendPostedEvents()
            QCoreApplication.processEvents()

    def shutdown(self) -> None:
        """The window is closing: stop and wait (bounded) for the worker."""
        self.stop(wait_ms=5000)

    def _thread_done(self, worker: CaptureWorker, thread: QThread) -> None:
        if self.thread is thread:
            self.worker, self.thread = None, None
        worker.deleteLater()
        thread.deleteLater()
        self._sync_buttons()
        if not self.status_label.text().startswith("error"):
            self._set_status(self.status_label.text() + " — stopped")

    def _sync_buttons(self) -> None:
        run = self.running
        self.start_button.setEnabled(not run)
        self.stop_button.setEnabled(run)
        self.source_combo.setEnabled(not run)
        self.engine_combo.setEnabled(not run)
        self.record_button.setEnabled(run)
        if not run:
            self.record_button.setChecked(False)
            self.record_button.setText("Record…")
        self.running_changed.emit(run)

    def _set_status(self, text: str) -> None:
        if text:
            self.status_label.setText(text)
            self.status_changed.emit(text)

    def _options_changed(self) -> None:
        if self.worker is not None:
            self.worker.landmarks = self.landmarks_check.isChecked()
            self.worker.heatmap = self.heatmap_check.isChecked()
            self.worker.aus = self.au_check.isChecked()

    # --- recording ----------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        return self.worker is not None and self.worker.recorder is not None

    def _record_clicked(self, checked: bool) -> None:
        if not checked:
            self.stop_recording()
            return
        name, _ = QFileDialog.getSaveFileName(self, "Record to", "webcam.mp4", "MP4 video (*.mp4)")
        if not name:
            self.record_button.setChecked(False)
            return
        if not name.lower().endswith(".mp4"):
            name += ".mp4"
        self.start_recording(name)

    def start_recording(self, path: str | Path) -> bool:
        if self.worker is None:
            self._set_status("error: start a source before recording")
            return False
        try:
            rec = Recorder(path, self.worker.fps or 25.0)
        except OSError as exc:
            self._set_status(f"error: cannot record to {path}: {exc}")
            self.record_button.setChecked(False)
            return False
        self.worker.recorder = rec
        self.record_button.setChecked(True)
        self.record_button.setText("Stop recording")
        self._set_status(f"recording to {rec.mp4_path.name} + {rec.csv_path.name}")
        return True

    def stop_recording(self) -> Recorder | None:
        rec = self.worker.recorder if self.worker is not None else None
        if self.worker is not None:
            self.worker.recorder = None
        self.record_button.setChecked(False)
        self.record_button.setText("Record…")
        if rec is not None:
            try:
                self._set_status(rec.close())
            except Exception as exc:
                self._set_status(f"error: could not finish the recording: {exc}")
        return rec

    # --- per frame (GUI thread) ---------------------------------------------------------------
    def _on_frame(self, image: np.ndarray, results: list, time_s: float, frame) -> None:
        worker = self.sender()
        try:
            self.last_image, self.last_results = image, results
            self.frames_shown += 1
            self._show(image)
            from core.fer.pipeline import primary_result  # loaded with the panel's FER_CLASSES already
            primary = primary_result(results)
            self._add_sample(primary)
            if primary is not None and len(primary.face.landmarks) == 0:
                # one-stage detector: a box and an expression, nothing to puppeteer with
                self.pose_label.setText("head: no pose from the one-stage detector")
            elif primary is not None:
                f = primary.face
                self.pose_label.setText(f"head: yaw {f.yaw:+.0f}°  pitch {f.pitch:+.0f}°  roll {f.roll:+.0f}°")
                self.puppet.follow(f)
                self._drive()
            else:
                self.pose_label.setText("head: no face")
        finally:
            if isinstance(worker, CaptureWorker):
                worker.frame_shown()
            elif self.worker is not None:
                self.worker.frame_shown()

    def _show(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        img = np.ascontiguousarray(image)
        qimg = QImage(img.data, w, h, img.strides[0], QImage.Format_BGR888).copy()
        pix = QPixmap.fromImage(qimg)
        size = self.video_label.size()
        if size.width() > 1 and size.height() > 1:
            pix = pix.scaled(size, Qt.KeepAspectRatio, Qt.SmoothTransformation)
        self.video_label.setPixmap(pix)

    def _set_legend(self, probs: np.ndarray | None) -> None:
        items = []
        for i, name in enumerate(self.classes):
            value = "" if probs is None or not np.isfinite(probs[i]) else f" {probs[i]:.2f}"
            items.append(f'<span style="color:{self._legend_colours[name]}">&#9632;</span>&nbsp;{name}{value}')
        self.legend_label.setText(" &nbsp; ".join(items))

    def _add_sample(self, primary) -> None:
        now = time.monotonic() - self._t0
        self._times.append(now)
        self._probs.append(np.asarray(primary.probs, np.float32) if primary is not None
                           else np.full(len(self.classes), np.nan, np.float32))
        self._set_legend(self._probs[-1])
        while self._times and self._times[0] < now - TIMELINE_S:
            self._times.popleft()
            self._probs.popleft()
        t = np.fromiter(self._times, float)
        p = np.stack(self._probs)
        for i, name in enumerate(self.classes):
            self.curves[name].setData(t, p[:, i])
        self.plot.setXRange(max(0.0, now - TIMELINE_S), max(TIMELINE_S, now), padding=0)

    def timeline_data(self) -> tuple[np.ndarray, np.ndarray]:
        """(times (N,), probabilities (N, 7)) currently on the timeline."""
        if not self._times:
            return np.zeros(0), np.zeros((0, len(self.classes)))
        return np.fromiter(self._times, float), np.stack(self._probs)

    # --- puppeteering (core.tracking.puppet.Puppet holds the state) ----------------------------
    @property
    def last_raw_weights(self) -> np.ndarray | None:
        """The primary face's weights before calibration (last tracked frame)."""
        return self.puppet.last_raw_weights

    @property
    def last_raw_pose(self) -> np.ndarray | None:
        """The primary face's (yaw, pitch, roll) before calibration (last tracked frame)."""
        return self.puppet.last_raw_pose

    def apply_neutral(self, weights: np.ndarray) -> np.ndarray:
        return self.puppet.apply_neutral(weights)

    def calibrate_neutral(self) -> bool:
        if not self.puppet.calibrate():
            self._set_status("calibrate neutral: no face tracked yet")
            return False
        self._drive()
        self._set_status("neutral calibrated from the current face")
        return True

    def _drive(self) -> None:
        if not self.drive_check.isChecked():
            return
        if (w := self.puppet.weights) is not None:
            self.avatar.set_expression(w)
        if (p := self.puppet.pose) is not None:
            self.avatar.set_head_pose(p)

    @property
    def current_weights(self) -> np.ndarray | None:
        """The weights puppeteering sends (calibrated, smoothed)."""
        return self.puppet.weights
