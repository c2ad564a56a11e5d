"""Timeline: the project's animation clips as curves (pyqtgraph) with a playhead to scrub,
play/pause/loop (sound where an output exists), keyframes, smoothing, trim, webcam recording
and export.

The clips live in the document (`Avatar.clips`, saved with the project); this panel edits them
in place and reports through `avatar.clip_changed`. The playhead writes the frame through the
document's setters, so the viewport follows live. Exports run on the TaskRunner (progress and
Cancel in the status bar). Qt view only: clip logic is core.animation.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QHBoxLayout, QLabel,
                               QLineEdit, QListWidget, QListWidgetItem, QMessageBox, QPushButton,
                               QSpinBox, QSplitter, QVBoxLayout, QWidget)

from core.animation import CHANNELS, Clip, ClipError, load_clip, save_clip
from core.animation.clip import CHANNEL_INDEX, GAZE, GAZE_CHANNELS, NUM_EXPRESSIONS, POSE_CHANNELS, ROT
from core.animation.playback import AudioOut, Playhead, Recorder
from core.avatar import Avatar

log = logging.getLogger(__name__)
DEFAULT_CHANNELS = ("jawOpen", "eyeBlink_L", "mouthSmile_L", "head.yaw", "head.pitch")
_COLOURS = [(230, 120, 90), (110, 180, 240), (140, 220, 120), (240, 200, 80), (200, 130, 230),
            (90, 220, 210), (240, 140, 180), (180, 180, 180)]


class TimelinePanel(QWidget):
    """Clip list, channel chooser, curve plot with playhead/keys/selection, transport and tools."""

    status_changed = Signal(str)
    frame_shown = Signal(int)          # the playhead moved to this frame (scrub or playback)

    def __init__(self, avatar: Avatar, runner=None, model=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.avatar = avatar
        self.runner = runner
        self.model = model              # face model: the learned expression code curves
        self.playhead = Playhead()
        self.audio = AudioOut()
        self.recorder: Recorder | None = None
        self.selected_key: tuple[str, int] | None = None
        self._last_tick = 0.0
        self._code_cache: tuple[int, np.ndarray] | None = None
        self._pending: Clip | None = None
        self.timer = QTimer(self, interval=20)
        self.timer.timeout.connect(self._tick)
        self.record_timer = QTimer(self, interval=40)
        self.record_timer.timeout.connect(self._record_tick)
        self._build()
        avatar.events.connect("clips", lambda a: self._reload_clips())
        avatar.events.connect("replaced", lambda a: self._reload_clips())
        self._reload_clips()
        if not self.audio.available:
            self.notice.setText(f"Sound: {self.audio.message} Clips play silently.")

    # --- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        top = QHBoxLayout()
        self.clip_combo = QComboBox(toolTip="The project's clips")
        self.clip_combo.currentIndexChanged.connect(self._clip_chosen)
        self.import_button = QPushButton("Import…", clicked=self.import_clip)
        self.track_button = QPushButton("Track video…", clicked=lambda: self.track_video(),
                                        toolTip="Turn a video's face (and its sound) into a new clip")
        self.save_button = QPushButton("Save as…", clicked=self.save_clip_as)
        self.export_button = QPushButton("Export…", clicked=self.export_dialog,
                                         toolTip="GLB animation, MP4 with sound, or CSV")
        self.delete_clip_button = QPushButton("Delete clip", clicked=self.delete_clip)
        self.record_button = QPushButton("● Record", checkable=True,
                                         toolTip="Record what the avatar shows (drive it from the Webcam "
                                                 "panel with 'Drive avatar') into a new clip at 25 fps")
        self.record_button.toggled.connect(self.set_recording)
        for w in (QLabel("Clip"), self.clip_combo, self.import_button, self.track_button, self.save_button,
                  self.export_button,
                  self.delete_clip_button, self.record_button):
            top.addWidget(w)
        top.addStretch(1)

        transport = QHBoxLayout()
        self.play_button = QPushButton("▶ Play", checkable=True)
        self.play_button.toggled.connect(self.set_playing)
        self.loop_check = QCheckBox("Loop", checked=True)
        self.loop_check.toggled.connect(lambda on: setattr(self.playhead, "loop", on))
        self.time_label = QLabel("0.00 s  frame 0")
        transport.addWidget(self.play_button)
        transport.addWidget(self.loop_check)
        transport.addWidget(self.time_label)
        transport.addStretch(1)
        self.interp_combo = QComboBox()
        self.interp_combo.addItems(["smooth", "linear"])
        self.key_button = QPushButton("Set key", clicked=self.set_key_here,
                                      toolTip="Key the current channel at the playhead with the value "
                                              "the avatar shows now (move a slider first)")
        self.delete_key_button = QPushButton("Delete key", clicked=self.delete_selected_key)
        self.key_frame = QSpinBox(minimum=0, maximum=10 ** 7, toolTip="Selected key's frame (move it)")
        self.key_value = QDoubleSpinBox(minimum=-90, maximum=90, decimals=3, singleStep=0.05,
                                        toolTip="Selected key's value")
        self.key_frame.editingFinished.connect(self._move_selected_key)
        self.key_value.editingFinished.connect(self._move_selected_key)
        for w in (QLabel("Keys"), self.interp_combo, self.key_button, self.delete_key_button,
                  QLabel("frame"), self.key_frame, QLabel("value"), self.key_value):
            transport.addWidget(w)
        self.sigma_spin = QDoubleSpinBox(minimum=0.5, maximum=50, value=2.0, singleStep=0.5, suffix=" fr")
        self.smooth_button = QPushButton("Smooth selection", clicked=self.smooth_selection)
        self.trim_button = QPushButton("Trim to selection", clicked=self.trim_to_selection)
        for w in (self.sigma_spin, self.smooth_button, self.trim_button):
            transport.addWidget(w)

        self.filter_edit = QLineEdit(placeholderText="filter channels")
        self.filter_edit.textChanged.connect(self._filter_channels)
        self.channel_list = QListWidget()
        for name in CHANNELS:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked if name in DEFAULT_CHANNELS else Qt.Unchecked)
            self.channel_list.addItem(item)
        self.channel_list.itemChanged.connect(lambda _: self.redraw())
        self.channel_list.setCurrentRow(CHANNEL_INDEX["jawOpen"])
        self.code_check = QCheckBox("Expression code", toolTip="Curves of the face model's learned "
                                                               "expression code (first 4 dimensions)")
        self.code_check.toggled.connect(lambda _: self.redraw())
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.filter_edit)
        lv.addWidget(self.channel_list)
        lv.addWidget(self.code_check)

        self.plot = pg.PlotWidget(background=(30, 32, 36))
        self.plot.setLabel("bottom", "time", units="s")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.addLegend(offset=(5, 5))
        self.region = pg.LinearRegionItem(values=(0, 0), brush=(120, 160, 255, 40))
        self.region.setZValue(-10)
        self.plot.addItem(self.region)
        self.playline = pg.InfiniteLine(0, movable=True, pen=pg.mkPen((255, 230, 80), width=2))
        self.playline.sigPositionChanged.connect(self._playline_moved)
        self.plot.addItem(self.playline)
        self.keys_item = pg.ScatterPlotItem(size=10, symbol="d", pen=pg.mkPen("w"))
        self.keys_item.sigClicked.connect(self._key_clicked)
        self.plot.addItem(self.keys_item)
        self.curves: dict[str, pg.PlotDataItem] = {}
        split = QSplitter(Qt.Horizontal)
        split.addWidget(left)
        split.addWidget(self.plot)
        split.setSizes([170, 800])

        self.notice = QLabel("", wordWrap=True)
        self.notice.setStyleSheet("color: #d9b45a")
        self.status_label = QLabel("")
        v = QVBoxLayout(self)
        v.addLayout(top)
        v.addLayout(transport)
        v.addWidget(split, 1)
        v.addWidget(self.notice)
        v.addWidget(self.status_label)

    # --- clips --------------------------------------------------------------------------------
    @property
    def clip(self) -> Clip | None:
        return self.playhead.clip

    def _reload_clips(self) -> None:
        current, self._pending = (self._pending or self.clip), None
        self.clip_combo.blockSignals(True)
        self.clip_combo.clear()
        for c in self.avatar.clips:
            self.clip_combo.addItem(f"{c.name} ({c.duration:.1f} s)")
        clips = self.avatar.clips
        idx = next((i for i, c in enumerate(clips) if c is current), len(clips) - 1)
        self.clip_combo.setCurrentIndex(idx)
        self.clip_combo.blockSignals(False)
        self._clip_chosen(idx)

    def _clip_chosen(self, index: int) -> None:
        clips = self.avatar.clips
        clip = clips[index] if 0 <= index < len(clips) else None
        if clip is not self.playhead.clip:
            self.set_playing(False)
            self.playhead.set_clip(clip)
            self.selected_key = None
            self._code_cache = None
        has = clip is not None
        for w in (self.play_button, self.save_button, self.export_button, self.delete_clip_button,
                  self.key_button, self.smooth_button, self.trim_button):
            w.setEnabled(has)
        self.redraw()

    def add_clip(self, clip: Clip) -> None:
        self._pending = clip           # "clips" event -> _reload_clips selects it
        self.avatar.add_clip(clip)

    def import_clip(self, path: str | None = None) -> bool:
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Import clip", "", "Likeness clip (*.json)")
            if not path:
                return False
        try:
            clip = load_clip(path)
        except ClipError as exc:
            self._error(str(exc))
            return False
        self.add_clip(clip)
        self._status(f"imported {Path(path).name}: {clip.frames} frames")
        return True

    def track_video(self, path: str | None = None, on_done=None):
        """Track a video into a new clip on a worker thread (progress and Cancel in the status bar)."""
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Track video", "", "Video (*.mp4 *.mov *.avi *.mkv *.webm)")
            if not path:
                return None
        from core.animation.track import track_video

        def done(result):
            clip, stats = result
            self.add_clip(clip)
            self._status(f"tracked {Path(path).name}: {clip.frames} frames, face in {stats.face_share:.0%}, "
                         f"audio: {'yes' if clip.audio is not None else 'none'}")
            if on_done:
                on_done(clip)

        if self.runner is None:
            from app.workers import TaskRunner
            self.runner = TaskRunner(self)
        return self.runner.start(f"Track {Path(path).name}",
                                 lambda ctx: track_video(path, progress=ctx.progress, cancelled=lambda: ctx.cancelled),
                                 on_done=done, on_error=lambda m: self._error(m))

    def save_clip_as(self, path: str | None = None) -> bool:
        if self.clip is None:
            return False
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save clip", f"{self.clip.name}.json",
                                                  "Likeness clip (*.json)")
            if not path:
                return False
        try:
            save_clip(self.clip, path)
        except ClipError as exc:
            self._error(str(exc))
            return False
        self._status(f"saved {path}")
        return True

    def delete_clip(self) -> None:
        if self.clip is not None:
            self.avatar.set_clips([c for c in self.avatar.clips if c is not self.clip])

    # --- drawing ------------------------------------------------------------------------------
    def checked_channels(self) -> list[str]:
        return [self.channel_list.item(i).text() for i in range(self.channel_list.count())
                if self.channel_list.item(i).checkState() == Qt.Checked]

    def current_channel(self) -> str:
        item = self.channel_list.currentItem()
        return item.text() if item is not None else "jawOpen"

    def _filter_channels(self, text: str) -> None:
        for i in range(self.channel_list.count()):
            it = self.channel_list.item(i)
            it.setHidden(bool(text) and text.lower() not in it.text().lower())

    def redraw(self) -> None:
        for item in self.curves.values():
            self.plot.removeItem(item)
        self.curves.clear()
        self.plot.plotItem.legend.clear()
        clip = self.clip
        if clip is None:
            self.keys_item.setData([], [])
            return
        t = np.arange(clip.frames) / clip.fps
        for i, ch in enumerate(self.checked_channels()):
            y = clip.curve(ch)
            if ch in POSE_CHANNELS[:3] or ch in GAZE_CHANNELS:
                y = y / 45.0            # degrees drawn at 45 deg = 1 so weights stay readable
            self.curves[ch] = self.plot.plot(t, y, pen=pg.mkPen(_COLOURS[i % len(_COLOURS)], width=1.5),
                                             name=ch if not (ch.startswith(("head.y", "head.p", "head.r", "gaze")))
                                             else f"{ch} (/45°)")
        if self.code_check.isChecked() and self.model is not None:
            code = self.expression_code()
            for j in range(min(4, code.shape[1])):
                self.curves[f"code{j}"] = self.plot.plot(t, code[:, j], name=f"code {j}",
                                                         pen=pg.mkPen((200, 200, 200), width=1, style=Qt.DashLine))
        self._draw_keys()
        self.region.setBounds((0, clip.duration))
        self.playline.setBounds((0, (clip.frames - 1) / clip.fps))
        self.plot.setXRange(0, clip.duration, padding=0.01)

    def expression_code(self) -> np.ndarray:
        """The face model's learned expression code per frame (cached per clip edit)."""
        import torch
        key = id(self.clip), len(self.clip.keys), float(self.clip.data.sum())
        if self._code_cache is None or self._code_cache[0] != key:
            with torch.no_grad():
                code = self.model.net.encode_expression(torch.from_numpy(self.clip.weights())).numpy()
            self._code_cache = (key, code)
        return self._code_cache[1]

    def _draw_keys(self) -> None:
        shown = set(self.checked_channels())
        spots = []
        for k in self.clip.keys:
            if k.channel not in shown:
                continue
            y = k.value / 45.0 if k.channel in POSE_CHANNELS[:3] or k.channel in GAZE_CHANNELS else k.value
            sel = self.selected_key == (k.channel, k.frame)
            spots.append({"pos": (k.frame / self.clip.fps, y), "data": (k.channel, k.frame),
                          "brush": pg.mkBrush((255, 90, 60) if sel else (255, 255, 255))})
        self.keys_item.setData(spots)

    # --- playhead -----------------------------------------------------------------------------
    def seek(self, t: float) -> None:
        """Move the playhead (scrub): the avatar shows that frame at once."""
        if self.clip is None:
            return
        self.playhead.seek(t)
        self.playline.blockSignals(True)
        self.playline.setValue(self.playhead.time)
        self.playline.blockSignals(False)
        self._show_frame()

    def _playline_moved(self) -> None:
        if self.clip is not None:
            self.playhead.seek(float(self.playline.value()))
            self._show_frame()
            if self.playhead.playing:
                self.audio.play(self.clip, self.playhead.time)

    def _show_frame(self) -> None:
        self.playhead.apply(self.avatar)
        f = self.playhead.frame
        self.time_label.setText(f"{self.playhead.time:6.2f} s  frame {f}")
        self.frame_shown.emit(f)

    def set_playing(self, on: bool) -> None:
        if self.play_button.isChecked() != on:
            self.play_button.setChecked(on)   # re-enters with the same value
            return
        if on and self.clip is None:
            self.play_button.setChecked(False)
            return
        self.playhead.playing = on
        self.play_button.setText("⏸ Pause" if on else "▶ Play")
        if on:
            self._last_tick = time.perf_counter()
            self.timer.start()
            self.audio.play(self.clip, self.playhead.time)
        else:
            self.timer.stop()
            self.audio.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        dt, self._last_tick = now - self._last_tick, now
        was = self.playhead.time
        going = self.playhead.advance(dt)
        if self.playhead.time < was:          # looped: restart the sound with the picture
            self.audio.play(self.clip, self.playhead.time)
        self.playline.blockSignals(True)
        self.playline.setValue(self.playhead.time)
        self.playline.blockSignals(False)
        self._show_frame()
        if not going:
            self.set_playing(False)

    # --- keys ---------------------------------------------------------------------------------
    def current_value(self, channel: str) -> float:
        """What the avatar shows now for `channel` (the value a new key takes)."""
        i = CHANNEL_INDEX[channel]
        if i < NUM_EXPRESSIONS:
            return float(self.avatar.expression[i])
        if ROT.start <= i < ROT.stop:
            return float(self.avatar.head_pose[i - ROT.start])
        if GAZE.start <= i < GAZE.stop:
            from core.animation import gaze_from_weights
            return float(gaze_from_weights(self.avatar.expression[None])[0, i - GAZE.start])
        return float(self.clip.curve(channel)[self.playhead.frame])

    def set_key_here(self, channel: str | None = None, value: float | None = None) -> None:
        if self.clip is None:
            return
        channel = channel or self.current_channel()
        value = self.current_value(channel) if value is None else value
        k = self.clip.set_key(channel, self.playhead.frame, value, self.interp_combo.currentText())
        self.selected_key = (k.channel, k.frame)
        self._edited(f"key {channel} = {k.value:.3g} at frame {k.frame}")
        self._sync_key_editors()

    def _key_clicked(self, _item, points, *args) -> None:
        if len(points):
            self.select_key(*points[0].data())

    def select_key(self, channel: str, frame: int) -> None:
        self.selected_key = (channel, int(frame))
        self._sync_key_editors()
        self._draw_keys()

    def _sync_key_editors(self) -> None:
        if self.selected_key is None or self.clip is None:
            return
        key = next((k for k in self.clip.keys if (k.channel, k.frame) == self.selected_key), None)
        if key is None:
            return
        for w, v in ((self.key_frame, key.frame), (self.key_value, key.value)):
            w.blockSignals(True)
            w.setValue(v)
            w.blockSignals(False)
        self.key_frame.setMaximum(self.clip.frames - 1)

    def _move_selected_key(self) -> None:
        if self.selected_key is None or self.clip is None:
            return
        self.move_selected_key(self.key_frame.value(), self.key_value.value())

    def move_selected_key(self, frame: int, value: float) -> None:
        ch, old = self.selected_key
        try:
            k = self.clip.move_key(ch, old, frame, value)
        except ValueError as exc:
            self._status(str(exc))
            return
        self.selected_key = (k.channel, k.frame)
        self._edited(f"moved key of {ch} to frame {k.frame}")

    def delete_selected_key(self) -> None:
        if self.selected_key is None or self.clip is None:
            return
        if self.clip.delete_key(*self.selected_key):
            self._edited(f"deleted key of {self.selected_key[0]} at frame {self.selected_key[1]}")
        self.selected_key = None

    # --- selection tools ----------------------------------------------------------------------
    def selection_frames(self) -> tuple[int, int]:
        a, b = self.region.getRegion()
        fps = self.clip.fps
        return int(round(a * fps)), int(round(b * fps)) + 1

    def set_selection(self, start_s: float, end_s: float) -> None:
        self.region.setRegion((start_s, end_s))

    def smooth_selection(self) -> None:
        if self.clip is None:
            return
        a, b = self.selection_frames()
        if b - a < 3:
            a, b = 0, self.clip.frames     # no selection: the whole clip
        chans = self.checked_channels()
        self.clip.smooth(chans, a, b, sigma=self.sigma_spin.value())
        self._edited(f"smoothed {len(chans)} channels, frames {a}-{b - 1}")

    def trim_to_selection(self) -> None:
        if self.clip is None:
            return
        a, b = self.selection_frames()
        if b - a < 2:
            self._status("trim: drag a selection on the timeline first")
            return
        self.clip.trim(a, b)
        self.playhead.seek(0.0)
        self.set_selection(0, 0)
        self._edited(f"trimmed to frames {a}-{b - 1}")
        self._reload_clips()

    def _edited(self, message: str) -> None:
        self.playhead.invalidate()
        self.avatar.clip_changed(self.clip)
        self.redraw()
        self._show_frame()
        self._status(message)

    # --- recording ----------------------------------------------------------------------------
    def set_recording(self, on: bool) -> None:
        if self.record_button.isChecked() != on:
            self.record_button.setChecked(on)
            return
        if on:
            self.set_playing(False)
            self.recorder = Recorder(fps=25.0)
            self.record_timer.start()
            from core.animation.audio import input_device_status
            ok, why = input_device_status()
            self.notice.setText("" if ok else f"Recording without sound: {why}")
            self.record_button.setText("■ Stop")
            self._status("recording what the avatar shows…")
        else:
            self.record_timer.stop()
            self.record_button.setText("● Record")
            rec, self.recorder = self.recorder, None
            clip = rec.clip(name=f"Recording {len(self.avatar.clips) + 1}") if rec else None
            if clip is not None:
                self.add_clip(clip)
                self._status(f"recorded {clip.frames} frames ({clip.duration:.1f} s)")

    def _record_tick(self) -> None:
        if self.recorder is not None:
            self.recorder.sample(self.avatar)

    # --- export -------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        if self.clip is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export clip", f"{self.clip.name}.glb",
                                              "GLB animation (*.glb);;MP4 video (*.mp4);;CSV (*.csv)")
        if path:
            self.export(path)

    def export(self, path: str, on_done=None):
        """Export the current clip to .glb/.mp4/.csv on a worker thread (progress, Cancel)."""
        from core.animation.export import export_clip_csv, export_clip_glb, export_clip_mp4
        from core.avatar import Avatar as Doc

        clip = self.clip.copy()
        doc = Doc(self.avatar.identity, self.avatar.expression, self.avatar.texture, self.avatar.name,
                  appearance=self.avatar.appearance, eyes=self.avatar.eyes, hair=self.avatar.hair)
        suffix = Path(path).suffix.lower()

        def work(ctx):
            if suffix == ".csv":
                return export_clip_csv(clip, path)
            if suffix == ".glb":
                return export_clip_glb(doc, clip, path, self.model, progress=ctx.progress,
                                       cancelled=lambda: ctx.cancelled)
            if suffix == ".mp4":
                return export_clip_mp4(clip, path, doc, progress=ctx.progress, cancelled=lambda: ctx.cancelled)
            raise ValueError(f"cannot export to '{Path(path).name}': use .glb, .mp4 or .csv")

        def done(result):
            self._status(f"exported {path}")
            if on_done:
                on_done(result)

        if self.runner is None:
            from app.workers import TaskRunner
            self.runner = TaskRunner(self)
        return self.runner.start(f"Export {Path(path).name}", work, on_done=done,
                                 on_error=lambda m: self._error(f"Export failed: {m}"))

    # --- messages -----------------------------------------------------------------------------
    def _status(self, text: str) -> None:
        self.status_label.setText(text)
        self.status_changed.emit(text)

    def _error(self, text: str) -> None:
        self._status(f"error: {text}")
        if self.isVisible():   # window-modal but not blocking (no nested event loop)
            box = QMessageBox(QMessageBox.Warning, "Timeline", text, QMessageBox.Ok, self)
            box.setAttribute(Qt.WA_DeleteOnClose)
            box.open()

    def shutdown(self) -> None:
        self.set_playing(False)
        self.set_recording(False)
