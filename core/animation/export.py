"""Clip export: GLB with a glTF animation (morph-target weights of the skin and of every part,
head rotation and translation), CSV of every channel, and MP4 of the rendered avatar with the
clip's audio muxed in (optionally beside a source video).

GLB: the avatar's nodes are wrapped in a "head" node placed at the neck pivot (HEAD_PIVOT), so
animating that node's rotation turns the head about the neck as the viewport does; the skin and
each part with morph targets get a "weights" channel (one value per target per frame, LINEAR).
"""
from __future__ import annotations

import csv
import io
import os
import queue
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from core.atomic import write_atomic
from core.expressions import INDEX

from .clip import CHANNELS, NUM_EXPRESSIONS, ROT, TRANS, Clip


class ClipExportCancelled(Exception):
    """The user cancelled; nothing was written."""


# --- GLB ------------------------------------------------------------------------------------------

def quaternions(rotation_deg: np.ndarray) -> np.ndarray:
    """(N, 3) yaw/pitch/roll degrees (core.tracking.pose) -> (N, 4) unit quaternions x, y, z, w,
    sign-continuous (no flips between frames)."""
    from scipy.spatial.transform import Rotation

    from core.tracking.pose import rotation_matrix
    mats = np.stack([rotation_matrix(*r) for r in np.asarray(rotation_deg, np.float64)])
    q = Rotation.from_matrix(mats).as_quat()
    for i in range(1, len(q)):
        if np.dot(q[i], q[i - 1]) < 0:
            q[i] = -q[i]
    return q.astype(np.float32)


def animation_extender(clip: Clip, name: str | None = None) -> Callable[[dict, object], None]:
    """A write_glb `extend` callback that adds the clip as a glTF animation."""
    from core.export import _FLOAT
    from core.tracking.puppet import HEAD_PIVOT

    ev = clip.evaluated()
    weights, rot, trans = ev[:, :NUM_EXPRESSIONS], ev[:, ROT], ev[:, TRANS]
    times = (np.arange(clip.frames, dtype=np.float32) / clip.fps).reshape(-1, 1)

    def extend(gltf: dict, b) -> None:
        pivot = HEAD_PIVOT.astype(np.float32) * 0.01
        nodes = gltf["nodes"]
        nodes[0]["translation"] = [float(-x) for x in pivot]
        head = len(nodes)
        nodes.append({"name": "head", "children": [0], "translation": [float(x) for x in pivot]})
        gltf["scenes"][0]["nodes"] = [head]
        t_acc = b.accessor(times, "SCALAR", bounds=True)
        samplers, channels = [], []

        def channel(node: int, path: str, values: np.ndarray, kind: str) -> None:
            samplers.append({"input": t_acc, "output": b.accessor(np.ascontiguousarray(values, np.float32), kind),
                             "interpolation": "LINEAR"})
            channels.append({"sampler": len(samplers) - 1, "target": {"node": node, "path": path}})

        channel(head, "rotation", quaternions(rot), "VEC4")
        channel(head, "translation", pivot[None] + trans * 0.01, "VEC3")
        for i, node in enumerate(nodes):
            mesh = gltf["meshes"][node["mesh"]] if "mesh" in node else None
            names = (mesh or {}).get("extras", {}).get("targetNames")
            if not names:
                continue
            cols = [INDEX[n] for n in names]
            channel(i, "weights", weights[:, cols].reshape(-1, 1), "SCALAR")
        assert all(b.accessors[s["output"]]["componentType"] == _FLOAT for s in samplers)
        gltf["animations"] = [{"name": name or clip.name, "samplers": samplers, "channels": channels}]

    return extend


def export_clip_glb(avatar, clip: Clip, path: str | os.PathLike, model=None, resolution: int = 128,
                    progress: Callable[[float, str], None] = lambda f, s: None,
                    cancelled: Callable[[], bool] = lambda: False) -> Path:
    """The avatar as GLB (mesh, texture, parts, 53 morph targets) with `clip` as its animation."""
    from core.export import export_avatar
    from core.facemodel import FaceModel

    path = Path(path)
    if path.suffix.lower() != ".glb":
        raise ValueError(f"cannot export an animation to '{path.name}': use a .glb file name")
    model = model or FaceModel.load()
    return export_avatar(avatar, path, model, resolution=resolution, progress=progress,
                         cancelled=cancelled, extend=animation_extender(clip))[0]


# --- CSV ------------------------------------------------------------------------------------------

def export_clip_csv(clip: Clip, path: str | os.PathLike) -> Path:
    """One row per frame: frame, time_s, every channel (keys applied), marker label."""
    path = Path(path)
    ev = clip.evaluated()
    labels = {m.frame: m.label for m in clip.markers}
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(["frame", "time_s", *CHANNELS, "marker"])
    for i, row in enumerate(ev):
        w.writerow([i, f"{i / clip.fps:.4f}", *(f"{x:.5g}" for x in row), labels.get(i, "")])
    return write_atomic(path, text.getvalue().encode("utf-8"))


# --- rendering ------------------------------------------------------------------------------------

class ClipRenderer:
    """Renders frames of a clip on an avatar headlessly: skin, eyes, mouth and hair posed per
    frame with the weights, head rotation and translation (as the viewport does)."""

    def __init__(self, avatar=None, size: int = 512, resolution: int = 96, yaw: float = 0.0,
                 pitch: float = 5.0, background=(0.16, 0.17, 0.19), samples: int = 0,
                 hair: bool = True, fxaa: bool = True):
        from core.render import OrbitCamera, Renderer, headless_context
        from core.render.scene import VIEWPORT_MAX_TRIANGLES, load_scene, show_scene

        self.size = size
        self.background = background
        self.scene = load_scene(avatar, np.zeros(NUM_EXPRESSIONS, np.float32), resolution=resolution,
                                max_triangles=VIEWPORT_MAX_TRIANGLES)
        # FXAA, not MSAA: with software GL 2x MSAA costs as much again as the frame (52 vs 18 ms
        # CPU at 512^2); FXAA adds ~8 ms and also smooths the hair's alpha-tested strand edges.
        self.r = Renderer(headless_context(), samples=samples, fxaa=fxaa)
        if not hair:
            self.scene.hair = lambda: None
        self.head, self.hair = show_scene(self.r, self.scene)
        self.camera = OrbitCamera(yaw=yaw, pitch=pitch).frame(*self.r.bounds("mesh"), margin=0.9)

    def render(self, values: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 of one frame of channel values (CHANNELS order)."""
        return self.draw(self.pose(values))

    def pose(self, values: np.ndarray) -> tuple:
        """Everything a frame needs before GL: posed skin (and its normals), parts, carves and
        hair. Plain numpy with no GL, so the export poses frame i+1 on a worker thread while
        this one draws frame i."""
        from core.head.hair import pose_hair
        from core.meshops import vertex_normals
        from core.tracking.puppet import posed_head

        values = np.asarray(values, np.float32)
        w, pose, t = values[:NUM_EXPRESSIONS], values[ROT], values[TRANS]
        skin = np.ascontiguousarray(posed_head(np.asarray(self.scene.animator(w), np.float32), pose) + t)
        mesh = self.r._mesh
        normals = vertex_normals(skin, mesh["faces"], mesh["incidence"]) if mesh is not None else None
        parts = carves = hair = None
        if self.head is not None:
            verts, carves = self.head.pose(w, pose)
            parts = [v + t for v in verts]
            shift = np.eye(4, dtype=np.float32)
            shift[:3, 3] = -t
            carves = np.asarray(carves, np.float32) @ shift
        if self.hair is not None:
            v, n, tan = pose_hair(self.hair, w, pose)
            hair = (v + t, n, tan)
        # the pixels the head covers (its vertices projected): FXAA filters only there
        box = None
        if self.r.fxaa:
            pts = np.concatenate([skin, *(parts or []), *([hair[0]] if hair is not None else [])])
            m = self.camera.view_proj(self.size, self.size).astype(np.float32)
            clip = pts @ m[:3, :3].T + m[:3, 3]
            wc = pts @ m[3, :3] + m[3, 3]
            if (wc > 1e-6).all():          # all in front of the camera
                x = (clip[:, 0] / wc + 1) * 0.5 * self.size
                y = (1 - clip[:, 1] / wc) * 0.5 * self.size
                box = (float(x.min()), float(y.min()), float(x.max()), float(y.max()))
        return skin, normals, parts, carves, hair, box

    def draw(self, posed: tuple) -> np.ndarray:
        """(H, W, 3) uint8 of a frame posed by pose() (on the GL thread)."""
        skin, normals, parts, carves, hair, box = posed
        self.r.update_vertices(skin, normals)
        if parts is not None:
            self.r.update_parts("head", parts)
            self.r.set_carves(carves)
        if hair is not None:
            self.r.update_hair(*hair)
        img = self.r.render_image(self.size, self.size, self.camera, mode="mesh", view="textured",
                                  background=self.background, fxaa_box=box)
        return np.ascontiguousarray(img[..., :3])

    def release(self) -> None:
        self.r.release()


def export_clip_mp4(clip: Clip, path: str | os.PathLike, avatar=None, size: int = 512,
                    side_by_side: str | os.PathLike | None = None, resolution: int = 96,
                    progress: Callable[[float, str], None] = lambda f, s: None,
                    cancelled: Callable[[], bool] = lambda: False, renderer: ClipRenderer | None = None,
                    crf: int = 20, preset: str = "veryfast") -> dict:
    """Render the clip to H.264 MP4 at the clip's rate with its audio (AAC) muxed in; with
    `side_by_side` a source video is drawn left of the avatar, frame-matched by time.
    `preset`: x264's; "veryfast" encodes a 512^2 listener frame in ~6 ms of CPU against ~11 ms
    for "medium", at 41.5 vs 41.9 dB PSNR and a smaller file (crf 20): on two cores the encoder
    competes with the renderer. Returns timing figures: "fps" of the whole export (pose, draw,
    encode, mux), "render_fps" of the drawing alone."""
    import imageio_ffmpeg

    from .audio import padded_samples, write_wav

    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"cannot write a video to '{path.name}': use a .mp4 file name")
    if not (path.parent if str(path.parent) else Path(".")).is_dir():
        raise ValueError(f"cannot write {path}: the folder {path.parent} does not exist")
    size = renderer.size if renderer is not None else int(size) // 16 * 16   # the frames' own size
    own = renderer is None
    renderer = renderer or ClipRenderer(avatar, size=size, resolution=resolution)
    source = _SourceFrames(side_by_side, size) if side_by_side else None
    ev = clip.evaluated()
    tmpdir = Path(tempfile.mkdtemp(prefix="likeness-clip-"))
    audio_path = None
    if clip.audio is not None and len(clip.audio.samples):
        from .clip import AudioTrack
        audio_path = write_wav(tmpdir / "audio.wav", AudioTrack(padded_samples(clip.audio, clip.duration),
                                                                clip.audio.rate))
    tmp_video = tmpdir / "video.mp4"
    width = size * (2 if source else 1)
    writer = imageio_ffmpeg.write_frames(str(tmp_video), (width, size), fps=clip.fps, codec="libx264",
                                         pix_fmt_out="yuv420p", output_params=["-crf", str(crf), "-preset", preset],
                                         macro_block_size=16, audio_path=str(audio_path) if audio_path else None,
                                         audio_codec="aac" if audio_path else None, ffmpeg_log_level="error")
    writer.send(None)
    # Three stages at once, so both cores work: a worker thread poses frame i+1 (numpy, which
    # lets go of the GIL) and another feeds frame i-1 to ffmpeg (its pipe blocks while x264
    # catches up) while this thread draws frame i (llvmpipe rasterises on its own threads).
    render_s = 0.0
    t_start = time.perf_counter()
    poser = ThreadPoolExecutor(1, thread_name_prefix="clip-pose")
    sender = _FrameSender(writer)
    n = len(ev)

    def job(i: int):
        return renderer.pose(ev[i]), (source.at(i / clip.fps) if source else None)

    try:
        pending = poser.submit(job, 0) if n else None
        for i in range(n):
            if cancelled():
                raise ClipExportCancelled()
            posed, left = pending.result()
            if i + 1 < n:
                pending = poser.submit(job, i + 1)
            t0 = time.perf_counter()
            img = renderer.draw(posed)
            render_s += time.perf_counter() - t0
            if left is not None:
                img = np.concatenate([left, img], 1)
            sender.put(img)
            if i % 10 == 0:
                progress(i / clip.frames, f"rendering frame {i + 1}/{clip.frames}")
        sender.finish()
        writer.close()
        os.replace(tmp_video, path) if _same_fs(tmp_video, path) else shutil.move(str(tmp_video), path)
    except BaseException:
        sender.abandon()
        writer.close()
        raise
    finally:
        poser.shutdown(wait=True, cancel_futures=True)
        if own:
            renderer.release()
        if source:
            source.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
    progress(1.0, "done")
    wall_s = time.perf_counter() - t_start
    # render_fps: the GL thread's drawing alone; fps: the whole export (pose, draw, encode, mux)
    return {"frames": clip.frames, "render_s": render_s, "render_fps": clip.frames / max(render_s, 1e-9),
            "seconds": wall_s, "fps": clip.frames / max(wall_s, 1e-9), "audio": audio_path is not None}


class _FrameSender:
    """Feeds frames to an imageio-ffmpeg writer on a thread of its own through a short queue
    (two frames: bounded memory), so drawing does not wait while ffmpeg's pipe is full. An
    error in the writer is raised in the drawing thread at its next put or finish."""

    def __init__(self, writer, depth: int = 2):
        self.writer = writer
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="clip-encode", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            img = self.queue.get()
            if img is None:
                return
            if self.error is None:
                try:
                    self.writer.send(img)
                except BaseException as e:  # noqa: BLE001 -- raised again by put/finish on the drawing thread
                    self.error = e

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def put(self, img: np.ndarray) -> None:
        self._check()
        self.queue.put(img)

    def finish(self) -> None:
        self.queue.put(None)
        self.thread.join()
        self._check()

    def abandon(self) -> None:
        """After an error or a cancel: stop without sending what is still queued."""
        self.error = self.error or ClipExportCancelled()
        self.queue.put(None)
        self.thread.join()


def _same_fs(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b.parent if str(b.parent) else ".").st_dev
    except OSError:
        return False


class _SourceFrames:
    """A video's frames by time, letterboxed to size x size RGB (sequential reading)."""

    def __init__(self, path, size: int):
        from core.video.sources import VideoFileSource
        self.src = VideoFileSource(path)
        self.it = iter(self.src)
        self.fps = self.src.fps if self.src.fps > 0 else 25.0
        self.size = size
        self.index = -1
        self.last = np.zeros((size, size, 3), np.uint8)

    def at(self, t: float) -> np.ndarray:
        import cv2
        want = int(t * self.fps + 1e-6)
        while self.index < want:
            frame = next(self.it, None)
            if frame is None:
                break
            self.index += 1
            img = frame.image
            h, w = img.shape[:2]
            s = self.size / max(h, w)
            small = cv2.resize(img, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
            canvas = np.zeros((self.size, self.size, 3), np.uint8)
            y0, x0 = (self.size - small.shape[0]) // 2, (self.size - small.shape[1]) // 2
            canvas[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small[..., ::-1]
            self.last = canvas
        return self.last

    def close(self) -> None:
        self.src.close()
