"""``amodal3d app``: the page's prompt and settings handling, and the whole page driven in a real browser (Debian's
chromium through chromium-driver and selenium): open the example, click the cup, a box and the card, run, turn the
mesh in the 3D viewer, download the GLB."""

import contextlib
import io
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from amodal3d.core.errors import UserError

CUP, BOX, CARD = (235, 150), ((75, 15), (482, 392)), (370, 150)


def test_clicks_become_prompts():
    from amodal3d.app import prompts_of

    clicks = [{"x": 10, "y": 20, "kind": "object point"}, {"x": 5, "y": 6, "kind": "not the object"},
              {"x": 90, "y": 80, "kind": "box corner"}, {"x": 30, "y": 40, "kind": "box corner"},
              {"x": 70, "y": 50, "kind": "occluder point"}]
    prompt, occluder = prompts_of(clicks)
    assert prompt.points == [(10, 20), (5, 6)] and prompt.labels == [1, 0]
    assert prompt.box == (30, 40, 90, 80)  # corners in any order
    assert occluder.points == [(70, 50)] and occluder.labels == [1]
    lone_corner = prompts_of([*clicks, {"x": 1, "y": 1, "kind": "box corner"}])[0]
    assert lone_corner.box == (30, 40, 90, 80)  # a third corner waits for its partner
    assert prompts_of(clicks[:1])[1] is None
    card = [{"x": 60, "y": 45, "kind": "occluder box corner"}, {"x": 80, "y": 70, "kind": "occluder box corner"}]
    prompt, occluder = prompts_of([*clicks, *card])
    assert occluder.box == (60, 45, 80, 70) and occluder.points == [(70, 50)]
    assert prompt.box == (30, 40, 90, 80)  # the object's box stays its own
    boxed_only = prompts_of([clicks[0], *card])[1]
    assert boxed_only.box == (60, 45, 80, 70) and boxed_only.points == []


def test_page_settings_parse_as_run_flags():
    from amodal3d.app import parse_settings
    from amodal3d.run import RunSettings

    settings = parse_settings(RunSettings(), ["--completion", "classical", "--samples", "3", "--prior.faces", "2000"])
    assert settings.completion_config.samples == 3
    assert settings.recon_config.backend("prior").faces == 2000
    with pytest.raises(UserError, match="options: .*nonsense"):
        parse_settings(RunSettings(), ["--nonsense", "1"])
    # files, programs and devices are the machine's business, never the page's
    for flags in (["--syncdreamer.python", "/bin/sh"], ["--sam-checkpoint", "/etc/passwd"],
                  ["--pix2gestalt.weights", "../secret"], ["--syncdreamer.code", "/tmp"]):
        with pytest.raises(UserError, match="cannot be set from the page"):
            parse_settings(RunSettings(), flags)


def test_the_app_serves_only_a_folder_of_its_own(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    done = subprocess.run([sys.executable, "-m", "amodal3d", "app", "--out", str(tmp_path)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_run_without_a_click_is_one_message(tmp_path):
    from amodal3d.app import start_run
    from amodal3d.run import RunSettings

    with pytest.raises(UserError, match="click the object"):
        start_run(np.ones((40, 40, 3)), [{"x": 3, "y": 3, "kind": "occluder point"}], RunSettings(), tmp_path)
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_open_a_folder_that_is_not_a_run_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "amodal3d", "app", "--run", str(tmp_path)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a finished run folder" in lines[0], done.stderr


# ------------------------------------------------------------------------------------------------- a real browser

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser():
    pytest.importorskip("gradio", reason="the app extra is not installed (pip install 'amodal3d[app]')")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("Chromium and its driver are not installed (apt-get install chromium chromium-driver)")
    options = Options()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1700", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"):
        options.add_argument(flag)
    session = webdriver.Chrome(service=Service(driver), options=options)
    yield session
    session.quit()


@contextlib.contextmanager
def serving(args: list[str], log_path: Path):
    """``amodal3d app ARGS`` on a free port until the block ends; its URL."""
    port = _free_port()
    with open(log_path, "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "amodal3d", "app", "--port", str(port), *args],
                                  stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 120
            while True:
                try:
                    urllib.request.urlopen(url, timeout=2)
                    break
                except OSError:
                    if server.poll() is not None or time.time() > deadline:
                        pytest.fail(f"the app did not start: {log_path.read_text()[-2000:]}")
                    time.sleep(0.5)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)


def viewer_pixels(browser) -> np.ndarray:
    from PIL import Image
    from selenium.webdriver.common.by import By

    canvas = browser.find_element(By.CSS_SELECTOR, "#viewer canvas")
    return np.asarray(Image.open(io.BytesIO(canvas.screenshot_as_png)).convert("RGB")).astype(float)


def is_drawn(pixels: np.ndarray) -> bool:
    return pixels.std() > 10 and (pixels.min(axis=2) < 200).mean() > 0.01


@pytest.mark.slow
def test_the_page_in_a_real_browser(browser, tmp_path):
    out = tmp_path / "runs"
    with serving(["--out", str(out)], tmp_path / "app.log") as url:
        run_folder = drive_the_page(browser, url, out, tmp_path)
    # `amodal3d app --run DIR` opens the finished run in the same viewer
    with serving(["--run", str(run_folder), "--out", str(tmp_path / "unused")], tmp_path / "app_run.log") as url:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        browser.get(url)
        WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#viewer canvas"))
        time.sleep(3)
        assert is_drawn(viewer_pixels(browser))
        assert run_folder.name in browser.find_element(By.ID, "result").text
        assert len(browser.find_elements(By.CSS_SELECTOR, "#downloads a")) >= 3


def drive_the_page(browser, url: str, out: Path, tmp_path: Path) -> Path:
    import trimesh
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(url)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".gallery-item"))[0].click()  # the bundled example
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#canvas img"))
    time.sleep(1)
    image = browser.find_element(By.CSS_SELECTOR, "#canvas img")
    natural = browser.execute_script("return arguments[0].naturalWidth", image)
    width, height = browser.execute_script("const r = arguments[0].getBoundingClientRect(); "
                                           "return [r.width, r.height]", image)
    status = browser.find_element(By.ID, "status")

    def click(kind, x, y, expected):
        before = status.text
        next(label for label in browser.find_elements(By.CSS_SELECTOR, "#kind label") if label.text == kind).click()
        scale = width / natural
        ActionChains(browser).move_to_element_with_offset(
            browser.find_element(By.CSS_SELECTOR, "#canvas img"), x * scale - width / 2,
            y * scale - height / 2).click().perform()
        toasts = set()

        def settled(d):
            toasts.update(t.text for t in d.find_elements(By.CSS_SELECTOR, ".toast-body"))
            return (status.text != before and not any(busy in status.text for busy in ("processing", "queue", "|"))
                    and all(text in status.text for text in expected))

        try:
            wait.until(settled)
        except TimeoutException:
            pytest.fail(f"after a {kind} click the status reads {status.text!r}; messages: {sorted(toasts)}")
        return status.text

    browser.find_element(By.ID, "run").click()  # no click yet: a message in the page, no stack trace, no folder
    # the toast's element can appear a moment before its text: wait for the text
    toast = wait.until(lambda d: [t for t in d.find_elements(By.CSS_SELECTOR, ".toast-body") if t.text])[0]
    assert "click the object" in toast.text and "Traceback" not in browser.page_source
    browser.find_element(By.CSS_SELECTOR, ".toast-close").click()  # as a user would, before clicking on
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, ".toast-body"))
    assert not list(out.glob("app_*"))  # (the folder holds only the app's marker)
    one_click = click("object point", *CUP, ["visible mask"])
    click("box corner", *BOX[0], ["opposite corner"])
    boxed = click("box corner", *BOX[1], ["visible mask"])
    assert "opposite" not in boxed and boxed != one_click
    click("occluder point", *CARD, ["visible mask", "occluder"])

    start = time.perf_counter()
    browser.find_element(By.ID, "run").click()
    WebDriverWait(browser, 600).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#downloads a")
                                      and d.find_elements(By.CSS_SELECTOR, "#viewer canvas"))
    seconds = time.perf_counter() - start
    time.sleep(3)  # the viewer loads the GLB and draws
    drawn = viewer_pixels(browser)
    viewer = browser.find_element(By.CSS_SELECTOR, "#viewer canvas")
    ActionChains(browser).move_to_element(viewer).click_and_hold().move_by_offset(80, 0).release().perform()
    time.sleep(1)
    turned = viewer_pixels(browser)
    browser.save_screenshot(str(tmp_path / "page.png"))
    assert is_drawn(drawn), "the 3D viewer is blank"
    assert np.abs(turned - drawn).mean() > 1, "dragging did not turn the mesh"

    links = {Path(a.get_attribute("href").split("?")[0]).name: a.get_attribute("href")
             for a in browser.find_elements(By.CSS_SELECTOR, "#downloads a")}
    assert {"mesh.glb", "mesh.obj", "mesh.ply"} <= set(links) and any(n.endswith(".zip") for n in links)
    glb = urllib.request.urlopen(links["mesh.glb"], timeout=30).read()
    mesh = trimesh.load(io.BytesIO(glb), file_type="glb", force="mesh")
    mesh.merge_vertices(merge_tex=True, merge_norm=True)  # vertices split along UV seams
    assert len(mesh.faces) > 100 and mesh.is_watertight
    run_folder = next(out.glob("app_*/"))
    info = json.loads((run_folder / "run.json").read_text())
    assert info["completion_method"] == "amodalnet" and info["faces"] == len(mesh.faces)
    assert run_folder.name in browser.find_element(By.ID, "result").text
    print(f"click to mesh: {seconds:.1f} s")
    return run_folder


@pytest.mark.slow
def test_a_second_tab_waits_its_turn(browser, tmp_path):
    """One worker (the default): tab B's run is queued while tab A's runs, and starts when it is done."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)

    def prepared_tab(url):
        browser.get(url)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".gallery-item"))[0].click()
        image = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#canvas img"))[0]
        time.sleep(1)
        width, height = browser.execute_script("const r = arguments[0].getBoundingClientRect(); "
                                               "return [r.width, r.height]", image)
        natural = browser.execute_script("return arguments[0].naturalWidth", image)
        ActionChains(browser).move_to_element_with_offset(image, CUP[0] * width / natural - width / 2,
                                                          CUP[1] * width / natural - height / 2).click().perform()
        wait.until(lambda d: "visible mask" in d.find_element(By.ID, "status").text)
        return browser.current_window_handle

    out = tmp_path / "runs"
    with serving(["--out", str(out)], tmp_path / "app.log") as url:
        first = prepared_tab(url)
        browser.switch_to.new_window("tab")
        second = prepared_tab(url)
        browser.switch_to.window(first)
        browser.find_element(By.ID, "run").click()
        time.sleep(0.5)
        browser.switch_to.window(second)
        browser.find_element(By.ID, "run").click()
        wait.until(lambda d: "queue: 1/1" in d.find_element(By.TAG_NAME, "body").text)  # Gradio's own status
        WebDriverWait(browser, 600).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#downloads a"))
        browser.switch_to.window(first)
        assert browser.find_elements(By.CSS_SELECTOR, "#downloads a")
    runs = sorted(p for p in out.glob("app_*") if p.is_dir())
    assert len(runs) == 2
    first_done = max(p.stat().st_mtime for p in runs[0].rglob("*"))
    second_started = min(p.stat().st_mtime for p in runs[1].rglob("*"))
    assert second_started >= first_done - 0.5  # one after the other, not side by side
