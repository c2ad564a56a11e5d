"""Python logging shown in a dock: a logging.Handler that forwards records through a Qt signal
(records may come from worker threads; the signal delivers them on the GUI thread)."""
from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QPlainTextEdit, QVBoxLayout, QWidget

_COLORS = {logging.WARNING: "#c08000", logging.ERROR: "#d03030", logging.CRITICAL: "#d03030"}


class _Bridge(QObject):
    record = Signal(int, str)


class QtLogHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.bridge = _Bridge()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.bridge.record.emit(record.levelno, self.format(record))
        except RuntimeError:  # the panel is gone (app closing)
            pass


class LogPanel(QWidget):
    def __init__(self, parent: QWidget | None = None, max_lines: int = 2000) -> None:
        super().__init__(parent)
        self.text = QPlainTextEdit(readOnly=True)
        self.text.setMaximumBlockCount(max_lines)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.text)
        self.handler = QtLogHandler()
        self.handler.bridge.record.connect(self.append)
        logging.getLogger().addHandler(self.handler)
        if logging.getLogger().level > logging.INFO or logging.getLogger().level == logging.NOTSET:
            logging.getLogger().setLevel(logging.INFO)

    def append(self, level: int, line: str) -> None:
        color = _COLORS.get(level)
        if color:
            line = line.replace("&", "&amp;").replace("<", "&lt;")
            self.text.appendHtml(f'<span style="color:{color}">{line}</span>')
        else:
            self.text.appendPlainText(line)

    def detach(self) -> None:
        logging.getLogger().removeHandler(self.handler)
