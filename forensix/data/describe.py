"""Texts from forgery records: clue words, verdicts, locations, explanations and captions.

Location words name cells of a 3x3 grid (:data:`GRID_CELLS`) exactly, so that
:func:`parse_location` can read them back.

Example:
    >>> import numpy as np
    >>> from forensix.data.forge import ForgeryRecord
    >>> m = np.zeros((30, 30), np.uint8); m[:10, :10] = 1
    >>> location_phrase(m)
    'in the top-left of the image, near the top and left edges'
    >>> clues_for(ForgeryRecord(op="copy_move", params={"rotation": 0.0, "scale": 1.0}))
    ['duplicated texture', 'unnatural boundary']
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from forensix.data.forge import ForgeryRecord
from forensix.data.sources import content_phrase

CLUES = (
    "edge halo",
    "lighting mismatch",
    "duplicated texture",
    "blur mismatch",
    "noise mismatch",
    "color shift",
    "resampling traces",
    "JPEG grid misalignment",
    "smeared texture",
    "sharpening artifacts",
    "unnatural boundary",
)
GRID_CELLS = (
    "top-left", "top-center", "top-right",
    "middle-left", "center", "middle-right",
    "bottom-left", "bottom-center", "bottom-right",
)
GRANULARITIES = ("verdict", "location", "explanation", "full")
_LIGHTING_LUMA = 12.0
_CELL_SHARE = 0.2

_CLUE_SENTENCES = {
    "edge halo": (
        "Its boundary shows a thin halo where the pasted pixels meet the background.",
        "A faint halo runs along the region's edge.",
        "The outline carries an edge halo typical of pasted content.",
    ),
    "lighting mismatch": (
        "Its brightness does not match the lighting of the rest of the scene.",
        "The lighting inside the region is inconsistent with its surroundings.",
        "There is a lighting mismatch between the region and the scene.",
    ),
    "duplicated texture": (
        "Its texture duplicates another part of the same image.",
        "The same texture appears twice in the image, a sign of copied content.",
        "A duplicated texture reveals content copied from elsewhere in the photo.",
    ),
    "blur mismatch": (
        "It is blurrier than the surrounding areas.",
        "Its sharpness differs from the rest of the image (blur mismatch).",
        "The region shows a blur mismatch with its neighbourhood.",
    ),
    "noise mismatch": (
        "Its noise pattern differs from the rest of the image.",
        "The sensor noise inside the region does not match the surroundings.",
        "A noise mismatch separates the region from the background.",
    ),
    "color shift": (
        "Its colors are shifted relative to the surrounding content.",
        "The region shows a color shift that the scene does not explain.",
        "Its color balance is inconsistent with the rest of the image.",
    ),
    "resampling traces": (
        "It shows resampling traces from being scaled or rotated.",
        "Periodic interpolation patterns reveal resampling traces.",
        "The pixels carry resampling traces of a rescaling step.",
    ),
    "JPEG grid misalignment": (
        "Its JPEG block grid is misaligned with the grid of the host image.",
        "The compression blocks inside the region do not line up with the rest (JPEG grid misalignment).",
        "A JPEG grid misalignment shows it was compressed separately.",
    ),
    "smeared texture": (
        "The texture there is smeared, as if filled in from the surroundings.",
        "Smooth, smeared texture suggests content was removed and filled in.",
        "The area looks smeared where detail should be.",
    ),
    "sharpening artifacts": (
        "It shows sharpening artifacts: overshoot along edges and amplified noise.",
        "Local sharpening artifacts make its edges unnaturally crisp.",
        "The region carries sharpening artifacts absent elsewhere.",
    ),
    "unnatural boundary": (
        "Its boundary cuts unnaturally through the scene's structures.",
        "The edges of the region do not follow natural object boundaries.",
        "An unnatural boundary separates it from the surrounding content.",
    ),
}
_OP_PHRASES = {
    "splice": ("was spliced in from another photo", "was pasted from a different image", "comes from another picture"),
    "copy_move": ("was copied from another part of the same image", "is a copy-move duplicate of another area",
                  "was cloned from elsewhere in the photo"),
    "removal": ("had its content removed and filled in", "was erased and inpainted from its surroundings",
                "hides removed content that was filled in"),
    "retouch": ("was locally retouched", "was edited with a local filter", "was retouched"),
    "color": ("had its colors altered", "was recolored", "had its color and lighting changed"),
    "resample": ("was resampled", "was rescaled and pasted back", "was resized in place"),
}
_RETOUCH_PHRASES = {"blur": "blurred", "sharpen": "sharpened", "noise": "given extra noise"}
_FAKE_VERDICTS = (
    "This image has been manipulated.",
    "This image shows signs of manipulation.",
    "The image has been tampered with.",
    "This picture has been edited.",
)
_REAL_VERDICTS = (
    "This image appears authentic.",
    "No manipulation is visible in this image.",
    "The image looks genuine and unedited.",
    "This picture appears to be an unaltered photo.",
)
_AUTHENTIC_EXPLANATIONS = (
    "Noise is consistent across the image, edges show no halos, lighting and colors are coherent, "
    "and no texture is duplicated.",
    "The noise level and JPEG blocks are uniform everywhere, there are no edge halos or blur "
    "mismatches, and the lighting is consistent.",
    "All regions share the same noise, sharpness and compression traces; no duplicated texture, "
    "color shift or unnatural boundary is visible.",
)
_SHAPE_PHRASES = {
    "ellipse": ("an elliptical region", "a rounded region", "an oval region"),
    "polygon": ("a polygonal region", "an angular region", "a region with straight edges"),
    "blob": ("an irregular blob-shaped region", "an irregular region", "a blob-like region"),
    "object": ("a region following an object's outline", "an object-shaped region",
               "a region that follows the image structure"),
    "custom": ("a marked region", "the marked region", "a region"),
}


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _record(record: ForgeryRecord | dict[str, Any]) -> ForgeryRecord:
    return record if isinstance(record, ForgeryRecord) else ForgeryRecord.from_dict(record)


def clues_for(record: ForgeryRecord | dict[str, Any]) -> list[str]:
    """Clue words implied by the record's op and parameters (deterministic, in :data:`CLUES` order).

    Example:
        >>> clues_for(ForgeryRecord(op="authentic"))
        []
    """
    r = _record(record)
    p = r.params
    found: set[str] = set()
    if r.op == "splice":
        found |= {"edge halo", "noise mismatch", "JPEG grid misalignment"}
        if not p.get("color_match", False):
            found.add("color shift")
            if abs(float(p.get("luma_diff", 0.0))) > _LIGHTING_LUMA:
                found.add("lighting mismatch")
    elif r.op == "copy_move":
        found |= {"duplicated texture", "unnatural boundary"}
        if float(p.get("rotation", 0.0)) != 0.0 or float(p.get("scale", 1.0)) != 1.0:
            found.add("resampling traces")
    elif r.op == "removal":
        found |= {"smeared texture", "blur mismatch"}
        if not p.get("add_noise", False):
            found.add("noise mismatch")
    elif r.op == "retouch":
        kind = p.get("kind")
        found |= {"blur": {"blur mismatch", "noise mismatch"}, "sharpen": {"sharpening artifacts", "noise mismatch"},
                  "noise": {"noise mismatch"}}.get(kind, set())
    elif r.op == "color":
        found.add("color shift")
        if p.get("kind") == "brightness" or p.get("kind") == "gain":
            found.add("lighting mismatch")
    elif r.op == "resample":
        found.add("resampling traces")
        if p.get("kind") == "down_up":
            found.add("blur mismatch")
    return [c for c in CLUES if c in found]


def clue_vector(record: ForgeryRecord | dict[str, Any]) -> np.ndarray:
    """Multi-hot float32 vector over :data:`CLUES`.

    Example:
        >>> float(clue_vector(ForgeryRecord(op="authentic")).sum())
        0.0
    """
    found = set(clues_for(record))
    return np.array([c in found for c in CLUES], dtype=np.float32)


def mask_cells(mask: np.ndarray, min_share: float = _CELL_SHARE) -> list[str]:
    """3x3 grid cells holding at least ``min_share`` of the mask (always the largest), by share.

    Example:
        >>> m = np.zeros((9, 9), np.uint8); m[4, 4] = 1
        >>> mask_cells(m)
        ['center']
    """
    m = np.asarray(mask) > 0
    total = int(m.sum())
    if total == 0:
        return []
    h, w = m.shape
    ys, xs = np.nonzero(m)
    rows = np.minimum(ys * 3 // h, 2)
    cols = np.minimum(xs * 3 // w, 2)
    counts = np.bincount(rows * 3 + cols, minlength=9)
    order = np.argsort(-counts, kind="stable")
    cells = [GRID_CELLS[i] for i in order if counts[i] >= min_share * total]
    return cells or [GRID_CELLS[int(order[0])]]


def _edges(mask: np.ndarray) -> list[str]:
    m = np.asarray(mask) > 0
    h, w = m.shape
    margin_y, margin_x = max(1, h // 32), max(1, w // 32)
    touch = {
        "top": m[:margin_y].any(), "bottom": m[-margin_y:].any(),
        "left": m[:, :margin_x].any(), "right": m[:, -margin_x:].any(),
    }
    return [k for k in ("top", "bottom", "left", "right") if touch[k]]


def location_phrase(mask: np.ndarray) -> str:
    """Where the mask lies, with exact grid-cell words and edges it touches.

    Example:
        >>> m = np.zeros((9, 9), np.uint8); m[3:6, 3:6] = 1
        >>> location_phrase(m)
        'in the center of the image'
    """
    cells = mask_cells(mask)
    if not cells:
        return "nowhere in the image"
    where = cells[0] if len(cells) == 1 else ", ".join(cells[:-1]) + " and " + cells[-1]
    text = f"in the {where} of the image"
    edges = _edges(mask)
    if len(edges) == 1:
        text += f", near the {edges[0]} edge"
    elif edges:
        text += f", near the {', '.join(edges[:-1])} and {edges[-1]} edges"
    return text


def size_phrase(mask: np.ndarray) -> str:
    """Size of the region in words plus its share of the image.

    Example:
        >>> size_phrase(np.eye(10, dtype=np.uint8))
        'a medium-sized area (about 10% of the image)'
    """
    frac = float((np.asarray(mask) > 0).mean())
    word = "a small" if frac < 0.05 else "a medium-sized" if frac < 0.15 else "a large"
    return f"{word} area (about {max(1, round(100 * frac))}% of the image)"


def shape_phrase(record: ForgeryRecord | dict[str, Any], rng: np.random.Generator | None = None) -> str:
    """Shape of the manipulated region in words.

    Example:
        >>> shape_phrase(ForgeryRecord(op="splice", shape="ellipse"))
        'an elliptical region'
    """
    options = _SHAPE_PHRASES.get(_record(record).shape or "custom", _SHAPE_PHRASES["custom"])
    return options[0] if rng is None else _pick(rng, options)


def verdict(record: ForgeryRecord | dict[str, Any], rng: np.random.Generator) -> str:
    """One-line verdict (several phrasings).

    Example:
        >>> verdict(ForgeryRecord(op="authentic"), np.random.default_rng(0)) in _REAL_VERDICTS
        True
    """
    return _pick(rng, _FAKE_VERDICTS if _record(record).is_fake else _REAL_VERDICTS)


def _op_phrase(r: ForgeryRecord, rng: np.random.Generator) -> str:
    if r.op == "retouch" and r.params.get("kind") in _RETOUCH_PHRASES:
        return f"was locally {_RETOUCH_PHRASES[r.params['kind']]}"
    return _pick(rng, _OP_PHRASES.get(r.op, ("was manipulated",)))


def localized_description(record: ForgeryRecord | dict[str, Any], mask: np.ndarray, rng: np.random.Generator) -> str:
    """Which region was manipulated, where, how large, and how.

    Example:
        >>> m = np.zeros((9, 9), np.uint8); m[:3, :3] = 1
        >>> r = ForgeryRecord(op="splice", shape="ellipse")
        >>> "top-left" in localized_description(r, m, np.random.default_rng(0))
        True
    """
    r = _record(record)
    if not r.is_fake or not np.asarray(mask).any():
        return "No region of the image appears manipulated."
    shape = shape_phrase(r, rng)
    templates = (
        "{Shape} {loc} {op}; it covers {size}.",
        "The manipulated area is {shape} {loc}, covering {size}; it {op}.",
        "{Size_cap} {loc} {op}: {shape}.",
    )
    size = size_phrase(mask)
    text = _pick(rng, templates).format(
        Shape=shape[0].upper() + shape[1:], shape=shape, loc=location_phrase(mask), op=_op_phrase(r, rng),
        size=size, Size_cap=size[0].upper() + size[1:],
    )
    return text


def explanation(record: ForgeryRecord | dict[str, Any], mask: np.ndarray, rng: np.random.Generator) -> str:
    """Forensic explanation naming the cues of the op (authentic images get one too).

    Example:
        >>> r = ForgeryRecord(op="removal", params={"add_noise": False})
        >>> "smeared" in explanation(r, np.ones((9, 9), np.uint8), np.random.default_rng(0))
        True
    """
    r = _record(record)
    if not r.is_fake:
        return _pick(rng, _AUTHENTIC_EXPLANATIONS)
    clues = clues_for(r)
    intro = _pick(rng, ("Evidence:", "Forensic cues:", "Why:", "The traces:"))
    sentences = [_pick(rng, _CLUE_SENTENCES[c]) for c in clues]
    named = ", ".join(clues)
    return f"{intro} {' '.join(sentences)} Cues: {named}."


def describe(
    record: ForgeryRecord | dict[str, Any], mask: np.ndarray, granularity: str, rng: np.random.Generator
) -> str:
    """Text at a granularity: ``verdict``, ``location``, ``explanation`` or ``full``.

    Example:
        >>> describe(ForgeryRecord(op="authentic"), np.zeros((8, 8)), "verdict", np.random.default_rng(0))[:4]
        'This'
    """
    if granularity == "verdict":
        return verdict(record, rng)
    if granularity == "location":
        return localized_description(record, mask, rng)
    if granularity == "explanation":
        return explanation(record, mask, rng)
    if granularity == "full":
        r = _record(record)
        parts = [verdict(r, rng)]
        if r.is_fake:
            parts.append(localized_description(r, mask, rng))
        parts.append(explanation(r, mask, rng))
        return " ".join(parts)
    raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")


def _look(image: np.ndarray) -> tuple[bool, str, str | None]:
    """(grayscale?, brightness word, dominant color word or None)."""
    img = np.asarray(image).astype(np.float32)
    gray = float(np.abs(img - img.mean(axis=2, keepdims=True)).mean()) < 3.0
    luma = float((img @ np.array([0.299, 0.587, 0.114], np.float32)).mean())
    bright = "dark" if luma < 85 else "bright" if luma > 170 else "evenly lit"
    if gray:
        return True, bright, None
    mean = img.reshape(-1, 3).mean(axis=0)
    if float(mean.max() - mean.min()) < 12:
        return False, bright, None
    names = {0: "red", 1: "green", 2: "blue"}
    hi = int(np.argmax(mean))
    second = int(np.argsort(mean)[1])
    if hi == 0 and mean[1] > 0.75 * mean[0] and second == 1:
        return False, bright, "orange-yellow"
    if hi == 2 and mean[0] > 0.8 * mean[2] and second == 0:
        return False, bright, "purple"
    return False, bright, names[hi]


def caption(record: ForgeryRecord | dict[str, Any], image: np.ndarray, rng: np.random.Generator) -> str:
    """Caption of the image content (from the source photo) and global look, for stage 1.

    Example:
        >>> img = np.zeros((8, 8, 3), np.uint8)
        >>> caption(ForgeryRecord(op="authentic", source="chelsea"), img, np.random.default_rng(0))
        'A grayscale photo showing a tabby cat; the scene is dark.'
    """
    r = _record(record)
    gray, bright, dom = _look(image)
    content = content_phrase(r.source)
    kind = "grayscale" if gray else "color"
    noun = "image" if r.source.startswith("texture:") else "photo"
    templates = [
        "A {bright} {kind} {noun} of {content}.",
        "{Content_cap}, in a {bright} {kind} {noun}.",
        "A {kind} {noun} showing {content}; the scene is {bright}.",
    ]
    text = _pick(rng, templates).format(
        bright=bright, kind=kind, noun=noun, content=content, Content_cap=content[0].upper() + content[1:]
    )
    if dom:
        text += _pick(rng, (f" The dominant color is {dom}.", f" Mostly {dom} tones."))
    return text


_FAKE_WORDS = re.compile(r"\b(fake|manipulat\w*|forged|forgery|tamper\w*|edited|spliced|doctored|altered)\b")
_REAL_WORDS = re.compile(r"\b(real|authentic|genuine|unedited|unaltered|pristine|original)\b")
_NEGATED_FAKE = re.compile(
    r"\b(not|no|never|isn't|wasn't|without)\s+(\w+\s+){0,3}?(signs?\s+of\s+)?"
    r"(fake|manipulat\w*|forg\w*|tamper\w*|edit\w*|alter\w*)"
)
_CELL_SYNONYMS = {
    "top-left": ("top-left", "top left", "upper-left", "upper left"),
    "top-center": ("top-center", "top center", "top-centre", "upper-center", "upper center", "top-middle"),
    "top-right": ("top-right", "top right", "upper-right", "upper right"),
    "middle-left": ("middle-left", "middle left", "center-left", "centre-left", "center left"),
    "middle-right": ("middle-right", "middle right", "center-right", "centre-right", "center right"),
    "bottom-left": ("bottom-left", "bottom left", "lower-left", "lower left"),
    "bottom-center": ("bottom-center", "bottom center", "bottom-centre", "lower-center", "lower center",
                      "bottom-middle"),
    "bottom-right": ("bottom-right", "bottom right", "lower-right", "lower right"),
    "center": ("center", "centre"),
}
_SYN_TO_CELL = {syn: cell for cell, syns in _CELL_SYNONYMS.items() for syn in syns}
_CELL_RE = re.compile(
    r"(?<![\w-])(" + "|".join(re.escape(s) for s in sorted(_SYN_TO_CELL, key=len, reverse=True)) + r")(?![\w-])"
)


def parse_verdict(text: Any) -> str | None:
    """``"fake"``, ``"real"`` or None read from a text; never raises.

    Example:
        >>> parse_verdict("fake. The top-left region ..."), parse_verdict("No signs of manipulation."), parse_verdict("?")
        ('fake', 'real', None)
    """
    if not isinstance(text, str):
        return None
    t = text.strip().lower()
    head = re.match(r"[\s\"'*]*(fake|real)\b", t)
    if head:
        return head.group(1)
    if _NEGATED_FAKE.search(t):
        return "real"
    fake, real = bool(_FAKE_WORDS.search(t)), bool(_REAL_WORDS.search(t))
    if fake == real:
        return None
    return "fake" if fake else "real"


def phrasebook() -> list[str]:
    """Every fixed phrase the describer writes (verdicts, op, shape and clue sentences, locations).

    Used to seed the n-gram drafts of speculative decoding: a model trained on these texts
    reuses their wording.

    Example:
        >>> "was pasted from a different image" in phrasebook()
        True
    """
    phrases = [*_FAKE_VERDICTS, *_REAL_VERDICTS, *_AUTHENTIC_EXPLANATIONS, *_RETOUCH_PHRASES.values()]
    for table in (_OP_PHRASES, _SHAPE_PHRASES, _CLUE_SENTENCES):
        phrases += [p for options in table.values() for p in options]
    phrases += [f"in the {cell} of the image" for cell in GRID_CELLS]
    phrases += [f"{head} {v}" for head, vs in (("fake.", _FAKE_VERDICTS), ("real.", _REAL_VERDICTS)) for v in vs]
    return phrases


def parse_location(text: Any) -> list[str]:
    """Grid cells (:data:`GRID_CELLS`) named in a text, in order of first mention; never raises.

    Example:
        >>> parse_location("in the top-left and center of the image, upper right too")
        ['top-left', 'center', 'top-right']
    """
    if not isinstance(text, str):
        return []
    out: list[str] = []
    for m in _CELL_RE.finditer(text.lower()):
        cell = _SYN_TO_CELL[m.group(1)]
        if cell not in out:
            out.append(cell)
    return out


__all__ = [
    "CLUES", "GRID_CELLS", "GRANULARITIES", "clues_for", "clue_vector", "mask_cells", "location_phrase",
    "size_phrase", "shape_phrase", "verdict", "localized_description", "explanation", "describe", "caption", "phrasebook",
    "parse_verdict", "parse_location",
]
