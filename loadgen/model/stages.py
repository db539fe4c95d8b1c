"""Stages (``--stages 30s:100,2m:100,30s:0``): a linear ramp between targets over time (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from loadgen.model.durations import parse_duration


@dataclass(frozen=True)
class Stage:
    duration: float
    target: float


def parse_stages(text: str) -> list[Stage]:
    """``"30s:100,2m:100,30s:0"`` → stages; a ValueError names the bad part."""
    stages = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        if ":" not in part:
            raise ValueError(f"stage {part!r} is not DURATION:TARGET, e.g. 30s:100")
        duration_text, target_text = part.split(":", 1)
        duration = parse_duration(duration_text)
        try:
            target = float(target_text)
        except ValueError:
            raise ValueError(f"stage {part!r}: target {target_text!r} is not a number") from None
        if target < 0:
            raise ValueError(f"stage {part!r}: target cannot be negative")
        stages.append(Stage(duration, target))
    if not stages:
        raise ValueError("--stages is empty: give e.g. 30s:100,2m:100,30s:0")
    return stages


def stage_target(stages: list[Stage], elapsed: float, start: float = 0.0) -> float | None:
    """Linear ramp between stage targets; ``None`` once every stage has run."""
    previous = start
    t = 0.0
    for stage in stages:
        if elapsed < t + stage.duration:
            if stage.duration <= 0:
                return stage.target
            return previous + (stage.target - previous) * (elapsed - t) / stage.duration
        t += stage.duration
        previous = stage.target
    return None
