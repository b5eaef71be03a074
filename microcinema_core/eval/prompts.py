"""Prompt sets of the paper's zero-shot protocol: UCF-101's 101 action classes, or captions from a text file.

UCF-101 (Soomro, Zamir and Shah, 2012): the class names in the order of the dataset's ``classInd.txt``.
The paper prompts with the class names; ``class_prompt`` turns ``ApplyEyeMakeup`` into ``apply eye makeup``.
"""
from __future__ import annotations

import re
from pathlib import Path

UCF101_CLASSES = (
    "ApplyEyeMakeup", "ApplyLipstick", "Archery", "BabyCrawling", "BalanceBeam", "BandMarching",
    "BaseballPitch", "Basketball", "BasketballDunk", "BenchPress", "Biking", "Billiards", "BlowDryHair",
    "BlowingCandles", "BodyWeightSquats", "Bowling", "BoxingPunchingBag", "BoxingSpeedBag", "BreastStroke",
    "BrushingTeeth", "CleanAndJerk", "CliffDiving", "CricketBowling", "CricketShot", "CuttingInKitchen",
    "Diving", "Drumming", "Fencing", "FieldHockeyPenalty", "FloorGymnastics", "FrisbeeCatch", "FrontCrawl",
    "GolfSwing", "Haircut", "Hammering", "HammerThrow", "HandstandPushups", "HandstandWalking", "HeadMassage",
    "HighJump", "HorseRace", "HorseRiding", "HulaHoop", "IceDancing", "JavelinThrow", "JugglingBalls",
    "JumpingJack", "JumpRope", "Kayaking", "Knitting", "LongJump", "Lunges", "MilitaryParade", "Mixing",
    "MoppingFloor", "Nunchucks", "ParallelBars", "PizzaTossing", "PlayingCello", "PlayingDaf", "PlayingDhol",
    "PlayingFlute", "PlayingGuitar", "PlayingPiano", "PlayingSitar", "PlayingTabla", "PlayingViolin",
    "PoleVault", "PommelHorse", "PullUps", "Punch", "PushUps", "Rafting", "RockClimbingIndoor",
    "RopeClimbing", "Rowing", "SalsaSpin", "ShavingBeard", "Shotput", "SkateBoarding", "Skiing", "Skijet",
    "SkyDiving", "SoccerJuggling", "SoccerPenalty", "StillRings", "SumoWrestling", "Surfing", "Swing",
    "TableTennisShot", "TaiChi", "TennisSwing", "ThrowDiscus", "TrampolineJumping", "Typing", "UnevenBars",
    "VolleyballSpiking", "WalkingWithDog", "WallPushups", "WritingOnBoard", "YoYo",
)


def class_prompt(name: str, template: str = "{}") -> str:
    """``ApplyEyeMakeup`` -> ``apply eye makeup`` put into ``template`` (``{}`` is the words)."""
    words = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name).lower()
    return template.format(words)


def ucf101_prompts(template: str = "{}") -> list:
    """``(label, prompt)`` for the 101 classes."""
    return [(name, class_prompt(name, template)) for name in UCF101_CLASSES]


def caption_prompts(path: str | Path) -> list:
    """``(label, caption)`` from a text file: one caption per line; blank lines and ``#`` lines skipped;
    ``label<TAB>caption`` lines keep their label (e.g. an MSR-VTT video id)."""
    out = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines()):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        label, tab, caption = line.partition("\t")
        out.append((label.strip(), caption.strip()) if tab else (f"caption{i:05d}", line))
    if not out:
        raise ValueError(f"{path} holds no captions (one per line)")
    return out


def slug(text: str, length: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:length] or "prompt"
