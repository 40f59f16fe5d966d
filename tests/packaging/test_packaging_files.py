"""The packaging files are consistent with the code they package: the PyInstaller spec, the wheel's
package list, the Linux desktop entry, AppStream metainfo and MIME type, the icons, and the
self-check the bundle build relies on. (The bundle build itself is too slow for the suite:
packaging/build.py runs it.)"""

import ast
import configparser
import os
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
LINUX = PACKAGING / "linux"
SPEC = PACKAGING / "foi-studio.spec"
DESKTOP = LINUX / "foi-studio.desktop"
APP_ID = "io.github.foistudio.foistudio"
METAINFO = LINUX / f"{APP_ID}.metainfo.xml"
MIME = LINUX / "foi-studio-mime.xml"
PROJECT_TYPE = "application/x-foi-studio-project"
MIME_NS = "{http://www.freedesktop.org/standards/shared-mime-info}"
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as stream:
        return tomllib.load(stream)


def spec_constants() -> dict:
    """The spec's literal top-level lists (it only runs inside PyInstaller)."""
    constants = {}
    for node in ast.parse(SPEC.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return constants


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def under(name: str, prefixes) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


# -- PyInstaller spec ------------------------------------------------------------------------------

def test_spec_is_python_with_the_app_entry_point_and_data():
    source = SPEC.read_text(encoding="utf-8")
    compile(source, str(SPEC), "exec")
    launcher = PACKAGING / "launcher.py"
    assert f'"{launcher.name}"' in source and launcher.is_file()
    assert "from foi_desktop.app import main" in launcher.read_text(encoding="utf-8")
    # Resources land where foi_desktop.assets looks in an installed app; the version file too.
    assert '(str(ROOT / "resources"), "foi_desktop/resources")' in source
    assert '(str(ROOT / "pyproject.toml"), ".")' in source
    assert '(str(ROOT / "packaging" / "linux"), "linux")' in source
    assert "exclude_binaries=True" in source and "COLLECT(" in source  # one-folder, not one-file


def test_spec_collects_the_metadata_the_libraries_check_at_import():
    wanted = {"torch", "diffusers", "transformers", "huggingface_hub", "safetensors", "tokenizers", "numpy",
              "pillow", "requests", "filelock"}
    assert wanted <= set(spec_constants()["METADATA"])


def test_spec_excludes_nothing_the_app_imports():
    constants = spec_constants()
    excluded = [f"PySide6.{name}" for name in constants["QT_UNUSED"]] + constants["PYTHON_UNUSED"]
    assert "PySide6.QtWebEngineCore" in excluded and "scipy" in excluded
    bundled = [path for package in ("foi_desktop", "foi_engine") for path in (ROOT / package).rglob("*.py")
               if not under(module_name(path), constants["PYTHON_UNUSED"])]
    assert any(module_name(path) == "foi_desktop.app" for path in bundled)
    clashes = {f"{module_name(path)} imports {name}" for path in bundled for name in imported_modules(path)
               if under(name, excluded)}
    assert not clashes


def test_spec_bundles_the_server_client_the_editor_imports_late_and_no_server():
    constants = spec_constants()
    remote = ROOT / "foi_engine" / "remote.py"
    late = {name for name in imported_modules(remote) if name.split(".")[0] in ("httpx", "websockets", "certifi")}
    assert {"httpx", "certifi", "websockets.sync.client"} <= late
    assert all(under(name, constants["SERVER_CLIENT"]) for name in late)
    assert "foi_engine.remote" in constants["SERVER_CLIENT"]
    assert {"foi_engine.server", "fastapi", "uvicorn"} <= set(constants["PYTHON_UNUSED"])
    # pillow-heif is imported where photos are opened, at the top: the analysis finds it.
    assert "pillow_heif" in {node.names[0].name for node in ast.parse((ROOT / "foi_engine" / "photo.py").read_text(
        encoding="utf-8")).body if isinstance(node, ast.Import)}


def test_launcher_and_console_script_run_the_same_main():
    scripts = pyproject()["project"]["scripts"]
    assert scripts["foi-desktop"] == "foi_desktop.app:main"


# -- the wheel --------------------------------------------------------------------------------------

def test_wheel_lists_every_package_and_ships_the_resources():
    setuptools = pyproject()["tool"]["setuptools"]
    on_disk = {module_name(path) for package in ("foi_engine", "foi_desktop")
               for path in (ROOT / package).rglob("__init__.py")}
    assert set(setuptools["packages"]) == on_disk | {"foi_desktop.resources"}
    assert setuptools["package-dir"]["foi_desktop.resources"] == "resources"
    assert setuptools["package-data"]["foi_desktop.resources"] == ["**/*"]


# -- Linux desktop integration ----------------------------------------------------------------------

def desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read(DESKTOP, encoding="utf-8")
    return parser["Desktop Entry"]


def test_desktop_entry_keys():
    entry = desktop_entry()
    assert entry["Type"] == "Application" and entry["Name"] == "FoI Studio"
    assert entry["Exec"].split()[0] == "foi-desktop" == entry["TryExec"]
    assert entry["Exec"].split()[1] in ("%f", "%F")  # the file the user opened is passed on
    assert entry["Icon"] == "foi-studio" and entry["Terminal"] == "false"
    assert {"Graphics", "Photography"} <= set(filter(None, entry["Categories"].split(";")))
    mime_types = set(filter(None, entry["MimeType"].split(";")))
    assert {PROJECT_TYPE, "image/jpeg", "image/png", "image/tiff", "image/webp"} <= mime_types


def test_desktop_entry_name_is_the_one_the_app_announces():
    # Wayland matches a window to its entry by this name (QGuiApplication.setDesktopFileName).
    app_source = (ROOT / "foi_desktop" / "look.py").read_text(encoding="utf-8")
    assert f'setDesktopFileName("{DESKTOP.stem}")' in app_source


def test_metainfo_describes_this_app():
    component = ET.parse(METAINFO).getroot()
    assert component.tag == "component" and component.get("type") == "desktop-application"
    assert component.findtext("id") == APP_ID
    assert component.find("launchable[@type='desktop-id']").text == DESKTOP.name
    assert component.findtext("icon") == desktop_entry()["Icon"]
    assert component.findtext("project_license") == pyproject()["project"]["license"]
    assert component.find("provides/mediatype").text == PROJECT_TYPE
    assert component.find("releases/release").get("version") == pyproject()["project"]["version"]


def test_mime_type_for_projects():
    mime_type = ET.parse(MIME).getroot().find(f"{MIME_NS}mime-type")
    assert mime_type.get("type") == PROJECT_TYPE
    assert mime_type.find(f"{MIME_NS}glob").get("pattern") == "*.foi"
    assert mime_type.find(f"{MIME_NS}sub-class-of").get("type") == "application/zip"  # projects are zips


# Skipped on a developer's machine without the validators; never in CI, where .ci/run installs them.
@pytest.mark.skipif(shutil.which("desktop-file-validate") is None and not os.environ.get("CI"),
                    reason="desktop-file-utils is not installed")
def test_desktop_file_validate():
    run = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    assert run.returncode == 0 and not run.stdout.strip(), run.stdout + run.stderr


@pytest.mark.skipif(shutil.which("appstreamcli") is None and not os.environ.get("CI"),
                    reason="appstream is not installed")
def test_appstreamcli_validate():
    run = subprocess.run(["appstreamcli", "validate", "--no-net", str(METAINFO)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert " E: " not in run.stdout and " W: " not in run.stdout, run.stdout


def test_install_script_puts_everything_in_place(tmp_path):
    data = tmp_path / "share"
    run = subprocess.run(["sh", str(LINUX / "install.sh")], env=dict(os.environ, DATA_HOME=str(data)),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert (data / "applications" / DESKTOP.name).read_text(encoding="utf-8").count('Exec="foi-desktop" %f') == 1
    assert (data / "metainfo" / METAINFO.name).is_file()
    assert (data / "mime" / "packages" / "foi-studio.xml").is_file()
    for size in ICON_SIZES:
        assert (data / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "foi-studio.png").is_file()
    run = subprocess.run(["sh", str(LINUX / "install.sh"), "--uninstall"],
                         env=dict(os.environ, DATA_HOME=str(data)), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and not (data / "applications" / DESKTOP.name).exists()


# -- icons ------------------------------------------------------------------------------------------

def test_icon_in_every_desktop_size():
    for size in ICON_SIZES:
        with Image.open(ROOT / "resources" / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "foi-studio.png") as icon:
            assert icon.format == "PNG" and icon.size == (size, size) and icon.mode == "RGBA"
            assert icon.getchannel("A").getextrema() == (0, 255)  # rounded corners are transparent
    with Image.open(ROOT / "resources" / "icons" / "foi-studio.ico") as ico:
        assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= ico.info["sizes"]
    with Image.open(ROOT / "resources" / "icons" / "foi-studio.icns") as icns:
        assert icns.size == (1024, 1024)


# -- the self-check ---------------------------------------------------------------------------------

def test_self_check_passes_headless():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1")
    code = "import sys; from foi_desktop.selfcheck import run_self_check; sys.exit(run_self_check(device='cpu'))"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    for stage in ("resources", "sample photo", "model", "Find regions", "Edit", "export"):
        assert f"  ok  {stage}" in run.stdout
    assert "tiny-random on cpu" in run.stdout and "2 steps" in run.stdout
    assert run.stdout.strip().splitlines()[-1].startswith("OK")
    assert "Traceback" not in run.stdout + run.stderr


def test_version_and_self_check_flags():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1")
    version = subprocess.run([sys.executable, "-m", "foi_desktop.app", "--version"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert version.returncode == 0
    assert version.stdout.strip() == f"FoI Studio {pyproject()['project']['version']}"
    # --device reaches the check; a wrong one fails at the model stage with the engine's own words.
    check = subprocess.run([sys.executable, "-m", "foi_desktop.app", "--self-check", "--device", "no-such-device"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 1
    assert 'FAILED at model: "no-such-device" is not a device' in check.stdout
