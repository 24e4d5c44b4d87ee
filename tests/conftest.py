import os
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parent.parent
NS3_DIR = ROOT.parent / "shared" / "interop" / "ns3-ub"
if not NS3_DIR.exists():
    NS3_DIR = Path("/work/shared/interop/ns3-ub")


@pytest.fixture(scope="session")
def ns3_dir():
    if not NS3_DIR.exists():
        pytest.skip("ns-3-UB interop captures (../shared/interop/ns3-ub) not present")
    return NS3_DIR


@pytest.fixture(scope="session")
def sample_captures(tmp_path_factory):
    """The sample captures, rebuilt from captures/make_captures.py into a temp dir."""
    import importlib.util
    out = tmp_path_factory.mktemp("captures")
    spec = importlib.util.spec_from_file_location("make_captures",
                                                  ROOT / "captures" / "make_captures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(out)
    return out
