"""`batch track`: each video -> an animation clip (.json) with its audio, as `main.py track`."""
from __future__ import annotations

from pathlib import Path

from core.batch.adapter import BatchAdapter, Item, ItemResult, Option, atomic_path
from core.batch.jobs.fer import VIDEO_SUFFIXES


class TrackAdapter(BatchAdapter):
    name = "track"
    help = "Track the face in each video into an animation clip (.json) with the video's audio."
    suffixes = VIDEO_SUFFIXES
    options = (
        Option("max_seconds", float, 0.0, "track only the first SEC seconds (0: all)", minimum=0.0),
        Option("audio", bool, True, "keep the video's sound track in the clip"),
        Option("smooth", float, 0.0, "Gaussian smoothing of the curves, sigma in frames (0: raw)",
               minimum=0.0, maximum=100.0),
    )
    typical_memory_mb = 900

    def load(self, threads: int, settings: dict):
        from core.tracking import FaceTracker
        return FaceTracker(num_faces=1)        # the landmarker loads once per worker

    def outputs(self, item: Item) -> list[str]:
        return [f"{item.id}.json"]

    def process(self, tracker, item: Item, out_dir: Path) -> ItemResult:
        from core.animation.files import save_clip
        from core.animation.track import track_video

        opts = item.options
        tracker.reset()                        # MediaPipe's timestamps and face ids start afresh
        clip, stats = track_video(item.input, max_seconds=opts.get("max_seconds") or None,
                                  with_audio=opts.get("audio", True), tracker=tracker)
        if opts.get("smooth"):
            clip.smooth(sigma=opts["smooth"])
        name = self.outputs(item)[0]
        with atomic_path(out_dir / name) as tmp:
            save_clip(clip, tmp)
        return ItemResult([name], {"frames": int(clip.frames), "fps": round(float(clip.fps), 3),
                                   "duration_s": round(float(clip.duration), 2),
                                   "face_share": round(float(stats.face_share), 4),
                                   "audio": clip.audio is not None,
                                   "frames_per_s": round(stats.frames / max(stats.seconds, 1e-9), 1)})

    def close(self, tracker) -> None:
        tracker.close()


ADAPTER = TrackAdapter()
