"""Maps the checkout's top-level folders under one import name, ``classmap``.

``app/`` → ``classmap.app``, ``analysis/`` → ``classmap.analysis`` (with every
sub-package found below them) and ``assets/`` → ``classmap.assets`` (static files
only). Everything else about the distribution is in ``pyproject.toml``; this file
exists because that mapping needs the package list computed.
"""

from setuptools import find_packages, setup

TOP_LEVEL = ("app", "analysis")
packages = [f"classmap.{name}" for name in find_packages(include=[f"{top}*" for top in TOP_LEVEL])]
package_dir = {f"classmap.{top}": top for top in TOP_LEVEL}
package_dir["classmap.assets"] = "assets"

setup(packages=[*packages, "classmap.assets"], package_dir=package_dir)
