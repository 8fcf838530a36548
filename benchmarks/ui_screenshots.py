"""Screenshots of each tab of `ganforge ui` for the README: trains small runs (or uses --runs), serves the app on a
free local port and drives the system's Chromium with Playwright.

    python benchmarks/ui_screenshots.py --out docs/figures   # ui_runs.png, ui_play.png, ui_upscale.png, ui_train.png
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from PIL import Image

import ganforge
from ganforge.ui.app import Settings, launch


def make_runs(root: Path, steps: int) -> None:
    """A conditional digits run with a short evaluation curve, and a x2 super-resolution run on digits grids."""
    common = {"data.resolution": 16, "model.width": 16, "model.latent_dim": 32, "train.batch_size": 64,
              "train.log_every": 10, "train.sample_every": max(1, steps // 6), "train.checkpoint_every": steps,
              "out": str(root)}
    ganforge.train(quiet=True, **common, **{"model.name": "cgan", "data.source": "digits", "name": "cgan-digits",
                                            "train.steps": steps, "train.eval_every": max(1, steps // 3),
                                            "train.eval_n": 256})
    pictures = root.parent / "pictures"
    pictures.mkdir(exist_ok=True)
    for i in range(4):
        Image.effect_mandelbrot((64, 64), (-2 + i / 4, -1.2, 0.8, 1.2), 40).convert("RGB").save(pictures / f"{i}.png")
    ganforge.train(quiet=True, **{**common, "train.batch_size": 4}, **{
        "model.name": "srresnet", "data.source": str(pictures), "name": "srresnet-x2", "train.steps": 150,
        "model.options": {"blocks": 2, "scale": 2, "perceptual": "none"}})


def shoot(url: str, out: Path, chromium: str, upload: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(url)
        page.wait_for_selector("#runs-table")
        page.get_by_text("cgan-digits").filter(visible=True).first.click()
        page.locator("#runs-info", has_text="classes").wait_for()
        page.wait_for_selector("#runs-grid img")
        page.wait_for_timeout(1500)  # the plots draw
        page.screenshot(path=out / "ui_runs.png", full_page=True)

        page.get_by_role("tab", name="Play").click()
        page.locator("#play-class input").fill("3")
        page.locator("#play-class input").press("Enter")
        page.click("#play-sample")
        page.wait_for_selector("#play-picture img")
        page.wait_for_timeout(500)
        page.screenshot(path=out / "ui_play.png", full_page=True)

        field = page.locator("#play-run input")
        field.fill("srresnet-x2")
        field.press("Enter")
        page.wait_for_selector("#upscale-go", state="visible")
        page.set_input_files("#upscale-upload input[type=file]", upload)
        page.locator("#upscale-upload", has_text=upload.stem).wait_for()
        page.click("#upscale-go")
        page.wait_for_selector("#upscale-bicubic img")
        page.wait_for_timeout(500)
        page.screenshot(path=out / "ui_upscale.png", full_page=True)

        page.get_by_role("tab", name="Train").click()
        page.fill("#train-name textarea", "my-digits")
        page.wait_for_timeout(300)
        page.screenshot(path=out / "ui_train.png", full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/figures"))
    parser.add_argument("--steps", type=int, default=300, help="training steps of the digits run")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "runs"
        make_runs(root, args.steps)
        upload = Path(scratch) / "pictures" / "0.png"
        with Image.open(upload) as picture:
            picture.resize((32, 32), Image.Resampling.BICUBIC).save(Path(scratch) / "small.png")
        app, url, training, outputs = launch(Settings(root), port=None, block=False, quiet=True)
        try:
            shoot(url, args.out, args.chromium, Path(scratch) / "small.png")
        finally:
            app.close()
            outputs.close()
    print(f"wrote {', '.join(f'ui_{tab}.png' for tab in ('runs', 'play', 'upscale', 'train'))} to {args.out}")


if __name__ == "__main__":
    main()
