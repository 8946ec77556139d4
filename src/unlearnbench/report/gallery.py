"""Small copies of the figures for README (docs/gallery/), each with a footer naming the
data it was made from, so a gallery image is never mistaken for another run's."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

from .. import io, scores


def describe_metrics(metrics_csv) -> str:
    """'digits / smallcnn, digits / resnet18 · 18 methods · seeds 0-2' for a metrics.csv."""
    frame = scores.read_metrics(metrics_csv)
    settings = list(dict.fromkeys(zip(frame["dataset"], frame["model"])))
    n_methods = frame.loc[~frame["method"].isin(scores.REFERENCES), "method"].nunique()
    seeds = sorted(frame["seed"].unique())
    seed_text = f"seeds {seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else f"seed {seeds[0]}"
    shown = ", ".join(f"{d} / {m}" for d, m in settings[:4]) + (f" (+{len(settings) - 4} more)"
                                                                if len(settings) > 4 else "")
    return f"{shown} · {n_methods} methods · {seed_text}"


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def make_gallery(pngs, outs, width: int = 900, footer: str = "") -> None:
    """Downsize each PNG to at most `width` pixels wide and add a one-line footer."""
    if len(pngs) != len(outs):
        raise ValueError(f"{len(pngs)} figures for {len(outs)} gallery files")
    for src, dst in zip(pngs, outs):
        image = Image.open(src).convert("RGB")
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
        if footer:
            size = 13
            font = _font(size)
            while size > 8 and ImageDraw.Draw(image).textlength(footer, font=font) > image.width - 12:
                size -= 1
                font = _font(size)
            strip = 22
            canvas = Image.new("RGB", (image.width, image.height + strip), "white")
            canvas.paste(image, (0, 0))
            draw = ImageDraw.Draw(canvas)
            draw.text((6, image.height + 4), footer, fill=(90, 90, 90), font=font)
            image = canvas
        image = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        with io.atomic_path(dst) as tmp:
            image.save(tmp, format="PNG", optimize=True)
