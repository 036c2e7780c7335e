"""Funnels and their ordered stages: configuration handed to the Lead decider."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aggregates.errors import InvalidValue

DELIVERIES = ("deal", "project")
"""What a lead funnel's won lead becomes (its ``delivery`` option)."""


@dataclass(frozen=True)
class Stage:
    id: str
    name: str
    step: int
    """Position of the stage in its funnel; alternative outcomes share one step."""
    time_limit_hours: float | None = None
    needs: tuple[str, ...] = ()
    """Deal funnels: departments whose estimates entering this stage asks for, in order."""
    ready_stage: str | None = None
    """Deal funnels: where the deal goes when the last estimate it asked for is ready."""


@dataclass(frozen=True)
class Funnel:
    id: str
    name: str
    stages: tuple[Stage, ...]
    options: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    """Settings of the funnel besides its stages (e.g. a lead funnel's ``deal_funnel``)."""

    @property
    def first_stage(self) -> Stage:
        return self.stages[0]

    def stage(self, stage_id: str) -> Stage | None:
        for stage in self.stages:
            if stage.id == stage_id:
                return stage
        return None

    def step_of(self, stage_id: str) -> int | None:
        stage = self.stage(stage_id)
        return None if stage is None else stage.step

    @property
    def steps(self) -> int:
        return self.stages[-1].step + 1

    @property
    def assessment_required(self) -> bool:
        """Lead funnels: whether a lead needs an assessment before it is qualified as
        quality (``assessment_required``; a lead's card may ask otherwise). Default: yes."""
        return self.options.get("assessment_required", True) is not False

    @property
    def delivery(self) -> str:
        """Lead funnels: what a won lead becomes: ``"deal"`` (POST /leads/{id}/deal, the
        default) or ``"project"`` (a lead closed won without a deal gets its project)."""
        value = self.options.get("delivery", "deal")
        return value if isinstance(value, str) else "deal"


class FunnelCatalog(Mapping[str, Funnel]):
    """The configured funnels, by id."""

    def __init__(self, funnels: Mapping[str, Funnel]) -> None:
        if not funnels:
            raise ValueError("the funnel configuration defines no funnel")
        self._funnels = dict(funnels)

    def __getitem__(self, key: str) -> Funnel:
        return self._funnels[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._funnels)

    def __len__(self) -> int:
        return len(self._funnels)

    def require(self, funnel_id: str, field: str = "funnel") -> Funnel:
        """The funnel, or an InvalidValue naming the field and the known funnels."""
        funnel = self._funnels.get(funnel_id)
        if funnel is None:
            known = ", ".join(sorted(self._funnels))
            raise InvalidValue(field, f"unknown funnel '{funnel_id}' (known: {known})")
        return funnel

    def require_stage(self, funnel: Funnel, stage_id: str, field: str = "stage") -> Stage:
        stage = funnel.stage(stage_id)
        if stage is None:
            known = ", ".join(s.id for s in funnel.stages)
            raise InvalidValue(
                field, f"unknown stage '{stage_id}' in funnel '{funnel.id}' (stages: {known})"
            )
        return stage

    @classmethod
    def from_config(cls, config: Mapping[str, Any], section: str = "funnels") -> FunnelCatalog:
        """Build from the parsed configuration file (``[<section>.<id>]`` tables)."""
        raw = config.get(section)
        if not isinstance(raw, Mapping) or not raw:
            raise ValueError(f"the funnel configuration needs a [{section}.<id>] table")
        funnels: dict[str, Funnel] = {}
        for funnel_id, body in raw.items():
            stages_raw = body.get("stages") or []
            if not stages_raw:
                raise ValueError(f"funnel '{funnel_id}' has no stages")
            stages: list[Stage] = []
            step = -1
            for index, s in enumerate(stages_raw):
                if "id" not in s:
                    raise ValueError(f"funnel '{funnel_id}' stage {index + 1} has no id")
                if s.get("alternative") and index > 0:
                    pass  # an alternative outcome keeps the step of the stage before it
                else:
                    step += 1
                limit = s.get("time_limit_hours")
                needs = s.get("needs") or []
                if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
                    raise ValueError(f"funnel '{funnel_id}' stage '{s['id']}': needs is a list")
                stages.append(
                    Stage(
                        id=str(s["id"]),
                        name=str(s.get("name", s["id"])),
                        step=step,
                        time_limit_hours=None if limit is None else float(limit),
                        needs=tuple(needs),
                        ready_stage=s.get("ready_stage"),
                    )
                )
            ids = [s.id for s in stages]
            if len(set(ids)) != len(ids):
                raise ValueError(f"funnel '{funnel_id}' repeats a stage id")
            for stage in stages:
                if stage.needs and stage.ready_stage not in ids:
                    raise ValueError(
                        f"funnel '{funnel_id}' stage '{stage.id}' needs estimates: its "
                        "ready_stage must name a stage of the funnel"
                    )
            if not isinstance(body.get("assessment_required", True), bool):
                raise ValueError(f"funnel '{funnel_id}': assessment_required is true or false")
            if body.get("delivery", "deal") not in DELIVERIES:
                raise ValueError(
                    f"funnel '{funnel_id}': delivery is one of {', '.join(DELIVERIES)}"
                )
            funnels[funnel_id] = Funnel(
                id=funnel_id,
                name=str(body.get("name", funnel_id)),
                stages=tuple(stages),
                options={k: v for k, v in body.items() if k not in ("name", "stages")},
            )
        return cls(funnels)
