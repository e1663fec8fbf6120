"""Copies the top-level templates/, hls/ and boards/ into the wheel as accelgen/_data/."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA_DIRS = ("templates", "hls", "boards")


class BuildPyWithData(build_py):
    def run(self):
        super().run()
        root = Path(__file__).resolve().parent
        for name in DATA_DIRS:
            dst = Path(self.build_lib) / "accelgen" / "_data" / name
            if dst.exists():
                shutil.rmtree(dst)
            shutil.copytree(root / name, dst)


setup(cmdclass={"build_py": BuildPyWithData})
