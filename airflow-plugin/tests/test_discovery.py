"""Airflow itself finds the plugin and its listener: ``airflow plugins --output json`` in this
interpreter's venv, with a throw-away AIRFLOW_HOME, once through a plugins-folder shim (how the
e2e harness loads it) and once pip-installed (the ``airflow.plugins`` entry point)."""
import _support  # noqa: F401  (must come first)

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from _support import PLUGIN_DIR

AIRFLOW = Path(sys.executable).parent / "airflow"
SHIM = "from planasonix_bridge.plugin import PlanasonixBridgePlugin  # noqa: F401\n"


def airflow_plugins(pythonpath, plugins_folder=None):
    home = tempfile.mkdtemp(prefix="planasonix-plugin-discovery-")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
        env.update(
            AIRFLOW_HOME=home,
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__PLUGINS_FOLDER=plugins_folder or os.path.join(home, "plugins"),
            PYTHONPATH=pythonpath,
            PATH=f"{AIRFLOW.parent}:{env.get('PATH', '')}",
        )
        res = subprocess.run([str(AIRFLOW), "plugins", "--output", "json"], env=env, capture_output=True, text=True, timeout=180)
        if res.returncode != 0:
            raise AssertionError(f"airflow plugins failed ({res.returncode}):\n{res.stderr[-3000:]}")
        start = res.stdout.index("[")
        return json.loads(res.stdout[start:])
    finally:
        shutil.rmtree(home, ignore_errors=True)


class Discovery(unittest.TestCase):
    def _check(self, plugins, source_contains):
        ours = [p for p in plugins if p.get("name") == "planasonix_bridge"]
        self.assertEqual(len(ours), 1, plugins)
        p = ours[0]
        self.assertEqual(p["listeners"], ["planasonix_bridge.listener"])
        self.assertEqual(sorted(p["macros"]), ["planasonix_bridge.lineage.lineage", "planasonix_bridge.lineage.lineage_json"])
        self.assertIn(source_contains, str(p.get("source")))

    def test_from_a_plugins_folder_shim(self):
        folder = tempfile.mkdtemp(prefix="planasonix-plugin-folder-")
        try:
            Path(folder, "planasonix_bridge_plugin.py").write_text(SHIM)
            self._check(airflow_plugins(str(PLUGIN_DIR / "src"), folder), "planasonix_bridge_plugin.py")
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def test_pip_installed_entry_point(self):
        target = tempfile.mkdtemp(prefix="planasonix-plugin-target-")
        source = tempfile.mkdtemp(prefix="planasonix-plugin-source-")
        try:
            # Build from a copy: pip builds in the source tree (build/, *.egg-info), and both
            # Airflow venvs may run this at the same time.
            for name in ("pyproject.toml", "README.md"):
                if (PLUGIN_DIR / name).exists():
                    shutil.copy(PLUGIN_DIR / name, source)
            shutil.copytree(PLUGIN_DIR / "src", Path(source, "src"), ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            # --target: the cached venv is never modified. Build isolation fetches setuptools
            # from the package index (the venvs have no `wheel`); no index -> skipped.
            res = subprocess.run(
                [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check", "--target", target, source],
                capture_output=True, text=True, timeout=600,
            )
            if res.returncode != 0:
                if "Could not find a version" in res.stderr or "No matching distribution" in res.stderr or "NewConnectionError" in res.stderr:
                    self.skipTest("no package index to fetch the build backend: " + res.stderr.strip().splitlines()[-1])
                raise AssertionError(res.stderr[-3000:])
            dist = next(Path(target).glob("planasonix_bridge_airflow_plugin-*.dist-info"))
            self.assertIn("planasonix_bridge = planasonix_bridge.plugin:PlanasonixBridgePlugin", (dist / "entry_points.txt").read_text())
            self.assertFalse((dist / "METADATA").read_text().count("Requires-Dist"), "no runtime dependencies")
            self.assertFalse(Path(target, "tests").exists())
            self._check(airflow_plugins(target), "EntryPoint(name='planasonix_bridge'")
        finally:
            shutil.rmtree(target, ignore_errors=True)
            shutil.rmtree(source, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
