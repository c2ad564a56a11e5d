"""Start the studio: `python main.py [FILE.likeness] [--screenshot out.png] [--quit-after SEC]`."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("likeness")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="main.py", description="Likeness studio (run `main.py --help` for commands)")
    p.add_argument("project", nargs="?", help="a .likeness project to open")
    p.add_argument("--screenshot", metavar="PNG", help="save a picture of the window once the mesh is shown, then quit")
    p.add_argument("--quit-after", type=float, metavar="SEC",
                   help="quit after SEC seconds (with --screenshot: the latest the picture is taken)")
    p.add_argument("--resolution", type=int, default=128, help="mesh extraction grid resolution (default 128)")
    p.add_argument("--size", default="1440x900", help="window size WxH (default 1440x900)")
    return p.parse_args(argv)


def set_gl_format() -> None:
    """The renderer's shaders are GLSL 330 core: ask for a 3.3 core context before any window
    exists (QSurfaceFormat.setDefaultFormat must precede the QApplication)."""
    from PySide6.QtGui import QSurfaceFormat

    fmt = QSurfaceFormat()
    fmt.setVersion(3, 3)
    fmt.setProfile(QSurfaceFormat.CoreProfile)
    fmt.setDepthBufferSize(24)
    fmt.setStencilBufferSize(8)
    fmt.setSwapInterval(0)
    QSurfaceFormat.setDefaultFormat(fmt)


def run_gui(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .xvfb import ensure_display

    display = ensure_display()
    try:
        return _run(args)
    finally:
        if display is not None:
            display.stop()


def _run(args: argparse.Namespace) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from core.project import ProjectError, load_project

    set_gl_format()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Likeness")
    app.setOrganizationName("Likeness")
    interactive = not (args.screenshot or args.quit_after)

    try:
        from core.facemodel import FaceModel
        model = FaceModel.load()
    except Exception as exc:  # missing weights: nothing to show
        message = f"Cannot load the face model: {exc}"
        print(f"error: {message}", file=sys.stderr)
        if interactive:
            QMessageBox.critical(None, "Likeness", message)
        return 2

    from core.avatar import default_avatar
    from .main_window import MainWindow

    avatar, path = default_avatar(model), None
    if args.project:
        try:
            avatar = load_project(args.project, identity_dim=model.identity_dim)
            path = Path(args.project)
        except ProjectError as exc:
            print(f"error: {exc}", file=sys.stderr)
            if not interactive:
                return 2
            QMessageBox.critical(None, "Cannot open project", f"{exc}\n\nStarting with the default avatar.")

    window = MainWindow(model, avatar, path, resolution=args.resolution)
    try:
        w, h = (int(x) for x in args.size.lower().split("x"))
        window.resize(w, h)
    except ValueError:
        pass
    window.show()
    status = {"code": 0}

    if args.screenshot:
        def shoot(force: bool = False) -> None:
            if status.get("shot"):
                return
            if window.session.busy and not force:  # e.g. the SDF grid or landmarks still coming
                QTimer.singleShot(200, shoot)
                return
            status["shot"] = True
            window.viewport.repaint()
            out = window.screenshot(args.screenshot)
            print(f"screenshot saved to {out}")
            window.avatar.set_dirty(False)  # a screenshot run never prompts
            window.close()

        window.mesh_ready.connect(lambda: QTimer.singleShot(300, shoot))
    if args.quit_after:
        def deadline() -> None:
            if args.screenshot and not status.get("shot"):
                print("warning: the mesh was not ready in time; saving the window as it is", file=sys.stderr)
                status["code"] = 1
                shoot(force=True)
            window.avatar.set_dirty(False)
            window.close()
        QTimer.singleShot(int(args.quit_after * 1000), deadline)
    app.exec()
    return status["code"]
