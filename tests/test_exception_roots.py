"""One exception root per package: every public exception class a module of ``radio`` defines derives from
``RadioError``, and every one of ``dekag`` from ``DekagError``, so a caller can catch a layer's errors at once."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import dekag
import radio
from dekag.errors import DekagError
from radio.errors import RadioError

# optional-hardware or heavy-training modules are imported too: they must import without their extras
ROOTS = {radio: RadioError, dekag: DekagError}


def _exception_classes(package):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == info.name
                    and not name.startswith("_")):
                yield obj


@pytest.mark.parametrize("package", list(ROOTS), ids=lambda p: p.__name__)
def test_every_exception_has_the_package_root(package):
    classes = list(_exception_classes(package))
    assert len(classes) >= 5
    strays = [c.__qualname__ for c in classes if not issubclass(c, ROOTS[package])]
    assert not strays, f"not under {ROOTS[package].__name__}: {strays}"


def test_named_radio_errors_are_under_the_root():
    from radio.backends import BackendError, PeerTimeout
    from radio.emulator import EmulatorInputError
    from radio.feedback import FeedbackTimeout, MalformedReport
    for cls in (BackendError, PeerTimeout, MalformedReport, FeedbackTimeout, EmulatorInputError):
        assert issubclass(cls, RadioError), cls
