"""`ganforge ui`: the runs listing and actions, the gradio_client API, and the page driven in a real browser
(Playwright with the system's Chromium: never a browser download)."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ganforge
from ganforge.errors import GanforgeError

gradio = pytest.importorskip("gradio", reason="the 'ui' extra (gradio) is not installed")

from ganforge.ui import actions, runs  # noqa: E402
from ganforge.ui.training import TrainRequest  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # gradio's own pandas deprecations

CHROMIUM = next((path for path in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if path and Path(path).exists()), None)
UPLOAD_MB = 0.05  # small, so that an oversized upload is quick to make
TINY = {"data.resolution": 16, "model.width": 8, "model.latent_dim": 16, "train.batch_size": 4, "train.steps": 2,
        "train.log_every": 1, "train.sample_every": 1, "train.checkpoint_every": 2}


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory) -> Path:
    """Five tiny runs: a conditional one on digits, StyleGAN and VAE-GAN on digits, pix2pix on made pairs and a x2
    SRResNet."""
    root = tmp_path_factory.mktemp("runs")
    pairs = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(0)
    for i in range(4):
        clean = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((16, 16))
        for side, picture in (("A", clean.convert("L").convert("RGB")), ("B", clean)):
            (pairs / side).mkdir(exist_ok=True)
            picture.save(pairs / side / f"{i}.png")
    common = {**TINY, "out": str(root)}
    ganforge.train(quiet=True, **common, **{"model.name": "cgan", "data.source": "digits", "name": "cgan-digits"})
    ganforge.train(quiet=True, **common, **{"model.name": "stylegan", "data.source": "digits", "name": "style",
                                            "model.options": {"n_mapping": 2}})
    ganforge.train(quiet=True, **common, **{"model.name": "vaegan", "data.source": "digits", "name": "vae"})
    ganforge.train(quiet=True, **{**common, "model.width": 4}, **{
        "model.name": "pix2pix", "data.source": str(pairs), "name": "p2p",
        "model.options": {"d_layers": 1, "unet_depth": 2}})
    ganforge.train(quiet=True, **common, **{"model.name": "srresnet", "data.source": str(pairs / "B"), "name": "sr",
                                            "model.options": {"blocks": 1, "scale": 2}})
    (root / "not-a-run").mkdir()
    return root


@pytest.fixture(scope="session")
def server(runs_root):
    """The app on a free port of localhost, in this process."""
    from ganforge.ui.app import Settings, launch

    app, url, training, outputs = launch(Settings(runs_root, upload_mb=UPLOAD_MB), port=None, block=False,
                                         quiet=True)
    yield url.rstrip("/")
    training.close()
    app.close()
    outputs.close()


@pytest.fixture(scope="session")
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does it)")
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, server):
    opened = browser.new_page()
    opened.set_default_timeout(60_000)
    opened.goto(server)
    opened.wait_for_selector("#runs-table")
    yield opened
    opened.close()


@pytest.fixture
def small_png(tmp_path) -> Path:
    path = tmp_path / "odd.png"
    Image.new("RGB", (23, 17), (200, 40, 90)).save(path)
    return path


def _pick(page, tab: str, run: str, ready: str) -> None:
    page.get_by_role("tab", name=tab).click()
    field = page.locator("#play-run input")
    field.fill(run)
    field.press("Enter")
    page.wait_for_selector(ready, state="visible")


def _size(page, selector: str) -> tuple[int, int]:
    image = page.wait_for_selector(f"{selector} img")
    page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=image)
    return tuple(image.evaluate("i => [i.naturalWidth, i.naturalHeight]"))


def _message(page, text: str) -> None:
    page.locator(".toast-body", has_text=text).first.wait_for()


def _slider(page, selector: str, value: int) -> None:
    field = page.locator(f"{selector} input[type=number]")
    field.fill(str(value))
    field.press("Enter")


def _offered(page, selector: str, name: str) -> None:
    """Wait for the download link of file `name` in a file output."""
    page.locator(f"{selector} a[download='{name}']").wait_for()


def _served(page, selector: str) -> Image.Image:
    """The picture a page's image shows, fetched from the server as it is served."""
    import io

    _size(page, selector)
    return Image.open(io.BytesIO(page.request.get(page.locator(f"{selector} img").get_attribute("src")).body()))


# --- listing and actions, without a browser -------------------------------------------------------------------

def test_listing_has_the_runs_only_and_refuses_other_names(runs_root, tmp_path):
    (runs_root / "outside").symlink_to(tmp_path, target_is_directory=True)
    shutil.copytree(runs_root / "sr", tmp_path / "copied")  # a run reached only through a link out of the root
    try:
        assert set(runs.list_runs(runs_root)) == {"cgan-digits", "style", "vae", "p2p", "sr"}
    finally:
        (runs_root / "outside").unlink()
    for name in ("../../etc", str(runs_root / "sr"), "sr/..", "not-a-run", ""):
        with pytest.raises(GanforgeError, match="unknown run|pick a run"):
            runs.find_run(runs_root, name)
    row = runs.table_row(runs.find_run(runs_root, "cgan-digits"))
    assert row[:5] == ["cgan-digits", "cgan", "digits", 2, 2]
    assert set(runs.curves(runs.find_run(runs_root, "cgan-digits"), "metrics")) >= {"d_loss", "g_loss"}
    assert [step for step, _ in runs.sample_grids(runs.find_run(runs_root, "cgan-digits"))] == [1, 2]


def test_offers_follow_the_declared_capabilities(runs_root):
    models = actions.Models()
    conditional = actions.offer(models, runs_root, "cgan-digits")
    assert conditional.from_noise and conditional.classes == tuple("0123456789") and not conditional.translate
    assert actions.offer(models, runs_root, "p2p").translate == ("AtoB",)
    assert actions.offer(models, runs_root, "sr").upscale == 2 and not actions.offer(models, runs_root, "sr").from_noise
    assert conditional.interpolate and not (conditional.style_mixing or conditional.encode)
    style, vae = actions.offer(models, runs_root, "style"), actions.offer(models, runs_root, "vae")
    assert style.style_mixing and style.truncation and not style.encode
    assert vae.encode and vae.interpolate and not vae.style_mixing
    assert not actions.offer(models, runs_root, "p2p").interpolate
    with pytest.raises(GanforgeError, match="cannot mix styles"):
        actions.style_mix(models, runs_root, "cgan-digits")
    with pytest.raises(GanforgeError, match="layers must be one of"):
        actions.style_mix(models, runs_root, "style", layers="../x")
    with pytest.raises(GanforgeError, match="cannot encode"):
        actions.reconstruct(models, runs_root, "style", None)
    with pytest.raises(GanforgeError, match="cannot walk"):
        actions.interpolate(models, runs_root, "sr")
    with pytest.raises(GanforgeError, match=r"points must be a whole number in \[2, 8\]"):
        actions.interpolate(models, runs_root, "cgan-digits", 2, 1)
    with pytest.raises(GanforgeError, match="does not sample"):
        actions.sample(models, runs_root, "p2p")
    with pytest.raises(GanforgeError, match="unknown class"):
        actions.sample(models, runs_root, "cgan-digits", 2, 0, "ten")
    with pytest.raises(GanforgeError, match=r"n must be a whole number in \[1, 64\]"):
        actions.sample(models, runs_root, "cgan-digits", 0)


def test_uploads_are_checked_for_size_and_type(tmp_path, small_png):
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(GanforgeError, match="not an image"):
        actions.read_upload(text, "RGB")
    with pytest.raises(GanforgeError, match="too large"):
        actions.read_upload(small_png, "RGB", limit_mb=1e-6)
    assert actions.read_upload(small_png, "L").size == (23, 17)


def test_train_request_refuses_paths_and_odd_names(tmp_path):
    (tmp_path / "faces").mkdir()
    args = TrainRequest("dcgan", "faces", 10, "ok").command(tmp_path, tmp_path)
    assert args[args.index("--data") + 1] == str(tmp_path / "faces")
    with pytest.raises(GanforgeError, match="unknown data"):
        TrainRequest("dcgan", "/etc", 10, "ok").command(tmp_path, tmp_path)
    with pytest.raises(GanforgeError, match="run name"):
        TrainRequest("dcgan", "digits", 10, "../escape").command(tmp_path, None)


def test_help_does_not_import_gradio_and_other_hosts_warn(cli_env, monkeypatch, tmp_path):
    probe = ("import sys, typer\nfrom typer.testing import CliRunner\nfrom ganforge.cli import app\n"
             "from ganforge.commands import ui\nui.register(app)\n"
             "for args in (['--help'], ['ui', '--help']):\n    assert CliRunner().invoke(app, args).exit_code == 0\n"
             "print('gradio' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=cli_env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"

    import typer
    from typer.testing import CliRunner

    import ganforge.ui.app
    from ganforge.commands import ui

    served = []
    monkeypatch.setattr(ganforge.ui.app, "launch", lambda settings, host, port, auth: served.append((host, auth)))
    app = typer.Typer()
    ui.register(app)
    app.command("other")(lambda: None)  # two commands: typer then expects the command's name
    result = CliRunner().invoke(app, ["ui", "--runs", str(tmp_path), "--host", "0.0.0.0"])
    assert result.exit_code == 0 and "without --auth" in result.output
    result = CliRunner().invoke(app, ["ui", "--runs", str(tmp_path), "--host", "0.0.0.0", "--auth", "a:b"])
    assert result.exit_code == 0 and "without --auth" not in result.output
    assert served == [("0.0.0.0", None), ("0.0.0.0", ("a", "b"))]


# --- the API from a script ------------------------------------------------------------------------------------

def test_gradio_client_calls_the_named_endpoints(server, small_png):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    with Image.open(client.predict("cgan-digits", 4, 0, api_name="/sample")) as grid:
        assert grid.size == (2 * (16 + 2) + 2,) * 2  # a 2x2 grid of 16 px samples with 2 px gaps
    assert {"sr", "p2p", "cgan-digits"} <= {row[0] for row in client.predict(api_name="/runs")["data"]}
    with Image.open(client.predict("p2p", handle_file(small_png), "AtoB", api_name="/translate")) as out:
        assert out.size == (23, 17)
    upscaled, bicubic = client.predict("sr", handle_file(small_png), api_name="/upscale")
    assert Image.open(upscaled).size == Image.open(bicubic).size == (46, 34)
    with Image.open(client.predict("cgan-digits", 2, 2, 2, 0, api_name="/interpolate")) as walk:
        assert (walk.n_frames, walk.size) == (4, (2 * 18 + 2, 20))  # 2 legs of 2 frames; 2 clips side by side
    with Image.open(client.predict("style", 2, 3, "fine", 0, api_name="/style_mix")) as grid:
        assert grid.size == (4 * 18 + 2, 3 * 18 + 2)  # (cols + 1) x (rows + 1) cells
    with Image.open(client.predict("vae", handle_file(small_png), api_name="/reconstruct")) as pair:
        assert pair.size == (2 * 18 + 2, 20)
    with pytest.raises(Exception, match="unknown run"):
        client.predict("../../etc", 4, 0, api_name="/sample")


# --- the page in a browser ------------------------------------------------------------------------------------

def test_runs_tab_lists_the_run_and_shows_it(page):
    table = page.locator("#runs-table")
    cell = table.get_by_text("cgan-digits").filter(visible=True).first
    cell.wait_for()
    assert "pix2pix" in table.inner_text()
    cell.click()
    page.locator("#runs-info", has_text="10 classes").wait_for()
    assert _size(page, "#runs-grid")[0] > 16  # the latest sample grid


def test_sample_shows_an_image_of_the_right_size_and_the_class_picker_changes_it(page):
    _pick(page, "Play", "cgan-digits", "#play-sample")
    assert page.locator("#play-class").is_visible() and not page.locator("#play-truncation").is_visible()
    n = page.locator("#play-n input[type=number]")
    n.fill("1")
    n.press("Enter")
    pictures = []
    for klass in ("0", "7"):
        page.locator("#play-class input").fill(klass)
        page.locator("#play-class input").press("Enter")
        page.click("#play-sample")
        page.locator("#play-picture img").wait_for()
        page.wait_for_function(f"() => document.querySelector('#play-picture img').src != {pictures[-1][0]!r}"
                               if pictures else "() => true")
        source = page.locator("#play-picture img").get_attribute("src")
        assert _size(page, "#play-picture") == (16, 16)
        pictures.append((source, page.request.get(source).body()))
    assert pictures[0][1] != pictures[1][1]  # same seed, other class: another picture


def test_translate_and_upscale_an_upload(page, small_png):
    _pick(page, "Play", "p2p", "#translate-go")
    assert not page.locator("#play-sample").is_visible()
    page.set_input_files("#translate-upload input[type=file]", small_png)
    page.locator("#translate-upload", has_text="odd").wait_for()
    page.click("#translate-go")
    assert _size(page, "#translate-out") == (23, 17)
    _offered(page, "#translate-file", "0.png")  # what is shown is offered for download
    _pick(page, "Play", "sr", "#upscale-go")
    page.set_input_files("#upscale-upload input[type=file]", small_png)
    page.locator("#upscale-upload", has_text="odd").wait_for()
    page.click("#upscale-go")
    assert _size(page, "#upscale-out") == _size(page, "#upscale-bicubic") == (46, 34)
    _offered(page, "#upscale-files", "1.png")  # both pictures: 0.png upscaled, 1.png bicubic


def test_interpolation_shows_an_animated_gif_and_offers_it_for_download(page):
    _pick(page, "Play", "cgan-digits", "#walk-go")
    for selector, value in (("#walk-n", 2), ("#walk-points", 2), ("#walk-frames", 3)):
        _slider(page, selector, value)
    page.click("#walk-go")
    walk = _served(page, "#walk-out")
    assert walk.format == "GIF" and walk.n_frames == 2 * 3 and walk.size == (2 * 18 + 2, 20)
    _offered(page, "#walk-file", "walk.gif")


def test_style_mixing_is_offered_for_stylegan_only_and_gives_the_grid(page):
    _pick(page, "Play", "cgan-digits", "#walk-go")
    assert not page.locator("#mix-go").is_visible() and not page.locator("#recon-go").is_visible()
    _pick(page, "Play", "style", "#mix-go")
    assert not page.locator("#recon-go").is_visible() and page.locator("#play-truncation").is_visible()
    _slider(page, "#mix-rows", 2)
    page.locator("#mix-layers").get_by_label("middle").check()
    page.click("#mix-go")
    assert _size(page, "#mix-out") == (4 * 18 + 2, 3 * 18 + 2)  # 3 sources + a corner across, 2 destinations + 1 down
    _offered(page, "#mix-file", "style_mix.png")


def test_reconstruct_is_offered_for_vaegan_only_and_shows_input_and_reconstruction(page, small_png):
    _pick(page, "Play", "style", "#mix-go")
    assert not page.locator("#recon-go").is_visible()
    _pick(page, "Play", "vae", "#recon-go")
    assert not page.locator("#mix-go").is_visible() and page.locator("#walk-go").is_visible()
    page.set_input_files("#recon-upload input[type=file]", small_png)
    page.locator("#recon-upload", has_text="odd").wait_for()
    page.click("#recon-go")
    assert _size(page, "#recon-out") == (2 * 18 + 2, 20)  # the upload at 16 px and its reconstruction
    _offered(page, "#recon-file", "reconstruction.png")


def test_oversized_upload_and_path_traversal_are_refused_with_a_message(page, tmp_path):
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)).save(big)
    assert big.stat().st_size > UPLOAD_MB * 1e6
    _pick(page, "Play", "sr", "#upscale-go")
    page.set_input_files("#upscale-upload input[type=file]", big)
    _message(page, "maximum allowed size")
    page.click("#upscale-go")
    _message(page, "upload an image first")
    field = page.locator("#play-run input")
    field.fill("../../etc")
    field.press("Enter")
    _message(page, "unknown run '../../etc'")
    page.reload()
    page.wait_for_selector("#runs-table")  # the server is still serving


def test_start_and_stop_a_training_from_the_page_leaves_a_resumable_run(page, runs_root):
    page.get_by_role("tab", name="Train").click()
    for field, value in (("#train-name textarea", "web"), ("#train-steps input", "100000"),
                         ("#train-resolution input", "16"), ("#train-batch input", "4"), ("#train-width input", "8")):
        page.fill(field, value)
    page.click("#train-start")
    page.locator("#train-status textarea").wait_for()
    checkpoint = runs_root / "web" / "checkpoints" / "last.safetensors"
    deadline = time.monotonic() + 180
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert checkpoint.exists(), page.locator("#train-status textarea").input_value()
    assert "training" in page.locator("#train-status textarea").input_value()
    page.click("#train-start")
    _message(page, "still training")  # one at a time
    page.click("#train-stop")
    page.wait_for_function("() => document.querySelector('#train-status textarea').value.includes('resumable')",
                           timeout=120_000)
    step = ganforge.load(runs_root / "web").step
    resumed = ganforge.train(resume=runs_root / "web", quiet=True, **{"train.steps": step + 1})
    assert ganforge.load(resumed).step == step + 1


def test_play_outputs_follow_the_sample_modality(tmp_path):
    """What the Play tab shows for each modality: a grid for images, a GIF for video, spectrograms and a WAV player
    for audio, text lines for tokens; always an .npz download."""
    import torch

    from ganforge import media

    waves = torch.sin(torch.linspace(0, 200, 800)).expand(2, 1, 800).clone() * 0.5
    cases = {
        "image": (media.Images(torch.zeros(2, 1, 8, 8)), {"picture": ".png"}),
        "video": (media.Video(torch.zeros(2, 3, 1, 8, 8), fps=4), {"picture": ".gif"}),
        "audio": (media.Audio(waves, sample_rate=8000), {"picture": ".png", "audio": ".wav"}),
        "tokens": (media.Tokens(torch.tensor([[0, 1], [1, 0]]), vocabulary=["a", "b"]), {"text": None}),
    }
    for modality, (samples, expected) in cases.items():
        shown = actions.show(samples, tmp_path / modality)
        for key, suffix in expected.items():
            if suffix is None:
                assert shown[key].splitlines() == ["a b", "b a"], modality
            else:
                assert Path(shown[key]).suffix == suffix and Path(shown[key]).stat().st_size > 0, (modality, key)
        assert {k for k, v in shown.items() if v is not None} == set(expected) | {"download"}, modality
        assert Path(shown["download"]).exists()
