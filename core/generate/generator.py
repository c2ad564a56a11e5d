"""Text -> avatar and edit-by-text over the shipped two-stage diffusion model.

    gen = shared_generator()
    cands = gen.generate("a long narrow nose, full lips, blue eyes", n=4, seed=1, guidance=3)
    avatar = cands[0].to_avatar()
    edited = gen.edit(avatar, "make the nose longer", strength=0.5)

Stage 1 samples the identity (ICT coefficients) from the prompt's reading; stage 2 samples the
appearance code, hair and iris from the reading and that identity (GenCA's geometry-then-
texture order). Sampling is core.diffusion's DPM-Solver++(2M) with classifier-free guidance;
the negative prompt's reading is the unguided branch (no negative: the null condition).
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from core.avatar import Avatar
from core.diffusion import Known, cosine_schedule, sample
from core.expressions import PRESETS, weights_from_dict
from core.head.settings import HAIR_STYLES, EyeSettings, HairStyle
from core.paths import MODELS_DIR

from . import DEFAULT_GUIDANCE
from .attributes import GEOMETRY, INDEX, SCALARS, SETTINGS, TEXTURE, AttributeScale
from .data import extras_of, settings_of
from .model import COND_DIM, IDENTITY_DIM, encode_reading, load_net
from .reading import Reading, read_prompt

DEFAULT_PATH = MODELS_DIR / "generate.pt"
FORMAT = "likeness-generate-v1"
MAX_CANDIDATES = 8
# stage 2 (appearance, hair, iris) samples at this fraction of the guidance
STAGE2_GUIDANCE = 1.0
# stage-2 attributes whose (synthetic) settings do not depend on the geometry in the training data
HAIR_IRIS_COLOUR = ("hair_lightness", "hair_redness", "grey_hair", "eye_lightness", "eye_blueness")
PRIOR_P99 = 135.81  # chi-square(100) 99th percentile of |c|^2 under the identity prior N(0, I)


def appearance_p99(k: int) -> float:
    """99th percentile of |a|^2 under the appearance prior N(0, I_k) (chi-square, k dof)."""
    from scipy.stats import chi2
    return float(chi2.ppf(0.99, k))


@contextmanager
def _one_thread():
    """Small MLPs run fastest on one thread (and leave the other core to the GUI)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class GenerateModelError(Exception):
    """The generation model file is missing or damaged (a sentence for the user)."""


@dataclass
class Candidate:
    """One generated avatar: codes, settings, the expression its words set, and the reading."""
    identity: np.ndarray            # (100,) face-model identity code
    ict: np.ndarray                 # (100,) whitened (prior N(0, I)) coefficients
    appearance: np.ndarray          # (K,) texture code
    hair: HairStyle
    eyes: EyeSettings
    expression: np.ndarray          # (53,)
    reading: Reading
    seed: int = 0
    meta: dict = field(default_factory=dict)

    def to_avatar(self, name: str = "Generated") -> Avatar:
        return Avatar(self.identity, self.expression, name=name, appearance=self.appearance,
                      eyes=self.eyes, hair=self.hair)


def load_model_file(path: str | os.PathLike | None = None) -> dict:
    """Read and check a generation model file (torch.load with weights_only after the zip
    size check); GenerateModelError with a sentence for anything missing or damaged."""
    from core.safeload import torch_load
    p = Path(path) if path is not None else DEFAULT_PATH
    if not p.exists():
        raise GenerateModelError(f"the text-to-avatar model {p} is missing "
                                 "(train it with scripts/train_generate.py)")
    try:
        blob = torch_load(p)
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        meta = json.loads(blob["meta"])
        if not isinstance(meta, dict) or meta.get("attributes") != list(SCALARS):
            raise ValueError("its attributes do not match this version of Likeness")
        net1 = load_net(meta["net1"], blob["net1"])
        net2 = load_net(meta["net2"], blob["net2"])
        if net1.config["x_dim"] != IDENTITY_DIM or net1.config["cond_dim"] != COND_DIM \
                or net2.config["cond_dim"] != COND_DIM + IDENTITY_DIM:
            raise ValueError("its networks have the wrong sizes")
        q = blob["scale_quantiles"].double().numpy()
        if q.ndim != 2 or q.shape[1] != len(SCALARS) or q.shape[0] < 2 or not np.isfinite(q).all():
            raise ValueError("its attribute scale is damaged")
        em = blob["extras_mean"].double().numpy()
        es = blob["extras_std"].double().numpy()
        if em.shape != es.shape or em.shape[0] >= net2.config["x_dim"] or not (es > 0).all():
            raise ValueError("its hair/iris normalisation is damaged")
        steps = meta.get("schedule_steps", 1000)
        if not isinstance(steps, int) or not 2 <= steps <= 100_000:
            raise ValueError("its schedule length is damaged")
        base = {k: blob[k] for k in ("nn_embeddings", "nn_codes", "ridge") if k in blob}
        for k, v in base.items():
            if not isinstance(v, torch.Tensor) or v.ndim != 2:
                raise ValueError(f"its baseline data {k} is damaged")
    except GenerateModelError:
        raise
    except Exception as e:
        raise GenerateModelError(f"cannot read the text-to-avatar model {p}: {e}") from e
    return {"net1": net1, "net2": net2, "scale": AttributeScale(np.sort(q, 0)), "extras_mean": em,
            "extras_std": es, "baselines": base, "meta": meta}


class TextToAvatar:
    def __init__(self, path: str | os.PathLike | None = None, face_model=None) -> None:
        f = load_model_file(path)
        self.net1, self.net2, self.scale = f["net1"], f["net2"], f["scale"]
        self.extras_mean, self.extras_std = f["extras_mean"], f["extras_std"]
        self.baselines = f["baselines"]
        meta = f["meta"]
        self.meta = meta
        self.schedule = cosine_schedule(int(meta.get("schedule_steps", 1000)))  # checked on load
        if face_model is None:
            from core.facemodel.model import FaceModel
            face_model = FaceModel.load()
        self.face_model = face_model
        self.W = face_model.net.id_encoder.weight.detach().double().numpy()
        self._probes = None
        self._geometry_jacobian = None
        self.stage2_guidance = STAGE2_GUIDANCE
        self.named_from_text = True     # named texture/hair/iris colour from the text alone (_take_named_stage2)
        self.appearance_guard = True    # texture codes kept inside the appearance prior's p99
        self._tprobe = None
        # the appearance guard's Jacobian, built with the model (about 1.5 s) so that the first
        # prompt naming a skin, lip or brow word is not 1.5 s slower than the others
        self._tex_jacobian = None
        self._texture_jacobian(self.net2.config["x_dim"] - len(self.extras_mean))

    # --- codes <-> model space ------------------------------------------------------------------
    def identity_of(self, ict: np.ndarray) -> np.ndarray:
        return (np.asarray(ict, np.float64) @ self.W.T).astype(np.float32)

    def ict_of(self, identity: np.ndarray) -> np.ndarray:
        return np.linalg.solve(self.W, np.asarray(identity, np.float64).T).T.astype(np.float32)

    def _x2_of(self, appearance: np.ndarray, hair: HairStyle, eyes: EyeSettings) -> np.ndarray:
        k = self.net2.config["x_dim"] - len(self.extras_mean)
        a = np.zeros(k, np.float32)
        if appearance is not None:
            a[:min(k, len(appearance))] = np.asarray(appearance, np.float32)[:k]
        return np.concatenate([a, (extras_of(hair, eyes) - self.extras_mean) / self.extras_std]).astype(np.float32)

    def _candidate(self, ict: np.ndarray, x2: np.ndarray, reading: Reading, seed: int,
                   expression: np.ndarray | None = None) -> Candidate:
        k = self.net2.config["x_dim"] - len(self.extras_mean)
        hair, eyes = settings_of(x2[k:] * self.extras_std + self.extras_mean)
        if reading.style is not None and hair.style != reading.style:
            hair = HairStyle(**{**hair.to_dict(), "style": reading.style})
        if expression is None:
            expression = (weights_from_dict(PRESETS[reading.expression]) if reading.expression
                          else np.zeros(53, np.float32))
        return Candidate(self.identity_of(ict), ict.astype(np.float32), x2[:k].astype(np.float32),
                         hair, eyes, np.asarray(expression, np.float32), reading, seed)

    # --- generate -------------------------------------------------------------------------------
    def generate(self, prompt: str, n: int = 4, seed: int = 0, guidance: float = DEFAULT_GUIDANCE,
                 negative: str = "", steps: int = 20,
                 callback: Callable[[int, int], None] | None = None,
                 reading: Reading | None = None, disentangle: bool = True) -> list[Candidate]:
        """n candidates (1..8) for a prompt. callback(done, total) per sampler step; raise
        core.diffusion.Cancelled in it to stop.

        disentangle: each stage is sampled twice from the same noise, with and without the
        text; the result is the text-free sample moved (least change, first order) to take the
        conditioned sample's values of the attributes the prompt names, with the others kept:
        stage 1 over the geometric attributes; stage 2 by groups: the texture code, hair
        style/length, hair colour and iris colour each from the conditioned sample only when
        the prompt names one of their attributes. What the prompt does not mention
        then does not follow the named attributes' correlations in the data (a wide nose alone
        does not widen the face, golden hair alone does not pale the skin), and the same seed
        with opposite words differs only where the words differ."""
        n = int(n)
        if not 1 <= n <= MAX_CANDIDATES:
            raise ValueError(f"the number of candidates must be 1 to {MAX_CANDIDATES}, got {n}")
        if not np.isfinite(guidance) or not 0 <= guidance <= 20:
            raise ValueError(f"guidance must be in [0, 20], got {guidance}")
        reading = reading or read_prompt(prompt)
        neg = read_prompt(negative) if negative and negative.strip() else None
        if neg is not None and neg.ungrounded:
            reading.notices.append("negative prompt: " + neg.summary())
        cond = torch.from_numpy(encode_reading(reading))[None]
        negc = torch.from_numpy(encode_reading(neg))[None]
        g = torch.Generator().manual_seed(int(seed))
        total = 2 * steps

        def cb(offset):
            return None if callback is None else (lambda i, m, x0: callback(offset + i, total))
        named = [a for a in {**reading.relative, **reading.targets} if a in GEOMETRY]
        with torch.no_grad(), _one_thread():
            noise = torch.randn((n, IDENTITY_DIM), generator=g)
            ict = sample(self.net1, self.schedule, (n, IDENTITY_DIM), cond, prediction="v",
                         guidance=guidance, negative=negc, steps=steps, generator=g, callback=cb(0),
                         noise=noise)
            if disentangle and named and len(named) < len(GEOMETRY) and guidance > 0:
                # (a prompt naming nothing geometric keeps the conditioned identity: the text-free
                # one was tried and scored R-precision 0.863 vs 0.881 on the validation suite)
                free = sample(self.net1, self.schedule, (n, IDENTITY_DIM), torch.zeros(1, COND_DIM),
                              prediction="v", steps=steps, generator=g, noise=noise)
                ict = torch.from_numpy(np.stack([
                    self._take_named(free[i].double().numpy(), ict[i].double().numpy(), named)
                    for i in range(n)]).astype(np.float32))
            # plausibility guard: strong guidance can push a face past the prior's 99th
            # percentile; such a face is brought back onto it by shrinking only what the named
            # attributes do not depend on (a radial pull undid the prompt on high-norm seeds)
            ict = torch.from_numpy(np.stack([self._inside_prior(ict[i].double().numpy(), named)
                                             for i in range(n)]).astype(np.float32))
            targets = {**reading.relative, **reading.targets}
            d2 = self.net2.config["x_dim"]
            noise2 = torch.randn((n, d2), generator=g)
            # a named texture attribute or hair/iris colour, with disentangling: also sampled from
            # the text alone (the identity dropped, as 30% of training did), batched with the
            # conditioned sample (see _take_named_stage2)
            text_only = (disentangle and guidance > 0 and self.named_from_text
                         and any(a in targets for a in TEXTURE + HAIR_IRIS_COLOUR))
            ids = torch.cat([ict, torch.zeros_like(ict)]) if text_only else ict
            m = len(ids)
            x2 = sample(self.net2, self.schedule, (m, d2), torch.cat([cond.expand(m, -1), ids], 1),
                        prediction="v", guidance=guidance * self.stage2_guidance,
                        negative=torch.cat([negc.expand(m, -1), ids], 1), steps=steps, generator=g,
                        callback=cb(steps), noise=noise2.repeat(m // n, 1))
            x2, x2_text = (x2[:n], x2[n:]) if text_only else (x2, None)
            if disentangle and guidance > 0 and (targets or reading.style is not None):
                free2 = sample(self.net2, self.schedule, (n, d2),
                               torch.cat([torch.zeros(n, COND_DIM), ict], 1), prediction="v", steps=steps,
                               generator=g, noise=noise2)
                x2 = torch.from_numpy(np.stack([
                    self._take_named_stage2(free2[i].double().numpy(), x2[i].double().numpy(), targets,
                                            reading.style is not None,
                                            None if x2_text is None else x2_text[i].double().numpy())
                    for i in range(n)]).astype(np.float32))
            # the appearance code's counterpart of the identity guard (guidance pushed 55% of the
            # codes of prompts naming a texture attribute past the appearance prior's 99th percentile)
            if self.appearance_guard:
                k = d2 - len(self.extras_mean)
                named2 = [a for a in targets if a in TEXTURE]
                x2[:, :k] = torch.from_numpy(np.stack([self._appearance_inside_prior(x2[i, :k].double().numpy(), named2)
                                                       for i in range(n)]).astype(np.float32))
        return [self._candidate(ict[i].numpy(), x2[i].numpy(), reading, int(seed)) for i in range(n)]

    # --- measure --------------------------------------------------------------------------------
    def probes(self):
        if self._probes is None:
            from .attributes import GeometryProbe
            self._probes = (GeometryProbe(self.face_model), self._texture_probe())
        return self._probes

    def measure(self, identity: np.ndarray, appearance: np.ndarray | None, hair: HairStyle,
                eyes: EyeSettings, texture_linear: np.ndarray | None = None) -> np.ndarray:
        """Raw attribute values (len(SCALARS),) of one avatar's parts."""
        from core.appearance import shared_model
        from .attributes import measure_geometry, measure_settings
        gp, tp = self.probes()
        geo = measure_geometry(gp, np.asarray(identity)[None])[0]
        lin = texture_linear if texture_linear is not None else shared_model().decode_linear(appearance)
        return np.concatenate([geo, tp.measure(lin), measure_settings(hair, eyes)])

    def measure_z(self, identities: np.ndarray, appearances: np.ndarray, hairs, eyes) -> np.ndarray:
        """(B, A) z-scores for many avatars (geometry batched)."""
        from core.appearance import shared_model
        from .attributes import measure_geometry, measure_settings
        gp, tp = self.probes()
        am = shared_model()
        geo = measure_geometry(gp, np.asarray(identities))
        tex = np.stack([tp.measure(am.decode_linear(a)) for a in appearances])
        st = np.stack([measure_settings(h, e) for h, e in zip(hairs, eyes)])
        return self.scale.z(np.concatenate([geo, tex, st], 1))

    def candidate_z(self, cands: list[Candidate]) -> np.ndarray:
        return self.measure_z(np.stack([c.identity for c in cands]), np.stack([c.appearance for c in cands]),
                              [c.hair for c in cands], [c.eyes for c in cands])

    # --- edit -----------------------------------------------------------------------------------
    def edit(self, avatar: Avatar, text: str, strength: float = 0.5, seed: int = 0,
             guidance: float = DEFAULT_GUIDANCE, steps: int = 20,
             callback: Callable[[int, int], None] | None = None) -> Candidate:
        """The avatar changed as the sentence says ("make the nose longer", "darker hair"),
        everything it does not mention kept: a stage the sentence does not touch is kept
        exactly; a touched stage restarts from the avatar's codes noised to `strength`
        (SDEdit) and is sampled towards targets = the avatar's measured value moved by the
        words (comparatives) or set by them."""
        if not 0.0 <= float(strength) <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        reading = read_prompt(text)
        if reading.empty:
            raise ValueError(f"nothing to change: {reading.summary()}")
        lin = None
        if avatar.texture is not None:
            from core.appearance.model import to_linear
            lin = to_linear(avatar.texture)
        z_now = self.scale.z(self.measure(avatar.identity, avatar.appearance, avatar.hair, avatar.eyes, lin)[None])[0]
        targets = dict(reading.targets)
        for attr, delta in reading.relative.items():
            targets[attr] = float(np.clip(z_now[INDEX[attr]] + delta, -3, 3))
        edited = Reading(text, targets=targets, style=reading.style, expression=reading.expression,
                         used=reading.used, ungrounded=reading.ungrounded, notices=reading.notices)
        cond = torch.from_numpy(encode_reading(edited))[None]
        null = torch.zeros(1, COND_DIM)
        touch1 = any(a in GEOMETRY for a in targets)
        touch2 = any(a in TEXTURE + SETTINGS for a in targets) or reading.style is not None or touch1
        ict0 = torch.from_numpy(self.ict_of(avatar.identity))[None]
        x20 = torch.from_numpy(self._x2_of(avatar.appearance, avatar.hair, avatar.eyes))[None]
        g = torch.Generator().manual_seed(int(seed))
        with torch.no_grad(), _one_thread():
            ict = ict0
            if touch1:
                ict = sample(self.net1, self.schedule, ict0.shape, cond, prediction="v", guidance=guidance,
                             negative=null, steps=steps, generator=g, init=ict0, strength=strength)
            x2 = x20
            if any(a in TEXTURE + SETTINGS for a in targets) or reading.style is not None:
                # appearance/hair/iris dimensions the sentence does not touch stay known
                mask = torch.zeros(x20.shape[1], dtype=torch.bool)
                k = x20.shape[1] - len(self.extras_mean)
                if not any(a in TEXTURE for a in targets):
                    mask[:k] = True
                if not any(a in SETTINGS[:4] for a in targets) and reading.style is None:
                    mask[k:k + 12] = True
                if not any(a in SETTINGS[4:] for a in targets):
                    mask[k + 12:] = True
                c2 = torch.cat([cond, ict], 1)
                x2 = sample(self.net2, self.schedule, x20.shape, c2, prediction="v", guidance=guidance,
                            negative=torch.cat([null, ict], 1), steps=steps, generator=g, init=x20,
                            strength=strength, known=Known(x20, mask))
        # keep what the sentence does not mention: the diffusion's proposal is projected so the
        # other measured attributes of the touched group stay put and the named ones move the
        # asked way by at least strength x the asked change (first order, two Gauss-Newton steps)
        ict_np, x2_np = ict[0].numpy().astype(np.float64), x2[0].numpy().astype(np.float64)
        want = {a: targets[a] - z_now[INDEX[a]] for a in targets}
        if touch1:
            ict_np = self._keep_others(ict0[0].numpy().astype(np.float64), ict_np, GEOMETRY, want,
                                       float(strength), self._measure_geometry_norm)
        k = x20.shape[1] - len(self.extras_mean)
        if any(a in TEXTURE for a in targets):
            x2_np[:k] = self._keep_others(x20[0, :k].numpy().astype(np.float64), x2_np[:k], TEXTURE, want,
                                          float(strength), self._measure_texture_norm)
        if any(a in SETTINGS for a in targets):
            x2_np[k:] = self._keep_others(x20[0, k:].numpy().astype(np.float64), x2_np[k:], SETTINGS, want,
                                          float(strength), self._measure_settings_norm)
        cand = self._candidate(ict_np.astype(np.float32), x2_np.astype(np.float32), edited, int(seed), expression=(
            weights_from_dict(PRESETS[reading.expression]) if reading.expression else avatar.expression))
        if not touch2 and avatar.appearance is None:
            cand.appearance = None  # keep "the mean appearance" as it was
        cand.meta["z_before"] = z_now
        if not (any(a in SETTINGS[:4] for a in targets) or reading.style is not None):
            cand.hair = avatar.hair
        if not any(a in SETTINGS[4:] for a in targets):
            cand.eyes = avatar.eyes
        return cand


    def _attr_std(self) -> np.ndarray:
        q = self.scale.sorted_values
        n = len(q)
        return np.maximum((q[int(0.84 * (n - 1))] - q[int(0.16 * (n - 1))]) / 2.0, 1e-6)

    def _measure_geometry_norm(self, ict: np.ndarray) -> np.ndarray:
        from .attributes import measure_geometry
        gp, _ = self.probes()
        return measure_geometry(gp, np.atleast_2d(ict) @ self.W.T) / self._attr_std()[:len(GEOMETRY)]

    def _texture_probe(self):
        """The texture probe alone (cheap), without building the geometry probe."""
        if self._probes is not None:
            return self._probes[1]
        if self._tprobe is None:
            from .attributes import TextureProbe
            self._tprobe = TextureProbe(self.face_model)
        return self._tprobe

    def _measure_texture_norm(self, codes: np.ndarray) -> np.ndarray:
        from core.appearance import shared_model
        tp = self._texture_probe()
        am = shared_model()
        std = self._attr_std()[len(GEOMETRY):len(GEOMETRY) + len(TEXTURE)]
        return np.stack([tp.measure(am.decode_linear(c.astype(np.float32))) for c in np.atleast_2d(codes)]) / std

    def _measure_settings_norm(self, extras_norm: np.ndarray) -> np.ndarray:
        from .attributes import measure_settings
        std = self._attr_std()[len(GEOMETRY) + len(TEXTURE):]
        rows = []
        for e in np.atleast_2d(extras_norm):
            hair, eyes = settings_of(e * self.extras_std + self.extras_mean)
            rows.append(measure_settings(hair, eyes))
        return np.stack(rows) / std

    def _take_named(self, x_free: np.ndarray, x_cond: np.ndarray, named: list[str]) -> np.ndarray:
        """x_free moved (least change) so the named geometric attributes take x_cond's values
        and the others keep x_free's (two Gauss-Newton steps on the measured attributes)."""
        measure = self._measure_geometry_norm
        rows = [GEOMETRY.index(a) for a in named] + [i for i, a in enumerate(GEOMETRY) if a not in named]
        base, goal = measure(x_free)[0], measure(x_cond)[0]
        b = np.concatenate([goal[rows[:len(named)]] - base[rows[:len(named)]], np.zeros(len(rows) - len(named))])
        if self._geometry_jacobian is None:  # nearly constant (the warp is linear in the code)
            x0, eps = np.zeros(len(x_free)), 1e-2
            self._geometry_jacobian = ((measure(x0[None] + eps * np.eye(len(x0))) - measure(x0)) / eps).T
        J = self._geometry_jacobian[rows]
        inv = np.linalg.inv(J @ J.T + 1e-6 * np.eye(len(rows)))
        d = J.T @ (inv @ b)
        for _ in range(2):  # Gauss-Newton against the measured (mildly nonlinear) change
            r = (measure(x_free + d)[0] - base)[rows] - b
            d = d - J.T @ (inv @ r)
        return x_free + d

    def _inside_prior(self, x: np.ndarray, named: list[str]) -> np.ndarray:
        """x inside the prior's 99th percentile: x = P x + (I - P) x with P the projection onto
        the row space of the named geometric attributes' Jacobian; only (I - P) x shrinks, which
        (to first order) leaves the named attributes where they are. Radial when nothing is
        named or the named part alone is already outside."""
        sq = float((x ** 2).sum())
        if sq <= PRIOR_P99:
            return x
        goal = 0.999 * PRIOR_P99
        if named:
            if self._geometry_jacobian is None:
                self._take_named(x, x, named)   # builds the Jacobian
            J = self._geometry_jacobian[[GEOMETRY.index(a) for a in named]]
            px = J.T @ np.linalg.solve(J @ J.T + 1e-9 * np.eye(len(J)), J @ x)
            rest = x - px
            if float((px ** 2).sum()) < goal and float((rest ** 2).sum()) > 0:
                return px + rest * np.sqrt((goal - float((px ** 2).sum())) / float((rest ** 2).sum()))
        return x * np.sqrt(goal / sq)

    def _appearance_inside_prior(self, a: np.ndarray, named: list[str]) -> np.ndarray:
        """The texture code inside its prior's 99th percentile (|a|^2 under N(0, I)): as
        _inside_prior, only the part outside the row space of the named texture attributes'
        Jacobian shrinks (first order: they stay where the prompt put them); radial when nothing
        is named or the named part alone is already outside. The Jacobian is a secant at the
        mean code (1-sigma steps), computed with the model: the texture measures are not linear
        in the code, so how well a move along it keeps them is checked by eval-generate."""
        p99 = appearance_p99(len(a))
        sq = float((a ** 2).sum())
        if sq <= p99:
            return a
        goal = 0.999 * p99
        if named:
            J = self._texture_jacobian(len(a))[[TEXTURE.index(t) for t in named]]
            pa = J.T @ np.linalg.solve(J @ J.T + 1e-9 * np.eye(len(J)), J @ a)
            rest = a - pa
            if float((pa ** 2).sum()) < goal and float((rest ** 2).sum()) > 0:
                return pa + rest * np.sqrt((goal - float((pa ** 2).sum())) / float((rest ** 2).sum()))
        return a * np.sqrt(goal / sq)

    def _texture_jacobian(self, k: int) -> np.ndarray:
        if self._tex_jacobian is None or self._tex_jacobian.shape[1] != k:
            x0 = np.zeros(k)
            m = self._measure_texture_norm(np.concatenate([x0[None], np.eye(k)]))
            self._tex_jacobian = (m[1:] - m[0]).T                    # (len(TEXTURE), k), 1-sigma secant
        return self._tex_jacobian

    def _take_named_stage2(self, x_free: np.ndarray, x_cond: np.ndarray, targets: dict[str, float],
                           style_named: bool, x_text: np.ndarray | None = None) -> np.ndarray:
        """Stage 2's counterpart of _take_named, by groups: the text-free sample (same noise, same
        identity) takes the conditioned sample's texture code when the prompt names a texture
        attribute, its hair style/length, hair colour or iris colour when it names them, and keeps
        the rest. Texture attributes are not separated from each other: the texture measures are
        partly thresholded (dark-brow fraction), so a Gauss-Newton move on them left the brows
        where the text-free sample had them (validation brow accuracy 0.97 -> 0.70).

        x_text (the sample of the text alone, same noise, identity dropped), when given, supplies
        the texture code and the hair and iris colour instead of x_cond. With an identity in its
        condition stage 2 ignored "silver hair" for about a quarter of identities: it had learned
        the real faces' identity -> hair pairs (hair and iris are synthetic and do not depend on
        the geometry in the data; 88% of faces are not grey); from the text alone it followed it
        for all. The texture code likewise (validation: direction 0.979 -> 0.990, skin 0.886 ->
        0.918, R-precision 0.915 -> 0.952). The geometry still conditions every group the prompt
        does not name. A named hair colour also needs hair: a bald text-free style takes x_text's
        style and length (bald hair has no colour to measure or see)."""
        k = self.net2.config["x_dim"] - len(self.extras_mean)
        out = x_free.copy()
        text_src = x_cond if x_text is None else x_text
        groups = ((slice(0, k), TEXTURE, False, text_src),
                  (slice(k, k + 8), ("hair_length",), style_named, x_cond),   # style one-hot, length, hairline
                  (slice(k + 8, k + 12), HAIR_IRIS_COLOUR[:3], False, text_src),
                  (slice(k + 12, len(out)), HAIR_IRIS_COLOUR[3:], False, text_src))
        for sl, attrs, forced, src in groups:
            if forced or any(a in targets for a in attrs):
                out[sl] = src[sl]
        n_styles = len(HAIR_STYLES)
        if (x_text is not None and not style_named and any(a in targets for a in HAIR_IRIS_COLOUR[:3])
                and HAIR_STYLES[int(np.argmax(out[k:k + n_styles]))] == "bald"):
            out[k:k + 8] = text_src[k:k + 8]
        return out

    def _keep_others(self, x0: np.ndarray, x1: np.ndarray, group: tuple[str, ...], want: dict[str, float],
                     strength: float, measure: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """x0 + d with d closest to the proposal x1 - x0 such that, to first order, the group's
        attributes named in `want` move by at least strength x want (in their sign) and the
        group's other attributes do not move."""
        named = [group.index(a) for a in want if a in group]
        if not named or strength <= 0:
            return x0
        others = [i for i in range(len(group)) if i not in named]
        base = measure(x0)[0]
        eps = 1e-2 if group is GEOMETRY else 0.1   # texture measures are piecewise flat at small steps
        J = ((measure(x0[None] + eps * np.eye(len(x0))) - base[None]) / eps).T      # (A, D)
        d = x1 - x0
        got = J[named] @ d
        asked = np.array([want[group[i]] for i in named])
        b_t = np.where(np.sign(got) == np.sign(asked), np.sign(asked) * np.maximum(np.abs(got), strength * np.abs(asked)),
                       strength * asked)
        rows = named + others
        Jr = J[rows]
        b = np.concatenate([b_t, np.zeros(len(others))])
        inv = np.linalg.inv(Jr @ Jr.T + 1e-6 * np.eye(len(rows)))
        d = d - Jr.T @ (inv @ (Jr @ d - b))
        for _ in range(1):  # one more step against the measured (nonlinear) change
            r = (measure(x0 + d)[0] - base)[rows] - b
            d = d - Jr.T @ (inv @ r)
        if group is GEOMETRY:  # stay inside the prior's 99th percentile
            for _ in range(20):
                if ((x0 + d) ** 2).sum() <= PRIOR_P99:
                    break
                d *= 0.9
        return x0 + d


_SHARED: TextToAvatar | None = None


def shared_generator() -> TextToAvatar:
    global _SHARED
    if _SHARED is None:
        _SHARED = TextToAvatar()
    return _SHARED
