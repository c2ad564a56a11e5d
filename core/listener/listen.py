"""A speaker's file(s) in, the listener's clip out: the one path `main.py listen` and `batch listen`
share. Reads the speaker's audio (a video's own track or a separate file), tracks the speaker's
face when a video is given, conditions the listener on both and generates its motion.

Problems the user should hear about (no face, no sound, silent audio, lengths that differ) go
to `notice(text)`; input that leaves nothing to listen to raises ListenInputError.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .features import FPS


class ListenInputError(ValueError):
    """The speaker's input gives nothing to listen to."""


@dataclass
class ListenResult:
    clip: object                   # core.animation.clip.Clip, with the speaker's audio
    frames: int
    info: dict                     # the generator's: segments, joins
    face_share: float | None       # share of the speaker's frames with a face (None: audio only)
    silent: bool
    described: str                 # the attitude as the text encoder read it
    notices: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.frames / FPS


def listen_to(listener, video: str | Path | None = None, audio: str | Path | None = None,
            attitude: str = "attentive", seed: int = 0, steps: int = 8,
            notice: Callable[[str], None] = lambda s: None,
            progress: Callable[[float, str], None] | None = None) -> ListenResult:
    """Generate `listener`'s (core.listener.generate.Listener) response to a speaker given as a
    video (face + its sound), an audio file, or both (the audio file's sound wins)."""
    from core.animation.audio import read_audio
    from core.animation.clip import AudioTrack

    from .attitude import attitude_weights
    from .data import make_speaker, motion_to_clip, speaker_condition

    if video is None and audio is None:
        raise ListenInputError("give a speaker video or a speaker audio file")
    notices: list[str] = []

    def say(text: str) -> None:
        notices.append(text)
        notice(text)

    weights, described = attitude_weights(attitude)
    sound = read_audio(str(audio or video), required=False)
    clip, face_share = None, None
    if video is not None:
        from core.animation.track import NoFaceError, track_video
        try:
            clip, stats = track_video(str(video), with_audio=False,
                                      progress=(lambda f, s: progress(f, s) if f == 0.0 else None)
                                      if progress else None)
            face_share = stats.face_share
            if face_share < 0.5:
                say(f"a face was found in only {face_share:.0%} of the speaker's frames")
        except NoFaceError:
            face_share = 0.0
            say("no face in the speaker's video: the listener follows the audio alone")
    if sound is None:
        if clip is None:
            raise ListenInputError(f"{Path(audio or video).name} has neither sound nor a face")
        say("the speaker's video has no sound: the listener follows the face alone")
        sound = AudioTrack(np.zeros(int(clip.duration * 16000), np.float32), 16000)
    if clip is not None and abs(clip.duration - sound.duration) > 0.5:
        say(f"the audio ({sound.duration:.1f} s) and video ({clip.duration:.1f} s) differ in length: "
            "the audio's length is used, the speaker's motion is cut or held")
    speaker = make_speaker(Path(video or audio).stem, sound.samples, clip)
    silent = bool(speaker.feat.silent)
    if silent:
        say("the speaker's audio is silent: the listener idles")
    cond = speaker_condition(speaker, listener.mean, listener.std, use_video=clip is not None)
    motion, info = listener.generate(cond, weights, seed=seed, steps=steps,
                                     **({'progress': progress} if progress else {}))
    result = motion_to_clip(motion, name=f"Listener ({attitude})", audio=sound, source="listener",
                            meta={"attitude": described, "seed": seed, "speaker": str(video or audio)})
    return ListenResult(result, len(motion), info, face_share, silent, described, notices)
