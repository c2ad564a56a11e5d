"""`batch listen`: each speaker video or audio file -> a listening avatar MP4 (and/or clip), as
`main.py listen` (the listener model and the avatar load once per worker)."""
from __future__ import annotations

from pathlib import Path

from core.batch.adapter import BatchAdapter, Item, ItemFailed, ItemResult, Option, atomic_path
from core.batch.jobs.fer import VIDEO_SUFFIXES

AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".m4a", ".flac", ".ogg", ".aac"})


class ListenState:
    def __init__(self, listener, avatar):
        self.listener, self.avatar = listener, avatar


class ListenAdapter(BatchAdapter):
    name = "listen"
    help = "A listening avatar for each speaker video or audio file: ID.mp4 with the speaker's sound (+ clip)."
    suffixes = VIDEO_SUFFIXES | AUDIO_SUFFIXES
    options = (
        Option("attitude", str, "attentive", "how the listener feels, in words"),
        Option("seed", int, 0, "random seed", minimum=0, maximum=2 ** 31 - 1),
        Option("steps", int, 8, "DDIM steps", minimum=1, maximum=100),
        Option("size", int, 512, "frame height in pixels", minimum=64, maximum=2048),
        Option("side_by_side", bool, False, "draw the speaker's video left of the avatar (videos only)"),
        Option("video", bool, True, "write ID.mp4"),
        Option("clip", bool, False, "also write the listener motion as ID.json"),
    )
    worker_options = (
        Option("model", str, "", "listener weights (default resources/models/listener.pt)"),
        Option("avatar", str, "", "the listening avatar, .likeness (default: the mean face)"),
    )
    typical_memory_mb = 1500

    def load(self, threads: int, settings: dict) -> ListenState:
        from core.listener.generate import Listener
        avatar = None
        if settings.get("avatar"):
            from core.render.scene import load_avatar_file
            avatar = load_avatar_file(settings["avatar"])
        return ListenState(Listener.load(settings.get("model") or None), avatar)

    def outputs(self, item: Item) -> list[str]:
        return ([f"{item.id}.mp4"] if item.options.get("video", True) else []) + \
            ([f"{item.id}.json"] if item.options.get("clip") else [])

    def process(self, state: ListenState, item: Item, out_dir: Path) -> ItemResult:
        from core.animation.files import save_clip
        from core.listener.listen import ListenInputError, listen_to

        opts = item.options
        names = self.outputs(item)
        if not names:
            raise ItemFailed("nothing to write: both video and clip are off")
        is_video = Path(item.input).suffix.lower() in VIDEO_SUFFIXES
        if opts.get("side_by_side") and not is_video:
            raise ItemFailed("side_by_side needs a speaker video, not an audio file")
        try:
            res = listen_to(state.listener, video=item.input if is_video else None,
                          audio=None if is_video else item.input, attitude=opts.get("attitude", "attentive"),
                          seed=opts.get("seed", 0), steps=opts.get("steps", 8))
        except ListenInputError as exc:
            raise ItemFailed(str(exc)) from exc
        result = res.clip
        figures = {"seconds_of_listening": round(res.seconds, 2), "attitude": res.described,
                   "speaker_face_share": res.face_share, "segments": int(res.info.get("segments", 0)),
                   "silent": res.silent}
        if opts.get("clip"):
            with atomic_path(out_dir / f"{item.id}.json") as tmp:
                save_clip(result, tmp)
        if opts.get("video", True):
            from core.animation.export import export_clip_mp4
            with atomic_path(out_dir / f"{item.id}.mp4") as tmp:
                stats = export_clip_mp4(result, tmp, state.avatar, size=opts.get("size", 512),
                                        side_by_side=item.input if opts.get("side_by_side") else None)
            figures["frames"] = int(stats["frames"])
        return ItemResult(names, figures)


ADAPTER = ListenAdapter()
