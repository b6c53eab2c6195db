from __future__ import annotations

from pipetune.config import HyperParameter, SystemParameter
from pipetune.search import HyperparameterSearch

HPS = (
    HyperParameter("batch_size", choices=(32, 64, 128, 256)),
    HyperParameter("learning_rate", choices=(0.5, 0.25)),
    HyperParameter("learning_rate_decay", choices=("a", "b", "c")),
)


def sample(search: HyperparameterSearch, n: int) -> list[dict]:
    out = []
    for _ in range(n):
        s = search.ask()
        out.append(s.hyperparameters)
        search.tell(s.number, 0.5)
    return out


def test_each_hyperparameter_is_drawn_from_its_own_list() -> None:
    for params in sample(HyperparameterSearch(HPS, "random", seed=3), 30):
        assert params["batch_size"] in (32, 64, 128, 256)
        assert params["learning_rate"] in (0.5, 0.25)
        assert params["learning_rate_decay"] in ("a", "b", "c")
    seen = {p["batch_size"] for p in sample(HyperparameterSearch(HPS, "random", seed=3), 30)}
    assert len(seen) > 2  # really sampled, not stuck on one value


def test_same_seed_same_trials_other_seed_other_trials() -> None:
    a = sample(HyperparameterSearch(HPS, "random", seed=11), 8)
    b = sample(HyperparameterSearch(HPS, "random", seed=11), 8)
    c = sample(HyperparameterSearch(HPS, "random", seed=12), 8)
    assert a == b
    assert a != c


def test_grid_visits_every_point_once() -> None:
    search = HyperparameterSearch(HPS, "grid", seed=0)
    assert search.planned_trials(100) == 24
    points = sample(search, 24)
    assert len({tuple(sorted(p.items())) for p in points}) == 24


def test_ranges_and_tpe() -> None:
    hps = (
        HyperParameter("lr", low=1e-3, high=1e-1, log=True),
        HyperParameter("units", low=8, high=64, integer=True),
    )
    search = HyperparameterSearch(hps, "tpe", seed=0)
    drawn = sample(search, 12)
    assert len({params["lr"] for params in drawn}) > 1  # really drawn, not one fixed point
    for params in drawn:
        assert 1e-3 <= params["lr"] <= 1e-1
        assert isinstance(params["units"], int) and 8 <= params["units"] <= 64


def test_v2_samples_system_parameters_as_dimensions() -> None:
    system = (SystemParameter("cores", ("2", "1")), SystemParameter("memory", ("2g", "1g")))
    search = HyperparameterSearch(HPS, "random", seed=5, system_parameters=system)
    settings = set()
    for _ in range(20):
        s = search.ask()
        assert s.system is not None and set(s.system.as_dict()) == {"cores", "memory"}
        assert "system.cores" not in s.hyperparameters
        settings.add(s.system.label())
        search.tell(s.number, None)  # failed trials are accepted too
    assert len(settings) == 4
