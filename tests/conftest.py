import pytest
import torch


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: end-to-end tests (run with --runslow; CI runs them)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow (make test-all, as CI does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    """Seeded, and one intra-op thread: the test models are tiny, and on a loaded 2-core machine two
    OpenMP threads made each forward ~100x slower (0.9 s instead of 0.01 s)."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def allocator_calls(monkeypatch):
    """The test process keeps glibc's default allocator: commands run in-process (``separate_main``)
    record their call of :func:`~twostep_asteroid.cpu_allocator.retain_freed_memory` here instead
    of pinning the worker's memory at its peak for the rest of the session. Its real effect is
    tested in a subprocess (``tests/test_cpu_allocator.py``)."""
    from twostep_asteroid import cpu_allocator

    calls = []
    monkeypatch.setattr(cpu_allocator, "retain_freed_memory", lambda: calls.append("retain") or True)
    return calls
